"""``emgpilot record``: acquire from the sensors and write a recording (raw streams and device status)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--seed", type=int, default=0, help="synthetic source seed")
    p.add_argument("--duration", type=float, required=True, help="seconds of data to record")
    p.add_argument("-o", "--output", required=True, help="recording to write (.mcap)")
    p.add_argument("--connect-timeout", type=float, default=30.0, help="give up if no data arrives within this")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=record)


def record(args: argparse.Namespace) -> int:
    from emgpilot.app.cli import CLIError
    from emgpilot.app.sources import open_source
    from emgpilot.signals.pipeline import Pipeline
    from emgpilot.signals.recording import RecordingError, RecordingWriter
    from emgpilot.signals.runner import SessionRunner
    from emgpilot.signals.streams import Chunk, StatusEvent

    if not args.duration > 0:
        raise CLIError("--duration must be positive")
    device = open_source(args, speed=1.0)
    streams = device.streams()
    try:
        writer = RecordingWriter(args.output, streams, {"device": device.info(), "command": "record"})
    except RecordingError as e:
        raise CLIError(str(e)) from e
    last_status: dict[str, str] = {}

    def show_status(batch: list) -> None:
        for m in batch:
            if isinstance(m, StatusEvent) and last_status.get(m.device) != m.status:
                last_status[m.device] = m.status
                print(f"{m.device}: {m.status} {m.detail}".rstrip(), file=sys.stderr, flush=True)

    # raw streams only: a replay recomputes everything derived, with whatever pipeline it likes
    pipeline = Pipeline([], [s.name for s in streams])
    runner = SessionRunner(device, pipeline, recorder=writer, sinks=[show_status], duration_s=args.duration)
    wall0 = time.monotonic()
    got_data = False
    interrupted = False
    device.start()
    try:
        while not runner.done:
            batch = runner.step(timeout=0.1)
            got_data = got_data or any(isinstance(m, Chunk) for m in batch)
            if not got_data and time.monotonic() - wall0 > args.connect_timeout:
                raise CLIError(f"no data within {args.connect_timeout:.0f} s (status: {last_status or 'none'})")
    except KeyboardInterrupt:
        interrupted = True
    finally:
        device.stop()
        writer.close()
    stats = runner.stats
    device_stats = device.stats() if hasattr(device, "stats") else {}
    summary = {
        "output": args.output,
        "duration_s": round(stats.duration_s, 3),
        "wall_s": round(time.monotonic() - wall0, 3),
        "samples": stats.samples,
        "events": stats.events,
        "device": device_stats,
        "interrupted": interrupted,
    }
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(f"recorded {summary['duration_s']} s of data to {args.output}")
        for name, n in sorted(stats.samples.items()):
            print(f"  {name:16s} {n:9d} samples")
        for name, n in sorted(stats.events.items()):
            print(f"  {name:16s} {n:9d} events")
        if device_stats:
            print(f"  device: {json.dumps(device_stats, default=str)}")
    return 130 if interrupted else 0
