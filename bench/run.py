"""Benchmark the gateway against the simulator and a bare pass-through proxy, in one go.

Three targets, each driven by ``wrk`` (not Python, so the load generator is not the bottleneck):

- (a) ``sim``: the Gemini simulator directly (validation off), Gemini request bodies;
- (b) ``proxy``: ``bench/passthrough.py`` forwarding Gemini requests to the simulator unchanged:
  the floor, what one extra Python hop (aiohttp server + client, uvloop) costs;
- (c) ``gateway``: ``gemini-gateway serve`` with the simulator as upstream, OpenAI chat bodies;
- (b') ``raw``: ``bench/rawrelay.py``, the leanest relay we know how to write in Python (asyncio
  protocols and httptools on uvloop, no framework): what merely relaying costs, the floor under (b).

Each is run non-streamed and streamed (20 events) at each concurrency, after a warm-up. For the
proxy and the gateway, process CPU time is read from /proc before and after each run. Then 1,000
slow streams are held open against the gateway and its RSS is read.

``--gateway-config baseline,limits-sqlite,limits-pg-redis`` runs several gateways side by side
(issue 3): a license without limits, one with limits that are checked but never refuse, and the
same on PostgreSQL + Redis; their runs are interleaved so they are measured close together.

Run: ``.venv/bin/python bench/run.py`` (``--help`` for durations, concurrencies, ``--json``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from backing_stores import postgres_database, redis_database
from open_streams import OpenStreamsResult, hold_open_streams
from procstat import cpu_seconds, machine_summary
from report import render_report
from translation import translation_cpu_ms

BENCH_DIR = Path(__file__).resolve().parent
LUA_SCRIPT = BENCH_DIR / "wrk" / "post.lua"
MODEL = "gemini-2.0-flash"
# Long enough that the simulator's answer splits into the full 20 stream events.
PROMPT = "Write a long story about a benchmark that measures a gateway in many short words please"
STREAM_EVENTS = 20
SIM_KEY = "AIzaBenchOnlyNotARealKey000000000000000"
# Limits every request checks and counts, high enough never to refuse one.
NEVER_REFUSING_LIMITS = [
    "--rpm", "1000000", "--tpm", "1000000000", "--quota", "1000000000000",
    "--concurrency", "10000",
]  # fmt: skip


@dataclass(frozen=True)
class GatewayConfig:
    """One way to run the gateway: the license's limits and where state is kept."""

    name: str
    limits: bool
    postgres: bool = False
    redis: bool = False

    @property
    def target_name(self) -> str:
        """``gateway`` for the baseline (the report's historic name), ``gateway/<name>`` else."""
        return "gateway" if self.name == "baseline" else f"gateway/{self.name}"


GATEWAY_CONFIGS = {
    c.name: c
    for c in (
        GatewayConfig("baseline", limits=False),
        GatewayConfig("limits-sqlite", limits=True),
        GatewayConfig("limits-pg-redis", limits=True, postgres=True, redis=True),
        # To tell the two apart: the ledger and licenses on PostgreSQL, limits on Redis.
        GatewayConfig("baseline-pg", limits=False, postgres=True),
        GatewayConfig("limits-pg", limits=True, postgres=True),
        GatewayConfig("limits-sqlite-redis", limits=True, redis=True),
    )
}


@dataclass
class Target:
    """One thing wrk is pointed at."""

    name: str
    url: dict[bool, str]  # by stream: False / True
    body: dict[bool, Path]
    auth_header: str
    auth_value: str
    pid: int | None  # whose CPU is measured; None for none


@dataclass
class RunResult:
    target: str
    stream: bool
    concurrency: int
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    cpu_ms_per_request: float | None
    round: int = 0  # which --repeat round measured it


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_wrk() -> str:
    """Path of wrk; installs Debian's package when missing and we are root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("wrk is not installed: run `apt-get install -y wrk` as root, then retry.")
    print("installing wrk from Debian's packages …", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    return shutil.which("wrk") or sys.exit("wrk still missing after apt-get install")


def wait_until_up(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30) -> None:
    """Poll until something answers HTTP at url (any status counts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"{proc.args} exited early:\n{log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{url} did not come up in {timeout:.0f} s:\n{log.read_text()[-2000:]}")


def measure_translation(
    model_url: str, bodies: dict[str, dict[bool, Path]]
) -> tuple[float, float, float]:
    """The translation-only CPU per request, on the simulator's real answers to the bench's ask."""
    answers = []
    for action in (":generateContent", ":streamGenerateContent?alt=sse"):
        request = urllib.request.Request(
            model_url + action,
            data=bodies["gemini"][False].read_bytes(),
            headers={"Content-Type": "application/json", "x-goog-api-key": SIM_KEY},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answers.append(response.read())
    plain, stream = (json.loads(bodies["openai"][s].read_text()) for s in (False, True))
    return translation_cpu_ms(plain, answers[0], stream, answers[1])


def post_json(url: str, payload: dict[str, object]) -> None:
    data = json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()


@contextlib.contextmanager
def started(
    args: list[str], env: dict[str, str], log: Path, ready_url: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Run a server for the duration of the block; stop it (our own child only) afterwards."""
    with log.open("wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_up(ready_url, proc, log)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_wrk(
    wrk: str, target: Target, stream: bool, connections: int, seconds: int
) -> tuple[dict[str, object], float | None]:
    """One wrk run; returns its summary and the CPU seconds the target's process spent."""
    env = {
        **os.environ,
        "BENCH_BODY_FILE": str(target.body[stream]),
        "BENCH_AUTH_HEADER": target.auth_header,
        "BENCH_AUTH_VALUE": target.auth_value,
    }
    command = [
        wrk, "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s",
        "-s", str(LUA_SCRIPT), target.url[stream],
    ]  # fmt: skip
    cpu_before = cpu_seconds(target.pid) if target.pid else None
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    cpu_after = cpu_seconds(target.pid) if target.pid else None
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            summary = json.loads(line.removeprefix("BENCH_RESULT "))
            cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after else None
            return summary, cpu
    sys.exit(f"wrk gave no result:\n{done.stdout}\n{done.stderr}")


def measure(
    wrk: str, target: Target, stream: bool, concurrency: int, seconds: int, warmup: int
) -> RunResult:
    if warmup:
        run_wrk(wrk, target, stream, concurrency, warmup)
    summary, cpu = run_wrk(wrk, target, stream, concurrency, seconds)
    requests = int(summary["requests"])  # type: ignore[call-overload]
    errors = sum(summary["errors"].values())  # type: ignore[attr-defined]
    bad_status = summary["errors"]["status"]  # type: ignore[index]
    elapsed = summary["duration_us"] / 1e6  # type: ignore[operator]
    latency = summary["latency_us"]
    good = max(requests - bad_status, 0)  # non-2xx answers count as requests too
    return RunResult(
        target=target.name,
        stream=stream,
        concurrency=concurrency,
        requests=requests,
        errors=errors,
        seconds=elapsed,
        rps=good / elapsed,
        p50_ms=latency["p50"] / 1000,  # type: ignore[index]
        p99_ms=latency["p99"] / 1000,  # type: ignore[index]
        cpu_ms_per_request=(cpu * 1000 / good) if cpu is not None and good else None,
    )


def median_runs(rounds: list[RunResult]) -> list[RunResult]:
    """Per target, mode and concurrency, the run with the median req/s (noisy shared machines)."""
    groups: dict[tuple[str, bool, int], list[RunResult]] = {}
    for run in rounds:
        groups.setdefault((run.target, run.stream, run.concurrency), []).append(run)
    return [sorted(runs, key=lambda r: r.rps)[len(runs) // 2] for runs in groups.values()]


def write_bodies(folder: Path) -> dict[str, dict[bool, Path]]:
    gemini = {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
    paths: dict[str, dict[bool, Path]] = {"gemini": {}, "openai": {}}
    for stream in (False, True):
        openai = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
        openai["stream"] = stream
        paths["gemini"][stream] = folder / "gemini.json"
        paths["openai"][stream] = folder / f"openai-{'stream' if stream else 'plain'}.json"
        paths["openai"][stream].write_text(json.dumps(openai))
    paths["gemini"][False].write_text(json.dumps(gemini))
    return paths


def gateway_env(base: dict[str, str], data_dir: Path, port: int, sim_url: str) -> dict[str, str]:
    """The gateway's environment: only the bench's GEMINI_GATEWAY_* settings, none inherited."""
    env = {k: v for k, v in base.items() if not k.startswith("GEMINI_GATEWAY_")}
    env.update(
        GEMINI_GATEWAY_HOST="127.0.0.1",
        GEMINI_GATEWAY_PORT=str(port),
        GEMINI_GATEWAY_DATA_DIR=str(data_dir),
        GEMINI_GATEWAY_UPSTREAM_KEYS=SIM_KEY,
        GEMINI_GATEWAY_UPSTREAM_BASE_URL=sim_url,
        GEMINI_GATEWAY_LOG_LEVEL="WARNING",
        # The default (512) would queue the 1,000-stream test's upstream requests.
        GEMINI_GATEWAY_UPSTREAM_MAX_CONNECTIONS="1100",
    )
    return env


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark the gateway against its floor.")
    parser.add_argument("--duration", type=int, default=6, help="Seconds per measured run.")
    parser.add_argument("--warmup", type=int, default=2, help="Seconds of warm-up per run.")
    parser.add_argument("--concurrency", default="1,32,256", help="Comma-separated.")
    parser.add_argument(
        "--targets", default="sim,proxy,raw,gateway", help="Any of sim,proxy,raw,gateway."
    )
    parser.add_argument("--modes", default="plain,stream", help="plain, stream or both.")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="Rounds over all runs, each starting one target later; the median-req/s run is kept.",
    )
    parser.add_argument("--open-streams", type=int, default=1000, help="0 skips the test.")
    parser.add_argument("--json", type=Path, help="Also write the raw results here.")
    parser.add_argument(
        "--gateway-config",
        default="baseline",
        help=f"Comma-separated gateway setups, any of {','.join(GATEWAY_CONFIGS)}.",
    )
    parser.add_argument(
        "--redis-db",
        type=int,
        default=14,
        help="Redis db number for the first config on Redis (flushed); the next one counts down.",
    )
    return parser.parse_args()


def start_gateway(
    stack: contextlib.ExitStack,
    config: GatewayConfig,
    folder: Path,
    sim_url: str,
    redis_db: int,
    bodies: dict[bool, Path],
) -> tuple[Target, str]:
    """Start one gateway (its own data dir, license and stores); its target and license key."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = gateway_env(dict(os.environ), folder / f"data-{config.name}", port, sim_url)
    if config.postgres:
        env["GEMINI_GATEWAY_DATABASE_URL"] = stack.enter_context(postgres_database())
    if config.redis:
        env["GEMINI_GATEWAY_REDIS_URL"] = stack.enter_context(redis_database(redis_db))
    create = [sys.executable, "-m", "gemini_gateway", "license", "create", "--name", "bench"]
    if config.limits:
        create += NEVER_REFUSING_LIMITS
    license_key = (
        subprocess.run(create, env=env, capture_output=True, text=True, check=True)
        .stdout.strip()
        .splitlines()[-1]
    )
    log = folder / f"gateway-{config.name}.log"
    gw = stack.enter_context(
        started(
            [sys.executable, "-m", "gemini_gateway", "serve"],
            env,
            log,
            f"{url}/gemini/v1/models",
        )
    )
    if gw.poll() is not None:
        sys.exit(f"gateway {config.name} exited:\n{log.read_text()[-2000:]}")
    target = Target(
        config.target_name,
        dict.fromkeys((False, True), f"{url}/gemini/v1/chat/completions"),
        bodies,
        "Authorization",
        f"Bearer {license_key}",
        gw.pid,
    )
    # Another process may have taken the port between free_port() and our bind: ask ours.
    request = urllib.request.Request(
        target.url[False],
        data=bodies[False].read_bytes(),
        headers={"Content-Type": "application/json", "Authorization": target.auth_value},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != 200 or b"chat.completion" not in response.read():
            sys.exit(f"gateway {config.name} answered {response.status} to a chat request")
    return target, license_key


def main() -> None:
    args = parse_args()
    machine = machine_summary()  # before our own processes add to the load average
    wrk = ensure_wrk()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(soft, 8192), hard), hard))
    python = sys.executable
    wanted = set(args.targets.split(","))
    modes = [m == "stream" for m in args.modes.split(",")]
    levels = [int(c) for c in args.concurrency.split(",")]
    unknown = set(args.gateway_config.split(",")) - set(GATEWAY_CONFIGS)
    if unknown:
        sys.exit(f"unknown --gateway-config {','.join(sorted(unknown))}")
    configs = [GATEWAY_CONFIGS[name] for name in args.gateway_config.split(",")]
    with (
        tempfile.TemporaryDirectory(prefix="gemini-gateway-bench-") as tmp,
        contextlib.ExitStack() as stack,
    ):
        folder = Path(tmp)
        bodies = write_bodies(folder)
        sim_port, proxy_port, raw_port = free_port(), free_port(), free_port()
        sim_url = f"http://127.0.0.1:{sim_port}"
        proxy_url = f"http://127.0.0.1:{proxy_port}"
        raw_url = f"http://127.0.0.1:{raw_port}"
        env = gateway_env(dict(os.environ), folder / "data", free_port(), sim_url)
        sim_args = [python, "-m", "gemini_gateway", "simulator", "--port", str(sim_port)]
        sim_args += ["--no-validate", "--stream-chunks", str(STREAM_EVENTS)]
        proxy_args = [python, str(BENCH_DIR / "passthrough.py"), "--port", str(proxy_port)]
        proxy_args += ["--upstream", sim_url]
        sim = stack.enter_context(
            started(sim_args, env, folder / "sim.log", f"{sim_url}/_sim/status")
        )
        proxy = stack.enter_context(started(proxy_args, env, folder / "proxy.log", f"{proxy_url}/"))
        raw_args = [python, str(BENCH_DIR / "rawrelay.py"), "--port", str(raw_port)]
        raw_args += ["--upstream", sim_url]
        raw = stack.enter_context(
            started(raw_args, env, folder / "raw.log", f"{raw_url}/_sim/status")
        )
        gateways = []
        redis_db = args.redis_db
        for config in configs:
            gateways.append(
                start_gateway(stack, config, folder, sim_url, redis_db, bodies["openai"])
            )
            redis_db -= config.redis  # configs on Redis never share a database
        post_json(f"{sim_url}/_sim/config", {"record": False})
        gemini_path = f"/v1beta/models/{MODEL}"
        gemini_urls = {
            False: f"{gemini_path}:generateContent",
            True: f"{gemini_path}:streamGenerateContent?alt=sse",
        }
        targets = [
            Target(
                "sim", {s: sim_url + u for s, u in gemini_urls.items()},
                bodies["gemini"], "x-goog-api-key", SIM_KEY, sim.pid,
            ),
            Target(
                "proxy", {s: proxy_url + u for s, u in gemini_urls.items()},
                bodies["gemini"], "x-goog-api-key", SIM_KEY, proxy.pid,
            ),
            Target(
                "raw", {s: raw_url + u for s, u in gemini_urls.items()},
                bodies["gemini"], "x-goog-api-key", SIM_KEY, raw.pid,
            ),
        ] + [target for target, _ in gateways]  # fmt: skip
        rounds: list[RunResult] = []
        measured = [t for t in targets if t.name.partition("/")[0] in wanted]
        for round_index in range(args.repeat):
            warmup = args.warmup if round_index == 0 else 0
            # Each round starts one target later: on these machines a run's place in the
            # sequence moves its req/s by up to a fifth, so with --repeat N (N = targets) every
            # target runs once in every place and the medians compare like with like.
            shift = round_index % len(measured)
            order = measured[shift:] + measured[:shift]
            for stream in modes:
                for level in levels:
                    for target in order:
                        result = measure(wrk, target, stream, level, args.duration, warmup)
                        result.round = round_index
                        print(_progress(result), file=sys.stderr, flush=True)
                        rounds.append(result)
        results = median_runs(rounds)
        translation = None
        if "gateway" in wanted:
            translation = measure_translation(sim_url + gemini_path, bodies)
        streams: OpenStreamsResult | None = None
        if args.open_streams:
            first_gateway, license_key = gateways[0]
            post_json(f"{sim_url}/_sim/config", {"chunk_delay": 1.0})
            streams = asyncio.run(
                hold_open_streams(
                    first_gateway.url[True],
                    sim_url,
                    license_key,
                    bodies["openai"][True].read_bytes(),
                    first_gateway.pid or 0,
                    args.open_streams,
                )
            )
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = f"{when}; {machine} before the run; Python {sys.version.split()[0]}"
    print(
        render_report(
            header,
            results,
            streams,
            args.duration,
            args.warmup,
            args.repeat,
            translation,
            rounds=rounds,
        )
    )
    if args.json:
        raw = {
            "when": when,
            "machine": machine,
            "runs": [asdict(r) for r in results],
            "every_round": [asdict(r) for r in rounds],
            "open_streams": asdict(streams) if streams else None,
        }
        args.json.write_text(json.dumps(raw, indent=2))


def _progress(result: RunResult) -> str:
    mode = "stream" if result.stream else "plain"
    cpu = result.cpu_ms_per_request
    return (
        f"{result.target:8} {mode:6} c={result.concurrency:<4} {result.rps:9.0f} req/s  "
        f"p50 {result.p50_ms:7.2f} ms  p99 {result.p99_ms:7.2f} ms  "
        f"cpu {'-' if cpu is None else f'{cpu:.3f}'} ms/req  errors {result.errors}"
    )


if __name__ == "__main__":
    main()
