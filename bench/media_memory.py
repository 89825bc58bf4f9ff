"""Peak memory and latency of media resolution for 1, 20 and 80 MB payloads.

Each case runs in a fresh child process that parses a chat request (orjson, as the gateway does),
then resets the kernel's peak-RSS mark (``/proc/self/clear_refs``, Linux) and measures the peak
resident memory above that baseline while ``MediaResolver.resolve`` runs, then while the Gemini
request body is serialised the way ``UpstreamClient.generate`` does it (``encode_json_body``, its
pieces written out a megabyte at a time) and, for comparison, with one ``orjson.dumps`` of the
whole body (what the client did before). Cases:

- ``data-url``: ``image_url`` with ``data:video/mp4;base64,…`` (the payload is copied out of it)
- ``base64``: bare base64 (the client's string is reused as ``inlineData.data``)
- ``url``: an http URL served from 127.0.0.1 by a second process (fetched, then base64-encoded)
- ``upload``: bare base64 over the inline limit (set to 1 MB here), uploaded to the
  Gemini simulator (a separate ``gemini-gateway simulator`` process) through the File API

End to end (``--e2e``, on by default): a real ``gemini-gateway serve`` process in front of the
simulator gets the ``data-url`` and ``base64`` requests over HTTP; the table gives the server
process's peak RSS above its idle baseline (read from ``/proc/<pid>``) and the request's latency,
which includes the simulator parsing the forwarded body.

Run: ``python bench/media_memory.py`` (add ``--sizes 1,20`` or ``--cases base64`` to narrow).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import http.server
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

MB = 1024 * 1024
SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "media" / "video.mp4"


def _rss(field: str) -> int:
    """VmRSS / VmHWM of this process, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def _payload(size: int) -> bytes:
    """A real mp4 head padded with random bytes to ``size`` (random: nothing compresses it)."""
    head = SAMPLE.read_bytes()
    return head + os.urandom(size - len(head))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _child(case: str, size: int, media_dir: str, sim_url: str) -> dict[str, Any]:
    import orjson

    from gemini_gateway.config import Settings
    from gemini_gateway.media.resolve import MediaResolver

    settings = Settings().replace(
        media_allow_private=True,
        media_max_bytes=200 * MB,
        inline_limit_bytes=(MB if case == "upload" else 200 * MB),
        media_fetch_timeout=120.0,
        upstream_base_url=sim_url or "http://127.0.0.1:9",
        upstream_keys="sim-key-1",
    )
    upstream = None
    if case == "upload":
        from gemini_gateway.upstream.client import UpstreamClient
        from gemini_gateway.upstream.keypool import KeyPool

        upstream = UpstreamClient(settings, KeyPool(["sim-key-1"]))
    if case == "url":
        url = f"{media_dir}/payload.mp4"
    else:
        data = (Path(media_dir) / "payload.mp4").read_bytes()
        text = base64.b64encode(data).decode()
        del data
        url = ("data:video/mp4;base64," + text) if case == "data-url" else text
        del text
    body = orjson.dumps({"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What happens in this video?"},
        {"type": "image_url", "image_url": {"url": url}}]}]})
    del url
    request = orjson.loads(body)
    del body
    resolver = MediaResolver(settings, upstream)
    gc.collect()

    baseline = _rss("VmRSS")
    _reset_peak()
    started = time.perf_counter()
    resolved = await resolver.resolve(request["messages"])
    resolve_seconds = time.perf_counter() - started
    resolve_peak = _rss("VmHWM") - baseline

    from gemini_gateway.upstream.json_body import encode_json_body

    gemini = {"contents": [{"role": "user", "parts": resolved.parts}]}
    del resolved
    _reset_peak()
    encoded = encode_json_body(gemini)
    pieces = [encoded] if isinstance(encoded, bytes) else encoded.chunks()
    body_size = sum(len(piece) for piece in pieces)  # what aiohttp writes to the socket
    send_peak = _rss("VmHWM") - baseline
    del encoded, pieces
    gc.collect()
    _reset_peak()
    dumped = orjson.dumps(gemini)
    dumps_peak = _rss("VmHWM") - baseline
    del dumped
    await resolver.close()
    if upstream is not None:
        await upstream.close()
    return {
        "case": case, "mb": size // MB, "resolve_s": round(resolve_seconds, 3),
        "resolve_peak_x": round(resolve_peak / size, 2),
        "with_serialise_peak_x": round(send_peak / size, 2),
        "with_dumps_peak_x": round(dumps_peak / size, 2),
        "gemini_body_mb": round(body_size / MB, 1),
    }


def _serve_directory(directory: str) -> tuple[http.server.ThreadingHTTPServer, str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=directory, **kwargs)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def _start_simulator() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gemini_gateway", "simulator", "--port", str(port),
         "--no-validate"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, url
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the simulator did not start")


def _proc_status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def _post(url: str, license: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "Authorization": license})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=300) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _start_gateway(sim_url: str, data_dir: str) -> tuple[subprocess.Popen[bytes], str, str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEMINI_GATEWAY_")}
    env.update(
        GEMINI_GATEWAY_HOST="127.0.0.1", GEMINI_GATEWAY_PORT=str(port),
        GEMINI_GATEWAY_DATA_DIR=data_dir, GEMINI_GATEWAY_UPSTREAM_KEYS="sim-key-1",
        GEMINI_GATEWAY_UPSTREAM_BASE_URL=sim_url, GEMINI_GATEWAY_LOG_LEVEL="WARNING",
        GEMINI_GATEWAY_MEDIA_MAX_BYTES=str(200 * MB),
        GEMINI_GATEWAY_MAX_BODY_BYTES=str(400 * MB),
        GEMINI_GATEWAY_INLINE_LIMIT_BYTES=str(400 * MB),
    )
    license = subprocess.run(
        [sys.executable, "-m", "gemini_gateway", "license", "create", "--name", "bench"],
        env=env, capture_output=True, text=True, check=True,
    ).stdout.strip().splitlines()[-1].strip()
    process = subprocess.Popen(
        [sys.executable, "-m", "gemini_gateway", "serve"], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/gemini/v1/chat/completions"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, url, license
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the gateway did not start")


def _e2e_rows(sizes: list[int], sim_url: str) -> list[dict[str, Any]]:
    """Peak RSS of a real gateway process while it serves data-url and base64 requests."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        process, url, license = _start_gateway(sim_url, tmp)
        try:
            warm = orjson_dumps_request(base64.b64encode(SAMPLE.read_bytes()).decode())
            for _ in range(3):
                status, answer = _post(url, license, warm)
                if status != 200:
                    raise RuntimeError(f"warm-up request failed: {status} {answer[:300]!r}")
            for mb in sizes:
                text = base64.b64encode(_payload(mb * MB)).decode()
                for case in ("data-url", "base64"):
                    body = orjson_dumps_request(
                        ("data:video/mp4;base64," + text) if case == "data-url" else text
                    )
                    baseline = _proc_status(process.pid, "VmRSS")
                    Path(f"/proc/{process.pid}/clear_refs").write_text("5")
                    started = time.perf_counter()
                    status, answer = _post(url, license, body)
                    seconds = time.perf_counter() - started
                    if status != 200:
                        raise RuntimeError(f"{case} {mb} MB: {status} {answer[:300]!r}")
                    peak = _proc_status(process.pid, "VmHWM") - baseline
                    rows.append({"case": case, "mb": mb, "seconds": round(seconds, 3),
                                 "peak_x": round(peak / (mb * MB), 2),
                                 "request_mb": round(len(body) / MB, 1)})
                    print(json.dumps(rows[-1]), flush=True)
                    del body
        finally:
            process.terminate()
            process.wait(30)
    return rows


def orjson_dumps_request(url: str) -> bytes:
    import orjson

    return orjson.dumps({"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What happens in this video?"},
        {"type": "image_url", "image_url": {"url": url}}]}]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="1,20,80", help="payload sizes in MB")
    parser.add_argument("--cases", default="data-url,base64,url,upload")
    parser.add_argument("--no-e2e", dest="e2e", action="store_false",
                        help="skip the end-to-end gateway measurement")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        case, size, media_dir, sim_url = json.loads(args.child)
        print(json.dumps(asyncio.run(_child(case, size, media_dir, sim_url))))
        return

    cases = args.cases.split(",")
    simulator = None
    sim_url = ""
    if "upload" in cases or args.e2e:
        simulator, sim_url = _start_simulator()
    rows = []
    e2e: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            server, served = _serve_directory(tmp)
            try:
                for mb in (int(s) for s in args.sizes.split(",")):
                    (Path(tmp) / "payload.mp4").write_bytes(_payload(mb * MB))
                    for case in cases:
                        where = served if case == "url" else tmp
                        spec = json.dumps([case, mb * MB, where, sim_url])
                        out = subprocess.run(
                            [sys.executable, __file__, "--child", spec],
                            capture_output=True, text=True, check=True,
                        ).stdout
                        rows.append(json.loads(out.strip().splitlines()[-1]))
                        print(json.dumps(rows[-1]), flush=True)
            finally:
                server.shutdown()
        if args.e2e:
            e2e = _e2e_rows([int(s) for s in args.sizes.split(",")], sim_url)
    finally:
        if simulator is not None:
            simulator.terminate()
            simulator.wait(10)
    print()
    print("| case | MB | resolve s | peak extra (× payload) | + serialise (× payload) "
          "| + one orjson.dumps, before (× payload) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        print(f"| {row['case']} | {row['mb']} | {row['resolve_s']} | {row['resolve_peak_x']} "
              f"| {row['with_serialise_peak_x']} | {row['with_dumps_peak_x']} |")
    if e2e:
        print()
        print("| gateway end to end | MB | request MB | latency s | peak extra RSS (× payload) |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for row in e2e:
            print(f"| {row['case']} | {row['mb']} | {row['request_mb']} | {row['seconds']} "
                  f"| {row['peak_x']} |")


if __name__ == "__main__":
    main()
