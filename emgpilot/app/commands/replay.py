"""``emgpilot replay``: run a recording's source streams through the pipeline again."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "replay",
        help="replay a recording through the pipeline and compare with its recorded outputs",
        description=(
            "Replays the source streams of a recording (sensors, cue, gap, status) through the pipeline "
            "configured as when it was recorded, prints data time, wall time and speed, and compares the "
            "recomputed pipeline outputs with the recorded ones."
        ),
    )
    p.add_argument("path", nargs="?", help="recording (.mcap); omit with --sample")
    p.add_argument("--sample", action="store_true", help="replay the sample recording shipped with emgpilot")
    p.add_argument("--speed", default="max", help="1 (real time), N (N x faster) or max (default: max)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--recover", action="store_true", help="read the intact part of a damaged file")
    p.add_argument("--config", help="pipeline configuration TOML (default: the one stored in the recording)")
    p.add_argument(
        "--conditioning-only",
        action="store_true",
        help="run only the conditioning stages (filters, envelopes, IMU resampling), not the recognisers",
    )
    p.set_defaults(func=run)


def resolve_path(args: argparse.Namespace) -> str:
    from emgpilot.app.cli import CLIError

    if args.sample:
        if args.path:
            raise CLIError("give either PATH or --sample, not both")
        from emgpilot.recordings import sample_path

        try:
            return str(sample_path())
        except FileNotFoundError as e:
            raise CLIError(str(e)) from e
    if not args.path:
        raise CLIError("give a recording PATH (or --sample)")
    return args.path


def run(args: argparse.Namespace) -> int:
    import tempfile

    # where a calibration kept in the recording is written for the replay's pipeline
    with tempfile.TemporaryDirectory(prefix="emgpilot-replay-") as scratch:
        return _replay(args, scratch)


def _replay(args: argparse.Namespace, scratch: str) -> int:
    from emgpilot.app.cli import CLIError
    from emgpilot.build import build_pipeline, load_pipeline_config, pipeline_config_from_dict
    from emgpilot.config import ConfigError
    from emgpilot.signals.device import parse_speed
    from emgpilot.signals.recording import RecordingError, open_recording
    from emgpilot.signals.replay import ReplayDevice, compare_outputs
    from emgpilot.signals.runner import SessionRunner

    path = resolve_path(args)
    try:
        speed = parse_speed(args.speed)
    except ValueError as e:
        raise CLIError(str(e)) from e
    wall0, cpu0 = time.perf_counter(), time.process_time()
    try:
        rec = open_recording(path, recover=args.recover)
    except RecordingError as e:
        raise CLIError(str(e)) from e
    try:
        if args.config:
            cfg = load_pipeline_config(args.config)
        elif isinstance(rec.metadata.get("pipeline_config"), dict):
            recorded = pipeline_config_from_dict(rec.metadata["pipeline_config"])
            cfg = with_recorded_calibration(recorded, rec.metadata, path, scratch)
        else:
            cfg = load_pipeline_config(None)
    except ConfigError as e:
        raise CLIError(f"{path}: pipeline configuration: {e}") from e

    read_s, read_cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    device = ReplayDevice(rec, speed=speed)
    sources = {s.name for s in device.streams()}
    setup0 = time.perf_counter()
    if args.conditioning_only:
        from emgpilot.signals.pipeline import Pipeline
        from emgpilot.signals.preprocess import preprocessing_stages

        by_name = {s.name: s for s in device.streams() if not s.is_event}
        pipeline = Pipeline(preprocessing_stages(cfg.preprocess, by_name), sources=sources)
    else:
        try:
            pipeline = build_pipeline(device.streams(), cfg)
        except ValueError as e:
            raise CLIError(
                f"{path}: cannot build the pipeline for this recording's streams ({e}); try --conditioning-only"
            ) from e
    setup_s = time.perf_counter() - setup0
    # Events no stage consumes (cue, status) need not split the replay into small blocks.
    device.barrier_events = {name for stage in pipeline.stages for name in stage.inputs}
    recomputed: list = []

    def keep_derived(batch: list) -> None:
        from emgpilot.signals.streams import message_stream

        recomputed.extend(m for m in batch if message_stream(m) not in sources)

    runner = SessionRunner(device, pipeline, sinks=[keep_derived])
    run0, run_cpu0 = time.perf_counter(), time.process_time()
    try:
        stats = runner.run()
    except RecordingError as e:
        raise CLIError(str(e)) from e
    # Wall time = reading/decoding the file + running the pipeline; building the pipeline
    # (imports, loading models) is reported apart as setup_s.
    wall = read_s + time.perf_counter() - run0
    cpu = read_cpu + time.process_time() - run_cpu0
    try:
        recorded = device.recorded_outputs()
    except RecordingError as e:
        raise CLIError(str(e)) from e
    # Compare what this pipeline can produce; recorded streams it does not make are listed apart.
    producible = {s.name for s in pipeline.output_streams}
    comparison = None
    if recorded:
        from emgpilot.signals.streams import message_stream

        comparison = compare_outputs([m for m in recorded if message_stream(m) in producible], recomputed)
        comparison["not_recomputed"] = sorted({message_stream(m) for m in recorded} - producible)
    x_rt = stats.duration_s / wall if wall > 0 else math.inf
    x_rt_cpu = stats.duration_s / cpu if cpu > 0 else math.inf
    summary = {
        "path": path,
        "speed": args.speed,
        "duration_s": round(stats.duration_s, 3),
        "wall_s": round(wall, 3),
        "setup_s": round(setup_s, 3),
        "pipeline": "conditioning" if args.conditioning_only else "full",
        "x_real_time": round(x_rt, 1),
        "cpu_s": round(cpu, 3),
        "x_real_time_cpu": round(x_rt_cpu, 1),
        "samples": stats.samples,
        "events": stats.events,
        "comparison": comparison,
        "recovered": rec.recovered,
        "warnings": rec.warnings,
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    print(
        f"replay of {path}: {summary['duration_s']} s of data in {summary['wall_s']} s ({x_rt:.0f}x real time, "
        f"{summary['pipeline']} pipeline; {summary['setup_s']} s to build it)"
    )
    print(f"  CPU time {summary['cpu_s']} s ({x_rt_cpu:.0f}x real time per core)")
    for w in rec.warnings:
        print(f"  warning: {w}")
    for name, n in sorted(stats.samples.items()):
        tag = "" if name in sources else "  (recomputed)"
        print(f"  {name:28s} {n:10d} samples{tag}")
    for name, n in sorted(stats.events.items()):
        print(f"  {name:28s} {n:10d} events")
    if comparison is None:
        print("no recorded pipeline outputs to compare with")
    else:
        verdict = "identical" if comparison["identical"] else "DIFFERENT"
        print(
            f"recomputed vs recorded outputs: {verdict}: {comparison['match']} match, {comparison['differ']} differ, "
            f"{comparison['missing']} missing, {comparison['extra']} extra (samples and events)"
        )
        for name, res in comparison["streams"].items():
            if res["differ"] or res["missing"] or res["extra"]:
                print(
                    f"  {name}: {res['match']} of {res['recorded']} {res['unit']} match, "
                    f"max |diff| {res.get('max_abs_diff', 0):.3g}"
                )
        if comparison["not_recorded"]:
            print(f"  recomputed but not in the recording: {', '.join(comparison['not_recorded'])}")
        if comparison["not_recomputed"]:
            print(f"  recorded but not made by this pipeline: {', '.join(comparison['not_recomputed'])}")
    return 0


def with_recorded_calibration(cfg: Any, metadata: dict, path: str | Path, folder: str) -> Any:
    """A recorded configuration with the wearer calibration its session ran with: the copy kept in
    the recording (written to ``folder``), else the file it names; if neither can be used, without
    one (said on stderr: the decisions may then differ)."""
    import sys
    from dataclasses import replace

    from emgpilot.classifiers.calibration import CalibrationError, recorded_calibration
    from emgpilot.classifiers.recognition import check_calibration

    def use(where: str) -> Any:
        return replace(cfg, recognition=replace(cfg.recognition, wrist_calibration=where))

    try:
        kept = recorded_calibration(metadata, str(path))
        if kept is not None:
            cfg = use(str(kept.save(Path(folder) / "calibration.json")))
        check_calibration(cfg.recognition)
    except (CalibrationError, OSError) as e:
        print(
            f"emgpilot replay: warning: {path} was recorded with a wearer calibration that cannot be used here "
            f"({e}); replaying without it, so the decisions may differ",
            file=sys.stderr,
        )
        return use("")
    return cfg
