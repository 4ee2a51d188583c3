"""``emgpilot bench``: how fast and how lean the whole pipeline runs on this machine.

Three measurements on one core (torch limited to one thread):

1. throughput: data-seconds processed per CPU-second of this process (and per wall-second, which
   other processes on a shared machine inflate), feeding 10 s blocks as offline evaluation does;
2. per-chunk latency (p50, p99, max) when fed in live-sized chunks (2 Myo EMG samples, 1 IMU
   sample, 10 upper-arm samples: what the devices deliver every ~10-20 ms), as wall time and as
   the thread's CPU time (which a busy shared machine does not inflate);
3. memory growth over a long replay (tracemalloc, sampled every data-minute; the source's own
   chunk sizes, because tracemalloc makes each push several times slower).

``--flight`` instead runs the drone flight bench (``emgpilot.drone.flightbench``).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import time
from collections.abc import Iterator
from typing import Any

from emgpilot.app.commands.argtypes import non_negative_int, positive_float, positive_int

log = logging.getLogger(__name__)

PIPELINE_DEFAULTS: dict[str, Any] = {
    "source": "synthetic",
    "minutes": 60.0,
    "latency_minutes": 5.0,
    "memory_minutes": 60.0,
    "repeat": 3,
}
"""The pipeline bench's own options and their defaults (the flight bench ignores them)."""

FLIGHT_ONLY = ("wearers", "course", "short", "mapping", "oracle", "calibrate", "max_gestures")
"""Options only the flight bench reads."""

LIVE_CHUNK = {"forearm_emg": 2, "forearm_imu": 1, "upper_emg": 10}
"""Samples per message as the live devices deliver them (Myo: 2 EMG samples per BLE notification)."""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="pipeline throughput (x real time), live per-chunk latency and memory growth; --flight: drone bench",
        description=(
            "Measures the whole recognition pipeline on one core: throughput in x real time, per-chunk "
            "processing latency p50/p99 in live-sized chunks, and memory growth over a long replay."
        ),
    )
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    # The options of one bench only default to None so that run() can tell a value given to the
    # other bench (which would ignore it) from the default; PIPELINE_DEFAULTS fills them in.
    p.add_argument(
        "--source",
        help="'synthetic' (default; the synthetic arm with all sensors) or a recording / .npz file",
    )
    p.add_argument(
        "--minutes", type=positive_float, help="data minutes for the throughput run (default: 60)", metavar="MIN"
    )
    p.add_argument(
        "--latency-minutes", type=positive_float, help="data minutes for the latency run (default: 5)", metavar="MIN"
    )
    p.add_argument(
        "--memory-minutes",
        type=positive_float,
        metavar="MIN",
        help="data minutes for the memory run (default: 60; the growth figure needs over 2)",
    )
    p.add_argument(
        "--seed",
        type=non_negative_int,
        help="synthetic arm seed; with --flight the first wearer's (default: 0)",
    )
    p.add_argument(
        "--repeat",
        type=positive_int,
        metavar="N",
        help="throughput runs; the median is reported, as a shared machine's speed varies from run to run (default: 3)",
    )
    p.add_argument("--config", help="pipeline configuration TOML (default: the built-in settings)")
    p.add_argument("--flight", action="store_true", help="run the drone flight bench instead")
    g = p.add_argument_group("flight bench (with --flight; see emgpilot.drone.flightbench)")
    g.add_argument("--wearers", type=positive_int, metavar="N", help="simulated wearers flying the course (default: 4)")
    which = g.add_mutually_exclusive_group()
    which.add_argument("--course", help="course TOML (default: the built-in hoop course)")
    which.add_argument("--short", action="store_true", help="the built-in two-hoop course (quick check)")
    g.add_argument("--mapping", help="gesture-to-command mapping TOML (default: the built-in mapping)")
    g.add_argument("--oracle", action="store_true", help="perfect recognition (isolates the flying from the EMG)")
    g.add_argument(
        "--calibrate",
        action="store_true",
        help="each wearer first makes a 1.5-minute cued calibration session (emgpilot calibrate)",
    )
    g.add_argument("--max-gestures", type=positive_int, metavar="N", help="gestures per wearer at most (default: 120)")
    p.set_defaults(func=run)


# --------------------------------------------------------------------------- sources
def _synthetic_reads(seed: int, duration_s: float, chunk_s: float) -> Iterator[list]:
    from emgpilot.signals.synthetic import SyntheticArm

    arm = SyntheticArm(seed=seed, speed=math.inf, duration_s=duration_s, chunk_s=chunk_s)
    arm.start()
    try:
        while not arm.finished:
            batch = arm.read(0.0)
            if batch:
                yield batch
        batch = arm.read(0.0)
        if batch:
            yield batch
    finally:
        arm.stop()


def _file_reads(path: str, duration_s: float) -> Iterator[list]:
    """The first session of a file, looped (shifted in time) until ``duration_s`` of data."""
    from emgpilot.classifiers.evaluation import sessions_from_path
    from emgpilot.signals.streams import Chunk, message_time

    session = sessions_from_path(path)[0]
    chunks = sorted((m for m in session.messages if isinstance(m, Chunk) and len(m)), key=message_time)
    if not chunks:
        return
    t0 = min(float(c.t[0]) for c in chunks)
    span = max(c.t_end for c in chunks) - t0 + 0.01
    offset = 0.0
    while offset < duration_s:
        for c in chunks:
            if float(c.t[0]) - t0 + offset >= duration_s:
                return
            yield [Chunk(c.info, c.t + offset, c.data)]
        offset += span


def _source_streams(args: argparse.Namespace) -> list:
    if args.source == "synthetic":
        from emgpilot.signals.synthetic import SyntheticArm

        return list(SyntheticArm(seed=args.seed, speed=math.inf, duration_s=1.0).streams())
    from emgpilot.classifiers.evaluation import sessions_from_path

    return list(sessions_from_path(args.source)[0].streams)


OFFLINE_CHUNK_S = 10.0
"""Block size (data-seconds) for the throughput and memory runs, as ``emgpilot evaluate`` pushes
(:data:`emgpilot.classifiers.evaluation.OFFLINE_BLOCK_S`): the synthetic arm generates blocks this
long, a file's chunks are joined into them."""


def _joined(reads: Iterator[list], block_s: float) -> Iterator[list]:
    """A file's chunks regrouped into blocks of up to ``block_s`` data-seconds per stream."""
    from emgpilot.classifiers.evaluation import offline_blocks
    from emgpilot.signals.streams import Chunk

    pending: list = []
    t0 = math.inf
    for batch in reads:
        pending.extend(batch)
        t0 = min([t0, *(float(m.t[0]) for m in batch if isinstance(m, Chunk) and len(m))])
        if max((m.t_end for m in pending if isinstance(m, Chunk)), default=-math.inf) - t0 >= block_s:
            yield offline_blocks(pending, block_s)
            pending, t0 = [], math.inf
    if pending:
        yield offline_blocks(pending, block_s)


def _reads(args: argparse.Namespace, duration_s: float, chunk_s: float = OFFLINE_CHUNK_S) -> Iterator[list]:
    if args.source == "synthetic":
        return _synthetic_reads(args.seed, duration_s, chunk_s)
    reads = _file_reads(args.source, duration_s)
    return _joined(reads, chunk_s) if chunk_s >= OFFLINE_CHUNK_S else reads


def _live_pieces(batch: list, names: set[str]) -> list:
    from emgpilot.signals.streams import Chunk, GapEvent, message_time

    out = []
    for m in batch:
        if isinstance(m, Chunk) and m.info.name in names:
            k = LIVE_CHUNK.get(m.info.name, 1)
            out.extend(m.slice(i, i + k) for i in range(0, len(m), k))
        elif isinstance(m, GapEvent) and m.source_stream in names:
            out.append(m)
    out.sort(key=message_time)
    return out


def _offline_msgs(batch: list, names: set[str]) -> list:
    from emgpilot.signals.streams import Chunk, GapEvent, message_time

    out = [
        m
        for m in batch
        if (isinstance(m, Chunk) and m.info.name in names) or (isinstance(m, GapEvent) and m.source_stream in names)
    ]
    out.sort(key=message_time)
    return out


# --------------------------------------------------------------------------- measurements
def _time_stages(pipe) -> dict[str, float]:
    """Wrap every stage's ``process``/``advance`` to add up its own wall time (seconds)."""
    spent: dict[str, float] = {}

    def timed(name: str, fn):
        def wrapper(*a):
            w0 = time.perf_counter()
            try:
                return fn(*a)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - w0

        return wrapper

    for stage in pipe.stages:
        spent[stage.name] = 0.0
        stage.process = timed(stage.name, stage.process)
        stage.advance = timed(stage.name, stage.advance)
    return spent


def _throughput(args: argparse.Namespace, sources: list, names: set[str], cfg: Any) -> dict:
    """One throughput run in offline blocks: data seconds per CPU second, and each stage's share."""
    import numpy as np

    from emgpilot.build import build_pipeline
    from emgpilot.signals.streams import Chunk

    pipe = build_pipeline(sources, cfg)
    stage_s = _time_stages(pipe)
    busy = 0.0
    cpu = 0.0
    t_first, t_last = math.inf, -math.inf
    emg_sizes: list[int] = []
    for batch in _reads(args, 60.0 * args.minutes):
        msgs = _offline_msgs(batch, names)
        for m in msgs:
            if isinstance(m, Chunk) and len(m):
                t_first, t_last = min(t_first, float(m.t[0])), max(t_last, m.t_end)
                if m.info.name == "forearm_emg":
                    emg_sizes.append(len(m))
        w0, c0 = time.perf_counter(), time.process_time()
        for m in msgs:
            pipe.push(m)
        busy += time.perf_counter() - w0
        cpu += time.process_time() - c0
    w0, c0 = time.perf_counter(), time.process_time()
    pipe.finish()
    busy += time.perf_counter() - w0
    cpu += time.process_time() - c0
    data_s = max(0.0, t_last - t_first)
    return {
        "data_s": data_s,
        "cpu_s": cpu,
        "wall_s": busy,
        "realtime_factor": data_s / cpu if cpu > 0 else math.nan,
        "realtime_factor_wall": data_s / busy if busy > 0 else math.nan,
        "median_emg_chunk_samples": float(np.median(emg_sizes)) if emg_sizes else math.nan,
        "stage_share": {k: v / busy for k, v in sorted(stage_s.items(), key=lambda kv: -kv[1])} if busy else {},
    }


def measure(args: argparse.Namespace) -> dict:
    """Run the three measurements; returns a JSON-ready dict."""
    import tracemalloc

    import numpy as np

    from emgpilot.build import build_pipeline, load_pipeline_config
    from emgpilot.classifiers.evaluation import SENSOR_NAMES
    from emgpilot.signals.streams import Chunk

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    cfg = load_pipeline_config(args.config)
    sources = [s for s in _source_streams(args) if not s.is_event and s.name in SENSOR_NAMES]
    names = {s.name for s in sources}

    # 1. throughput in offline blocks, the median of --repeat runs
    runs = [_throughput(args, sources, names, cfg) for _ in range(max(1, args.repeat))]
    throughput = sorted(runs, key=lambda r: r["realtime_factor"])[len(runs) // 2]
    throughput["realtime_factor_runs"] = [r["realtime_factor"] for r in runs]

    # 2. per-chunk latency in live-sized chunks
    pipe = build_pipeline(sources, cfg)
    lat_ns: list[int] = []
    cpu_ns: list[int] = []
    for batch in _reads(args, 60.0 * args.latency_minutes, chunk_s=0.1):
        for m in _live_pieces(batch, names):
            w0, c0 = time.perf_counter_ns(), time.thread_time_ns()
            pipe.push(m)
            cpu_ns.append(time.thread_time_ns() - c0)
            lat_ns.append(time.perf_counter_ns() - w0)
    lat_us = np.asarray(lat_ns, dtype=float) / 1000.0
    cpu_us = np.asarray(cpu_ns, dtype=float) / 1000.0

    # 3. memory growth over a long replay (offline blocks: tracemalloc slows every push)
    pipe = build_pipeline(sources, cfg)
    tracemalloc.start()
    samples: list[tuple[float, float]] = []
    next_mark = None
    t0 = None
    for batch in _reads(args, 60.0 * args.memory_minutes):
        for m in _offline_msgs(batch, names):
            pipe.push(m)
            if isinstance(m, Chunk) and len(m):
                t0 = float(m.t[0]) if t0 is None else t0
                next_mark = t0 if next_mark is None else next_mark
                if m.t_end >= next_mark:
                    samples.append(((m.t_end - t0) / 60.0, tracemalloc.get_traced_memory()[0] / 2**20))
                    next_mark += 60.0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    growth_per_h = math.nan
    later = [s for s in samples if s[0] >= 1.0]
    if len(later) >= 2:
        mins, mb = np.array(later).T
        growth_per_h = float(np.polyfit(mins, mb, 1)[0] * 60.0)

    return {
        "machine": machine(),
        "source": args.source,
        "streams": sorted(names),
        "throughput": throughput,
        "live_chunk_latency_us": {
            "chunks": len(lat_ns),
            "p50": _pct(lat_us, 50),
            "p99": _pct(lat_us, 99),
            "max": float(lat_us.max()) if len(lat_us) else math.nan,
            "cpu_p50": _pct(cpu_us, 50),
            "cpu_p99": _pct(cpu_us, 99),
            "cpu_max": float(cpu_us.max()) if len(cpu_us) else math.nan,
            "chunk_samples": LIVE_CHUNK,
        },
        "memory": {
            "minutes": args.memory_minutes,
            "traced_mb_at_1_min": later[0][1] if later else math.nan,
            "traced_mb_at_end": samples[-1][1] if samples else math.nan,
            "growth_mb_per_hour": growth_per_h,
            "peak_traced_mb": peak / 2**20,
        },
    }


def _pct(x, q: float) -> float:
    import numpy as np

    return float(np.percentile(x, q)) if len(x) else math.nan


def machine() -> dict:
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"cpu": cpu, "nproc": os.cpu_count(), "python": platform.python_version(), "os": platform.platform()}


# --------------------------------------------------------------------------- command
def _given(args: argparse.Namespace, names) -> list[str]:
    return [f"--{n.replace('_', '-')}" for n in names if getattr(args, n, None) not in (None, False)]


def check_options(args: argparse.Namespace) -> None:
    """Refuse options the chosen bench would silently ignore, then fill in the defaults."""
    from emgpilot.app.cli import CLIError

    if args.flight:
        stray = _given(args, PIPELINE_DEFAULTS)
        if stray:
            raise CLIError(f"{', '.join(stray)}: not used by the flight bench (drop --flight to measure the pipeline)")
        if args.oracle and (args.calibrate or args.config):
            stray = _given(args, ("calibrate", "config"))
            raise CLIError(f"{', '.join(stray)}: not used with --oracle (perfect recognition, no pipeline)")
        return
    stray = _given(args, FLIGHT_ONLY)
    if stray:
        raise CLIError(f"{', '.join(stray)}: only used by the flight bench (add --flight)")
    for name, value in PIPELINE_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.seed is not None and args.source != "synthetic":
        raise CLIError("--seed: only used with the synthetic source (a file's data is what it is)")
    if args.seed is None:
        args.seed = 0


def run(args: argparse.Namespace) -> int:
    from emgpilot.app.cli import CLIError
    from emgpilot.classifiers.metrics import json_safe
    from emgpilot.config import ConfigError

    check_options(args)
    if args.flight:
        try:
            from emgpilot.drone.flightbench import run_flight_bench
        except ImportError as e:
            raise CLIError(f"the drone flight bench is not available ({e})") from e
        try:
            result, report = run_flight_bench(args), flight_report
        except (ValueError, ConfigError, OSError) as e:
            raise CLIError(str(e)) from e
    else:
        from emgpilot.classifiers.evaluation import EvaluationError

        try:
            result, report = measure(args), pipeline_report
        except (ValueError, ConfigError, EvaluationError) as e:
            raise CLIError(str(e)) from e
    if args.json:
        _print_json(result)
    else:
        print(report(json_safe(result)), flush=True)
    return 0


def _print_json(result: dict) -> None:
    from emgpilot.classifiers.metrics import json_safe

    print(json.dumps(json_safe(result), indent=2, allow_nan=False), flush=True)


# --------------------------------------------------------------------------- text reports
def _num(x: Any, digits: int = 3) -> str:
    """``x`` to ``digits`` significant figures, without scientific notation for everyday sizes."""
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if isinstance(x, int) or float(x) == 0.0:
        return str(int(x)) if float(x).is_integer() else f"{x:g}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(float(x)))))
    return f"{float(x):.{decimals}f}"


def _percent(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{100 * x:.1f} %"


def _table(header: list[str], rows: list[list[str]], align: str = "", indent: str = "  ") -> list[str]:
    """Columns padded to their widest cell; ``align``: one l/r per column (default: the first
    left-aligned, the others right-aligned)."""
    align = align or "l" + "r" * (len(header) - 1)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(cells, widths, align, strict=True)]
        return (indent + "  ".join(padded)).rstrip()

    return [line(header), *(line(r) for r in rows)]


def _pairs(rows: list[tuple[str, str]], indent: str = "  ") -> list[str]:
    width = max((len(k) for k, _ in rows), default=0)
    return [f"{indent}{k.ljust(width)}  {v}" for k, v in rows]


def pipeline_report(r: dict) -> str:
    """The pipeline bench as an aligned text report (``r``: the JSON-safe result of :func:`measure`)."""
    m, tp, lat, mem = r["machine"], r["throughput"], r["live_chunk_latency_us"], r["memory"]
    runs = tp.get("realtime_factor_runs") or []
    lines = [
        f"machine: {m['cpu'] or 'unknown CPU'}, {m['nproc']} core(s), Python {m['python']}, {m['os']}",
        f"source:  {r['source']} ({', '.join(r['streams'])})",
        "",
        f"throughput (offline {OFFLINE_CHUNK_S:.0f} s blocks, one core; median of {len(runs)} run(s))",
    ]
    lines += _pairs(
        [
            ("x real time (CPU)", _num(tp["realtime_factor"])),
            ("x real time (wall)", _num(tp["realtime_factor_wall"])),
            ("runs (x real time, CPU)", ", ".join(_num(x) for x in runs) or "n/a"),
            ("data", f"{_num(tp['data_s'])} s in {_num(tp['cpu_s'])} s CPU, {_num(tp['wall_s'])} s wall"),
            ("forearm EMG block", f"{_num(tp['median_emg_chunk_samples'])} samples (median)"),
        ]
    )
    stages = tp.get("stage_share") or {}
    if stages:
        lines += ["  share of the time per stage (wall)"]
        lines += _pairs([(name, _percent(share).rjust(7)) for name, share in stages.items()], indent="    ")
    sizes = ", ".join(f"{name} {n}" for name, n in lat["chunk_samples"].items())
    lines += ["", f"live per-chunk latency, µs ({lat['chunks']} chunks of {sizes} samples)"]
    lines += _table(
        ["", "p50", "p99", "max"],
        [
            ["wall", _num(lat["p50"]), _num(lat["p99"]), _num(lat["max"])],
            ["CPU", _num(lat["cpu_p50"]), _num(lat["cpu_p99"]), _num(lat["cpu_max"])],
        ],
    )
    growth = mem["growth_mb_per_hour"]
    lines += ["", f"memory over {mem['minutes']:g} data-minutes (tracemalloc)"]
    lines += _pairs(
        [
            (
                "traced after 1 min",
                "n/a" if mem["traced_mb_at_1_min"] is None else f"{_num(mem['traced_mb_at_1_min'])} MB",
            ),
            ("traced at the end", "n/a" if mem["traced_mb_at_end"] is None else f"{_num(mem['traced_mb_at_end'])} MB"),
            ("growth", "n/a (needs over 2 data-minutes)" if growth is None else f"{_num(growth)} MB per hour"),
            ("peak traced", f"{_num(mem['peak_traced_mb'])} MB"),
        ]
    )
    return "\n".join(lines)


def flight_report(r: dict) -> str:
    """The flight bench as an aligned text report (``r``: the JSON-safe result of ``run_flight_bench``)."""
    wearers = r.get("per_wearer") or []
    reference = (r.get("reference") or {}).get("conduct_a_bot_real_flights")
    lines = [
        f"flight bench: {r['wearers']} wearer(s), recognition: {r['recognition']}, {_num(r['wall_s'])} s wall",
        "",
    ]
    rate = f"{_percent(r['correct_response_rate'])} of {r['gestures']} gestures"
    rate += f" (mean over gestures {_percent(r['correct_response_rate_per_gesture_mean'])}"
    rate += f"; Conduct-A-Bot real flights {_percent(reference)})" if reference is not None else ")"
    outcomes = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in r["outcomes"].items())
    mean_time = r["mean_course_time_s"]
    lines += _pairs(
        [
            ("correct responses", rate),
            ("outcomes", outcomes or "none"),
            ("hoops passed", f"{r['hoops_passed']}/{r['hoops_total']}"),
            ("collisions", str(r["collisions"])),
            ("spurious commands", str(r["spurious_commands"])),
            ("courses finished", f"{r['courses_finished']}/{r['wearers']}"),
            ("mean course time", "n/a" if mean_time is None else f"{_num(mean_time)} s"),
        ],
        indent="",
    )
    if r["by_gesture"]:
        rows = []
        for gesture, row in r["by_gesture"].items():
            seen = {k.removeprefix("recognised_"): v for k, v in row.items() if k.startswith("recognised_")}
            made = row.get("made", 0)
            rows.append(
                [
                    gesture,
                    str(made),
                    str(row.get("correct", 0)),
                    _percent(row.get("correct", 0) / made if made else None),
                    ", ".join(f"{k} {v}" for k, v in seen.items()),
                ]
            )
        lines += ["", "per gesture"]
        lines += _table(["gesture", "made", "correct", "rate", "recognised as"], rows, align="lrrrl")
    if wearers:
        rows = [
            [
                str(w.get("seed", "")),
                str(w["gestures"]),
                str(w["correct"]),
                _percent(w["correct"] / w["gestures"] if w["gestures"] else None),
                f"{w['hoops_passed']}/{w['hoops_total']}",
                str(w["collisions"]),
                str(w["spurious_commands"]),
                "n/a" if w.get("course_time_s") is None else _num(w["course_time_s"]),
            ]
            for w in wearers
        ]
        header = ["seed", "gestures", "correct", "rate", "hoops", "collisions", "spurious", "course s"]
        lines += ["", "per wearer", *_table(header, rows, align="r" * len(header))]
    return "\n".join(lines)
