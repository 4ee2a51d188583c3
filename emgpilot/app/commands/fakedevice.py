"""``emgpilot fake-device``: a fake Myo dongle or MyoWare board on a pseudo-terminal, for demos."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any


def register(sub: argparse._SubParsersAction) -> None:
    from emgpilot.app.commands.argtypes import non_negative_float, non_negative_int, positive_float, positive_int

    p = sub.add_parser(
        "fake-device",
        help="serve a fake BLED112+Myo or MyoWare board on a pseudo-terminal (prints its path)",
        description="Starts a hardware stand-in on a pseudo-terminal and prints the port path to give "
        "to 'emgpilot run --source myo --port PATH' (or --upper-arm-port PATH). Runs until Ctrl-C "
        "or --duration.",
    )
    p.add_argument("kind", choices=["myo", "myoware-csv", "myoware-binary"], help="what to imitate")
    p.add_argument("--link", help="also expose the port under this path (a symlink that survives --flap)")
    p.add_argument("--recording", help="stream raw EMG/IMU from this emgpilot recording instead of synthetic data")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the synthetic data")
    p.add_argument("--channels", type=positive_int, default=2, help="MyoWare channels (default 2)")
    p.add_argument("--rate", type=positive_float, default=1000.0, help="MyoWare sample rate in Hz (default 1000)")
    # the drivers' default (run/record --upper-arm-bits 10, an AVR board): fake and driver agree as is
    p.add_argument("--bits", type=positive_int, default=10, help="ADC bits (default 10, as the drivers expect)")
    p.add_argument("--sequence", action="store_true", help="CSV: prefix each line with a sequence number")
    p.add_argument(
        "--reset-garbage", type=non_negative_float, default=0.0, help="seconds of boot noise when plugged in"
    )
    p.add_argument("--duration", type=positive_float, default=None, help="stop after this many seconds")
    p.add_argument("--flap", type=positive_float, default=None, help="unplug and replug every N seconds (fault demo)")
    p.set_defaults(func=fake_device)


def fake_device(args: argparse.Namespace) -> int:
    from emgpilot.app.cli import CLIError
    from emgpilot.signals.fakes import ArraySource, FakeMyoDongle, FakeMyoWareBoard, default_source
    from emgpilot.signals.myoware import MyoWareConfig

    try:
        source = ArraySource.from_recording(args.recording) if args.recording else default_source(args.seed)
    except (OSError, ValueError, KeyError) as e:
        raise CLIError(f"cannot stream {args.recording}: {e}") from e
    if args.kind == "myo":
        fake = FakeMyoDongle(args.link, source=source)
    else:
        protocol = args.kind.split("-")[1]
        try:
            cfg = MyoWareConfig.for_channels(
                args.channels,
                protocol=protocol,
                rate_hz=args.rate,
                adc_bits=args.bits,
                sequence=args.sequence,
            )
        except ValueError as e:
            raise CLIError(str(e)) from e
        fake = FakeMyoWareBoard(cfg, args.link, source=source, reset_garbage_s=args.reset_garbage)
    try:
        path = fake.start()
    except OSError as e:  # e.g. --link in a folder that does not exist or cannot be written
        raise CLIError(e.strerror or str(e)) from e
    print(path, flush=True)
    print(f"fake {args.kind} serving on {path} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    next_flap = t0 + args.flap if args.flap else None
    # `kill` (SIGTERM, as after the docs' `&`) must remove the --link symlink just as Ctrl-C does
    restore_sigterm = _stop_on_sigterm()
    try:
        while args.duration is None or time.monotonic() - t0 < args.duration:
            time.sleep(0.1)  # the CLI's own idle loop; the fake paces itself on its thread
            if next_flap is not None and time.monotonic() >= next_flap:
                if fake.port.plugged:
                    fake.unplug()
                    print("unplugged", file=sys.stderr, flush=True)
                else:
                    try:
                        fake.plug()
                    except OSError as e:  # something else took the --link path while unplugged
                        raise CLIError(e.strerror or str(e)) from e
                    print(f"plugged back on {fake.path}", file=sys.stderr, flush=True)
                next_flap += args.flap
    except KeyboardInterrupt:
        pass
    finally:
        restore_sigterm()
        fake.stop()
    return 0


def _stop_on_sigterm() -> Callable[[], None]:
    """Make SIGTERM stop the fake like Ctrl-C (a KeyboardInterrupt); returns what puts the old handler back.

    Off the main thread Python cannot install signal handlers: nothing changes there.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    # None: a handler not set from Python; the default is the closest we can put back
    return lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
