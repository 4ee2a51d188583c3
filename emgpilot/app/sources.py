"""Opens the data source a command or the GUI asked for."""

from __future__ import annotations

import argparse

from emgpilot.signals.device import Device


def open_source(args: argparse.Namespace, speed: float = 1.0) -> Device:
    """A :class:`Device` for ``args.source`` (``synthetic``, ``replay`` or ``myo``)."""
    from emgpilot.app.cli import CLIError

    if args.source == "synthetic":
        from emgpilot.signals.synthetic import SyntheticArm

        return SyntheticArm(seed=args.seed, speed=speed)
    if args.source == "replay":
        if not getattr(args, "recording", None):
            raise CLIError("--source replay needs --recording PATH")
        from emgpilot.signals.recording import RecordingError
        from emgpilot.signals.replay import ReplayDevice

        try:
            return ReplayDevice(args.recording, speed=speed)
        except RecordingError as e:
            raise CLIError(str(e)) from e
    if args.source == "myo":
        raise CLIError("the Myo driver is not available yet")
    raise CLIError(f"unknown source {args.source!r}")
