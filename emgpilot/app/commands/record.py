"""``emgpilot record``: acquire from the sensors and write a recording (raw streams and device status)."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from typing import Any

log = logging.getLogger(__name__)

ASIDE_SUFFIX = ".replaced"
"""Added to the name of a recording ``--overwrite`` replaces, while the new one is being recorded."""

OVERWRITE_HELP = (
    f"The old file is kept as NAME{ASIDE_SUFFIX} until the new recording has data, then deleted; "
    "it is put back if nothing was recorded (and stays there if emgpilot is killed meanwhile)."
)


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
    p.add_argument(
        "--overwrite", action="store_true", help=f"replace --output if it exists (default: refuse). {OVERWRITE_HELP}"
    )
    p.add_argument(
        "--connect-timeout", type=positive_float, default=30.0, help="give up if no data arrives within this (30 s)"
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=record)


def record(args: argparse.Namespace) -> int:
    from emgpilot.app.cli import CLIError
    from emgpilot.app.sources import open_source

    check_output(args.output, args.overwrite)
    device = open_source(args, speed=1.0)
    try:
        old = OldRecording(args.output, args.overwrite)
    except CLIError:
        device.stop()
        raise
    with old:
        return _record(args, device, old)


def _record(args: argparse.Namespace, device: Any, old: OldRecording) -> int:
    """:func:`record` once the device is open and any file ``--overwrite`` replaces is set aside."""
    from emgpilot.app.cli import CLIError
    from emgpilot.signals.pipeline import Pipeline
    from emgpilot.signals.recording import RecordingError, RecordingWriter
    from emgpilot.signals.runner import NoDataError, SessionRunner, format_status
    from emgpilot.signals.streams import StatusEvent

    streams = device.streams()
    try:
        writer = RecordingWriter(
            args.output, streams, {"device": device.info(), "command": "record"}, overwrite=args.overwrite
        )
    except RecordingError as e:
        device.stop()  # nothing was started yet; stop() releases whatever the device opened
        raise CLIError(f"{e}{old.restore()}") from e
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
        raise CLIError(f"{e}; nothing recorded, {args.output} not written{old.restore()}") from e
    except KeyboardInterrupt:
        interrupted = True
    finally:
        writer.close()  # idempotent
    stats = runner.stats
    kept = not discard_empty(args.output, stats)
    restored = old.keep_new() if kept else old.restore()
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
        "previous_kept": bool(restored),
    }
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        if kept:
            print(f"recorded {summary['duration_s']} s of data to {args.output}")
        else:
            print(f"nothing recorded; {args.output} not written{restored}")
        for name, n in sorted(stats.samples.items()):
            print(f"  {name:16s} {n:9d} samples")
        for name, n in sorted(stats.events.items()):
            print(f"  {name:16s} {n:9d} events")
        if device_stats:
            print(f"  device: {format_counters(device_stats)}")
    print_problems(stats, missing)
    if interrupted:
        return 130
    # a requested sensor that delivered nothing is a failed recording, even if the rest worked
    return 1 if missing or not kept else 0


def check_output(path: str, overwrite: bool) -> None:
    """Refuse to replace an existing recording unless asked to (bad input loses nothing)."""
    from emgpilot.app.cli import CLIError

    if not overwrite and os.path.lexists(path):
        raise CLIError(f"{path} already exists; pass --overwrite to replace it, or choose another file")


def discard_empty(path: str, stats: object) -> bool:
    """Delete a recording that holds no samples (a failed connect); True if it was deleted."""
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


class OldRecording:
    """The recording ``--overwrite`` replaces, kept aside until the new one has data (bad input loses nothing).

    Parameters
    ----------
    path : the output about to be written (None: no output, nothing to do).
    overwrite : the user's ``--overwrite``; without it, or with no file at ``path``, nothing is set aside.

    Used as a context manager: leaving it without :meth:`keep_new` (an error, Ctrl-C in a bad moment)
    puts the old file back. If the process dies in between, the old file survives as ``path + ASIDE_SUFFIX``.
    """

    def __init__(self, path: str | None, overwrite: bool) -> None:
        from emgpilot.app.cli import CLIError

        self.path = path
        self.aside: str | None = None
        if path is None or not overwrite or not os.path.lexists(path):
            return
        if os.path.isdir(path) and not os.path.islink(path):
            raise CLIError(f"{path} is a folder, not a recording; choose a file name")
        aside = path + ASIDE_SUFFIX
        if os.path.lexists(aside):
            raise CLIError(
                f"{aside} exists (an old recording an earlier --overwrite kept aside?); "
                "move or delete it, then try again"
            )
        try:
            os.rename(path, aside)  # same folder: a rename, never a copy, and nothing lost if it fails
        except OSError as e:
            raise CLIError(f"cannot set {path} aside as {aside}: {e.strerror or e}") from e
        self.aside = aside
        print(f"keeping the old {path} as {aside} until the new recording has data", file=sys.stderr, flush=True)

    def keep_new(self) -> str:
        """The new recording has data: delete the old one. Returns ``""`` (nothing to tell)."""
        if self.aside is not None:
            try:
                os.unlink(self.aside)
            except OSError as e:  # the new recording is fine; the old one merely lingers
                log.warning("could not delete the replaced recording %s: %s", self.aside, e)
            self.aside = None
        return ""

    def restore(self) -> str:
        """Nothing new was recorded: put the old file back. Returns a note for the user (``""`` if none)."""
        if self.aside is None or self.path is None:
            return ""
        aside, self.aside = self.aside, None
        try:
            os.replace(aside, self.path)  # over an empty or half-written new file, if one is left
        except OSError as e:
            log.error("could not put %s back: %s", aside, e)
            return f"; the old recording is still at {aside}"
        return f"; the old {self.path} is kept"

    def __enter__(self) -> OldRecording:
        return self

    def __exit__(self, *exc: object) -> None:
        note = self.restore()
        if note:
            print(f"nothing recorded{note}", file=sys.stderr)


def format_counters(counters: dict[str, Any]) -> str:
    """``status stopped, lost 0, resyncs 2`` for a driver's counters (readable, not JSON)."""
    parts = []
    for key, value in counters.items():
        if isinstance(value, dict):
            value = f"({format_counters(value)})"
        elif isinstance(value, float):
            value = f"{value:g}"
        parts.append(f"{key.replace('_', ' ')} {value}")
    return ", ".join(parts)
