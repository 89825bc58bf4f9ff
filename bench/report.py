"""The bench's results as Markdown: every run, then the targets with pass or miss."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from open_streams import OpenStreamsResult
    from run import RunResult

LABELS = {
    "sim": "(a) simulator",
    "proxy": "(b) pass-through",
    "raw": "(b') leanest relay",
    "gateway": "(c) gateway",
}
MB = 1024 * 1024

# The targets, measured on the 2-core bench machines.
MIN_THROUGHPUT_RATIO = 0.60  # (c)/(b) req/s at concurrency 32
MAX_ADDED_P50_MS = 1.0  # (c) - (a) p50 at concurrency 1
MAX_CPU_MS = 0.3  # gateway CPU per request
MAX_OPEN_STREAMS_RSS = 200 * MB
MIN_LIMITS_RATIO = 0.80  # issue 3: req/s with licenses, limits and ledger vs. a license without


def _label(target: str) -> str:
    """The table label; gateways in other setups are ``gateway/<config>``."""
    if target in LABELS:
        return LABELS[target]
    return f"(c) gateway, {target.partition('/')[2]}"


def _find(results: list[RunResult], target: str, stream: bool, level: int) -> RunResult | None:
    for r in results:
        if (r.target, r.stream, r.concurrency) == (target, stream, level):
            return r
    return None


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def runs_table(results: list[RunResult]) -> list[str]:
    lines = [
        "| mode | conc. | target | req/s | p50 ms | p99 ms | CPU ms/req | errors |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        cpu = "–" if r.cpu_ms_per_request is None else f"{r.cpu_ms_per_request:.3f}"
        lines.append(
            f"| {'stream' if r.stream else 'plain'} | {r.concurrency} | {_label(r.target)} "
            f"| {r.rps:,.0f} | {r.p50_ms:.2f} | {r.p99_ms:.2f} | {cpu} | {r.errors} |"
        )
    return lines


def targets_table(
    results: list[RunResult],
    streams: OpenStreamsResult | None,
    translation: tuple[float, float, float] | None = None,
) -> list[str]:
    lines = ["| target | plain | stream | goal |", "| --- | ---: | ---: | --- |"]
    levels = sorted({r.concurrency for r in results})
    for level in levels:
        cells, oks = [], []
        for stream in (False, True):
            gw = _find(results, "gateway", stream, level)
            proxy = _find(results, "proxy", stream, level)
            if gw and proxy and proxy.rps:
                ratio = gw.rps / proxy.rps
                cells.append(f"{ratio:.0%}")
                oks.append(ratio >= MIN_THROUGHPUT_RATIO)
            else:
                cells.append("–")
        goal = f"≥ {MIN_THROUGHPUT_RATIO:.0%}: {_verdict(all(oks))}" if level == 32 and oks else ""
        lines.append(f"| (c)/(b) req/s, conc. {level} | {cells[0]} | {cells[1]} | {goal} |")
    cells, oks = [], []
    for stream in (False, True):
        gw, sim = _find(results, "gateway", stream, 1), _find(results, "sim", stream, 1)
        if gw and sim:
            added = gw.p50_ms - sim.p50_ms
            cells.append(f"{added:+.2f} ms")
            oks.append(added <= MAX_ADDED_P50_MS)
        else:
            cells.append("–")
    goal = f"≤ {MAX_ADDED_P50_MS:g} ms: {_verdict(all(oks))}" if oks else ""
    lines.append(f"| (c)−(a) p50, conc. 1 | {cells[0]} | {cells[1]} | {goal} |")
    for target in ("raw", "proxy", "gateway"):
        cells, oks = [], []
        for stream in (False, True):
            cpu = [
                r.cpu_ms_per_request
                for r in results
                if r.target == target and r.stream == stream and r.cpu_ms_per_request is not None
            ]
            if cpu:
                cells.append(f"{min(cpu):.3f}–{max(cpu):.3f} ms")
                oks.append(max(cpu) <= MAX_CPU_MS)
            else:
                cells.append("–")
        if cells == ["–", "–"]:
            continue
        # Only the gateway has the goal; the floors show what any Python hop costs here.
        goal = f"≤ {MAX_CPU_MS:g} ms: {_verdict(all(oks))}" if oks and target == "gateway" else ""
        lines.append(
            f"| {_label(target)} CPU per request (all conc.) | {cells[0]} | {cells[1]} | {goal} |"
        )
    if translation is not None:
        lines.append(
            f"| translation alone, no I/O (bench/translation.py) | {translation[0]:.3f} ms "
            f"| {translation[1]:.3f} ms | |"
        )
        lines.append(
            f"| of which only reading Gemini's stream (SSE split, JSON parse) | | "
            f"{translation[2]:.3f} ms | |"
        )
        floor = []
        for stream, cost in zip((False, True), translation[:2], strict=True):
            raw = [
                r.cpu_ms_per_request
                for r in results
                if r.target == "raw" and r.stream == stream and r.cpu_ms_per_request is not None
            ]
            floor.append(f"{min(raw) + cost:.3f} ms" if raw else "–")
        lines.append(
            f"| least any Python gateway costs: (b') + translation | {floor[0]} | {floor[1]} | |"
        )
    if streams is not None:
        ok = streams.opened == streams.streams and streams.rss_open <= MAX_OPEN_STREAMS_RSS
        lines.append(
            f"| gateway RSS with {streams.opened:,} of {streams.streams:,} streams open "
            f"| | {streams.rss_open / MB:.0f} MB | ≤ {MAX_OPEN_STREAMS_RSS // MB} MB: "
            f"{_verdict(ok)} |"
        )
    return lines


def paired_share(rounds: list[RunResult], r: RunResult) -> tuple[float, list[float]] | None:
    """The median, over rounds, of r's target's req/s ÷ the baseline's in the same round.

    Within a round the two ran minutes apart at most; across rounds the machine's speed moves by
    far more than the effect measured, so ratios are taken inside a round, then their median."""
    ratios = []
    for run in rounds:
        if (run.target, run.stream, run.concurrency) != (r.target, r.stream, r.concurrency):
            continue
        base = next(
            (
                b
                for b in rounds
                if (b.target, b.stream, b.concurrency, b.round)
                == ("gateway", r.stream, r.concurrency, run.round)
            ),
            None,
        )
        if base is not None and base.rps:
            ratios.append(run.rps / base.rps)
    if not ratios:
        return None
    return statistics.median(ratios), ratios


def configs_table(results: list[RunResult], rounds: list[RunResult] | None = None) -> list[str]:
    """Each gateway setup's runs beside the baseline's (license without limits)."""
    gateways = list(dict.fromkeys(r.target for r in results if r.target.startswith("gateway")))
    rounds = rounds or results
    lines = [
        "| config | mode | conc. | req/s | p50 ms | CPU ms/req | req/s vs baseline "
        "| same-round ratios |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    shares: list[float] = []  # under load: the throughput the goal is about
    latency_bound: list[float] = []  # concurrency 1: req/s is 1 / latency there
    for target in gateways:
        for r in results:
            if r.target != target:
                continue
            share, each = "–", ""
            paired = paired_share(rounds, r) if target != "gateway" else None
            if paired is not None:
                (shares if r.concurrency >= 32 else latency_bound).append(paired[0])
                share = f"{paired[0]:.0%}"
                each = " ".join(f"{ratio:.0%}" for ratio in paired[1])
            cpu = "–" if r.cpu_ms_per_request is None else f"{r.cpu_ms_per_request:.3f}"
            name = target.partition("/")[2] or "baseline"
            lines.append(
                f"| {name} | {'stream' if r.stream else 'plain'} | {r.concurrency} "
                f"| {r.rps:,.0f} | {r.p50_ms:.2f} | {cpu} | {share} | {each} |"
            )
    if shares or latency_bound:
        lines += [
            "",
            "req/s vs baseline: the median over rounds of the config's req/s ÷ the baseline's in "
            "the same round (each round starts one target later).",
        ]
    if shares:
        ok = min(shares) >= MIN_LIMITS_RATIO
        lines += [
            "",
            f"Throughput (concurrency 32 and up, as the core issue measures it): lowest share of "
            f"baseline {min(shares):.0%} (goal ≥ {MIN_LIMITS_RATIO:.0%}: {_verdict(ok)}).",
        ]
    if latency_bound:
        lines += [
            "",
            f"At concurrency 1 (one request at a time: req/s is the inverse of latency): lowest "
            f"share of baseline {min(latency_bound):.0%}.",
        ]
    return lines


def render_report(
    header: str,
    results: list[RunResult],
    streams: OpenStreamsResult | None,
    duration: int,
    warmup: int,
    repeat: int = 1,
    translation: tuple[float, float, float] | None = None,
    *,
    rounds: list[RunResult] | None = None,
) -> str:
    runs = f"median of {repeat} runs" if repeat > 1 else "one run"
    out = [
        f"Measured {header}; wrk -t1, {duration:g} s per run after {warmup:g} s warm-up, {runs}.",
        "",
    ]
    out += runs_table(results) + [""] + targets_table(results, streams, translation)
    if any(r.target.startswith("gateway/") for r in results):
        out += [""] + configs_table(results, rounds)
    if streams is not None:
        out += [
            "",
            f"Open streams: {streams.opened:,} of {streams.streams:,} open after "
            f"{streams.seconds_to_open:.1f} s (simulator writing {streams.simulator_open:,}); "
            f"gateway RSS {streams.rss_idle / MB:.0f} MB before, {streams.rss_open / MB:.0f} MB "
            f"with all open, peak {streams.peak_rss / MB:.0f} MB; {streams.completed:,} completed, "
            f"{streams.failed:,} failed.",
        ]
        out += [f"- {e}" for e in streams.errors]
    return "\n".join(out)
