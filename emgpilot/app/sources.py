"""Opens the data source a command or the GUI asked for."""

from __future__ import annotations

import argparse

from emgpilot.signals.device import Device


def add_live_device_args(p: argparse.ArgumentParser) -> None:
    """Options that pick and configure the live Myo and MyoWare devices (run, record, GUI)."""
    from emgpilot.app.commands.argtypes import positive_float, positive_int

    p.add_argument("--port", help="BLED112 dongle port (default: auto-detect USB 2458:0001; 'none': no Myo)")
    p.add_argument("--myo-address", help="connect to this Myo (AA:BB:CC:DD:EE:FF) instead of the first one seen")
    p.add_argument("--upper-arm-port", help="microcontroller port streaming MyoWare EMG")
    p.add_argument("--upper-arm-protocol", choices=["csv", "binary"], default="csv", help="wire format (csv)")
    p.add_argument("--upper-arm-channels", type=positive_int, default=2, help="MyoWare channels (2: biceps, triceps)")
    p.add_argument("--upper-arm-rate", type=positive_float, default=1000.0, help="MyoWare sample rate in Hz (1000)")
    p.add_argument("--upper-arm-bits", type=positive_int, default=10, help="ADC resolution in bits (10)")
    p.add_argument("--upper-arm-baud", type=positive_int, default=115200, help="serial baud rate (115200)")
    p.add_argument("--upper-arm-sequence", action="store_true", help="CSV lines start with a sequence number")


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
        from emgpilot.signals.device import DeviceError
        from emgpilot.signals.myo import open_live_arm
        from emgpilot.signals.myoware import MyoWareConfig

        try:
            upper = MyoWareConfig.for_channels(
                getattr(args, "upper_arm_channels", None) or 2,
                protocol=getattr(args, "upper_arm_protocol", None) or "csv",
                rate_hz=getattr(args, "upper_arm_rate", None) or 1000.0,
                adc_bits=getattr(args, "upper_arm_bits", None) or 10,
                baudrate=getattr(args, "upper_arm_baud", None) or 115200,
                sequence=bool(getattr(args, "upper_arm_sequence", False)),
            )
            return open_live_arm(
                getattr(args, "port", None),
                getattr(args, "upper_arm_port", None),
                address=getattr(args, "myo_address", None),
                upper_arm=upper,
            )
        except (DeviceError, ValueError) as e:
            raise CLIError(str(e)) from e
    raise CLIError(f"unknown source {args.source!r}")
