"""``emgpilot fake-device``: a fake Myo dongle or MyoWare board on a pseudo-terminal, for demos."""

from __future__ import annotations

import argparse
import sys
import time


def register(sub: argparse._SubParsersAction) -> None:
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
    p.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    p.add_argument("--channels", type=int, default=2, help="MyoWare channels (default 2)")
    p.add_argument("--rate", type=float, default=1000.0, help="MyoWare sample rate in Hz (default 1000)")
    p.add_argument("--bits", type=int, default=None, help="ADC bits (default 10 for CSV, 12 for binary)")
    p.add_argument("--sequence", action="store_true", help="CSV: prefix each line with a sequence number")
    p.add_argument("--reset-garbage", type=float, default=0.0, help="seconds of boot noise when plugged in")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.add_argument("--flap", type=float, default=None, help="unplug and replug every N seconds (fault demo)")
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
                adc_bits=args.bits or (10 if protocol == "csv" else 12),
                sequence=args.sequence,
            )
        except ValueError as e:
            raise CLIError(str(e)) from e
        fake = FakeMyoWareBoard(cfg, args.link, source=source, reset_garbage_s=args.reset_garbage)
    path = fake.start()
    print(path, flush=True)
    print(f"fake {args.kind} serving on {path} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    t0 = time.monotonic()
    next_flap = t0 + args.flap if args.flap else None
    try:
        while args.duration is None or time.monotonic() - t0 < args.duration:
            time.sleep(0.1)  # the CLI's own idle loop; the fake paces itself on its thread
            if next_flap is not None and time.monotonic() >= next_flap:
                if fake.port.plugged:
                    fake.unplug()
                    print("unplugged", file=sys.stderr, flush=True)
                else:
                    fake.plug()
                    print(f"plugged back on {fake.path}", file=sys.stderr, flush=True)
                next_flap += args.flap
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0
