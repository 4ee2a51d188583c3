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
import sys
import time
from collections.abc import Iterator
from typing import Any

log = logging.getLogger(__name__)

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
    p.add_argument(
        "--source",
        default="synthetic",
        help="'synthetic' (default; the synthetic arm with all sensors) or a recording / .npz file",
    )
    p.add_argument("--minutes", type=float, default=60.0, help="data minutes for the throughput run (default 60)")
    p.add_argument("--latency-minutes", type=float, default=5.0, help="data minutes for the latency run")
    p.add_argument("--memory-minutes", type=float, default=60.0, help="data minutes for the memory run")
    p.add_argument("--seed", type=int, default=0, help="synthetic arm seed")
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="throughput runs; the median is reported (a shared machine's speed varies from run to run)",
    )
    p.add_argument("--config", help="pipeline configuration TOML")
    p.add_argument("--flight", action="store_true", help="run the drone flight bench instead")
    g = p.add_argument_group("flight bench (with --flight; see emgpilot.drone.flightbench)")
    g.add_argument("--wearers", type=int, default=4, help="simulated wearers flying the course (default 4)")
    g.add_argument("--course", help="course TOML (default: the built-in hoop course)")
    g.add_argument("--mapping", help="gesture-to-command mapping TOML")
    g.add_argument("--oracle", action="store_true", help="perfect recognition (isolates the flying from the EMG)")
    g.add_argument(
        "--calibrate",
        action="store_true",
        help="each wearer first makes a 1.5-minute cued calibration session (emgpilot calibrate)",
    )
    g.add_argument("--short", action="store_true", help="the two-hoop course (quick check)")
    g.add_argument("--max-gestures", type=int, help="gestures per wearer at most (default 120)")
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
def run(args: argparse.Namespace) -> int:
    from emgpilot.app.cli import CLIError
    from emgpilot.classifiers.metrics import json_safe
    from emgpilot.config import ConfigError

    if args.flight:
        try:
            from emgpilot.drone.flightbench import run_flight_bench
        except ImportError as e:
            raise CLIError(f"the drone flight bench is not available ({e})") from e
        try:
            result = run_flight_bench(args)
        except (ValueError, ConfigError, OSError) as e:
            raise CLIError(str(e)) from e
        _print(result, args.json)
        return 0
    if min(args.minutes, args.latency_minutes, args.memory_minutes) <= 0:
        raise CLIError("--minutes, --latency-minutes and --memory-minutes must be positive")
    if args.repeat < 1:
        raise CLIError("--repeat must be at least 1")
    from emgpilot.classifiers.evaluation import EvaluationError

    try:
        result = measure(args)
    except (ValueError, ConfigError, EvaluationError) as e:
        raise CLIError(str(e)) from e
    _print(json_safe(result), args.json)
    return 0


def _print(result: dict, as_json: bool) -> None:
    from emgpilot.classifiers.metrics import json_safe

    if as_json:
        print(json.dumps(json_safe(result), indent=2, allow_nan=False))
        return
    for key, value in result.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                if isinstance(v, dict) and v and all(isinstance(x, float) for x in v.values()):
                    v = ", ".join(f"{name} {x:.3g}" for name, x in v.items())
                print(f"  {k:28s} {v:.4g}" if isinstance(v, float) else f"  {k:28s} {v}")
        elif isinstance(value, list) and value and isinstance(value[0], dict):
            print(f"{key}:")
            for item in value:
                print("  " + json.dumps(item, separators=(",", ":")))
        else:
            print(f"{key:30s} {value}")
    sys.stdout.flush()
