"""``emgpilot record``: acquire from the sensors and write a recording (raw streams and device status)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    from emgpilot.app.commands.argtypes import non_negative_int, positive_float
    from emgpilot.app.sources import add_live_device_args

    p = sub.add_parser(
        "record",
        help="record the Myo (and MyoWare) streams to a file",
        description="Connects to the Myo through its BLED112 dongle (and optionally a MyoWare board), "
        "records every sensor stream with status and gap events for --duration seconds of data, and "
        "prints what was recorded, with drop and resync counters.",
    )
    p.add_argument("--source", default="myo", choices=["myo", "synthetic"], help="myo (default) or synthetic")
    add_live_device_args(p)
    p.add_argument("--seed", type=non_negative_int, default=0, help="synthetic source seed")
    p.add_argument("--duration", type=positive_float, required=True, help="seconds of data to record")
    p.add_argument("-o", "--output", required=True, help="recording to write (.mcap)")
    p.add_argument("--overwrite", action="store_true", help="replace --output if it exists (default: refuse)")
    p.add_argument(
        "--connect-timeout", type=positive_float, default=30.0, help="give up if no data arrives within this (30 s)"
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=record)


def record(args: argparse.Namespace) -> int:
    from emgpilot.app.cli import CLIError
    from emgpilot.app.sources import open_source
    from emgpilot.signals.pipeline import Pipeline
    from emgpilot.signals.recording import RecordingError, RecordingWriter
    from emgpilot.signals.runner import NoDataError, SessionRunner, format_status
    from emgpilot.signals.streams import StatusEvent

    check_output(args.output, args.overwrite)
    device = open_source(args, speed=1.0)
    streams = device.streams()
    try:
        writer = RecordingWriter(
            args.output, streams, {"device": device.info(), "command": "record"}, overwrite=args.overwrite
        )
    except RecordingError as e:
        device.stop()  # nothing was started yet; stop() releases whatever the device opened
        raise CLIError(str(e)) from e
    last_status: dict[str, str] = {}

    def show_status(batch: list) -> None:
        for m in batch:
            if isinstance(m, StatusEvent) and last_status.get(m.device) != m.status:
                last_status[m.device] = m.status
                print(format_status(m.device, m.status, m.detail), file=sys.stderr, flush=True)

    # raw streams only: a replay recomputes everything derived, with whatever pipeline it likes
    pipeline = Pipeline([], [s.name for s in streams])
    runner = SessionRunner(device, pipeline, recorder=writer, sinks=[show_status], duration_s=args.duration)
    wall0 = time.monotonic()
    interrupted = False
    try:
        runner.run(connect_timeout_s=args.connect_timeout)
    except NoDataError as e:
        writer.close()
        discard_empty(args.output, runner.stats)
        raise CLIError(f"{e}; nothing recorded, {args.output} not written") from e
    except KeyboardInterrupt:
        interrupted = True
    finally:
        writer.close()  # idempotent
    stats = runner.stats
    kept = not discard_empty(args.output, stats)
    device_stats = device.stats() if hasattr(device, "stats") else {}
    missing = missing_streams(device, stats)
    summary = {
        "output": args.output if kept else None,
        "duration_s": round(stats.duration_s, 3),
        "wall_s": round(time.monotonic() - wall0, 3),
        "samples": stats.samples,
        "events": stats.events,
        "device": device_stats,
        "device_problems": {dev: {"status": st, "detail": d} for dev, (st, d) in stats.problems().items()},
        "missing_streams": missing,
        "interrupted": interrupted,
    }
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        if kept:
            print(f"recorded {summary['duration_s']} s of data to {args.output}")
        else:
            print(f"nothing recorded; {args.output} not written")
        for name, n in sorted(stats.samples.items()):
            print(f"  {name:16s} {n:9d} samples")
        for name, n in sorted(stats.events.items()):
            print(f"  {name:16s} {n:9d} events")
        if device_stats:
            print(f"  device: {json.dumps(device_stats, default=str)}")
    print_problems(stats, missing)
    if interrupted:
        return 130
    # a requested sensor that delivered nothing is a failed recording, even if the rest worked
    return 1 if missing or not kept else 0


def check_output(path: str, overwrite: bool) -> None:
    """Refuse to replace an existing recording unless asked to (bad input loses nothing)."""
    import os

    from emgpilot.app.cli import CLIError

    if not overwrite and os.path.lexists(path):
        raise CLIError(f"{path} already exists; pass --overwrite to replace it, or choose another file")


def discard_empty(path: str, stats: object) -> bool:
    """Delete a recording that holds no samples (a failed connect); True if it was deleted."""
    import contextlib
    import os

    if getattr(stats, "samples", None):
        return False
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    return True


def missing_streams(device: object, stats: object) -> list[str]:
    """Sensor streams the device declared that delivered no sample."""
    declared = [s.name for s in device.streams() if not s.is_event]  # type: ignore[attr-defined]
    got = getattr(stats, "samples", {})
    return [name for name in declared if not got.get(name)]


def print_problems(stats: object, missing: list[str]) -> None:
    """Warnings on stderr for devices that ended in trouble and streams that stayed empty."""
    from emgpilot.signals.runner import format_status

    problems = stats.problems()  # type: ignore[attr-defined]
    for dev, (status, detail) in sorted(problems.items()):
        print(f"warning: {format_status(dev, status, detail)}", file=sys.stderr)
    if missing:
        print(f"warning: no samples from {', '.join(missing)}", file=sys.stderr)
