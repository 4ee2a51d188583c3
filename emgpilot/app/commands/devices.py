"""``emgpilot devices``: list serial ports that could be a Myo dongle or an EMG microcontroller."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "devices",
        help="list candidate serial ports (BLED112 dongle for the Myo, microcontrollers for MyoWare)",
        description="Lists serial ports and what they probably are, from their USB vendor/product id: "
        "the BLED112 dongle (2458:0001) for --port, Arduino/Teensy/ESP32 boards for --upper-arm-port.",
    )
    p.add_argument("--all", action="store_true", help="also list ports with no known USB id")
    p.add_argument("--json", action="store_true", help="print the list as JSON")
    p.set_defaults(func=devices)


def devices(args: argparse.Namespace) -> int:
    from emgpilot.signals.serialio import list_ports

    ports = list_ports(include_unknown=args.all)
    if args.json:
        print(json.dumps([p.to_dict() for p in ports], indent=2))
        return 0
    if not ports:
        print("no candidate serial ports found" + ("" if args.all else " (--all lists every port)"))
        print("  Myo: plug in the BLED112 dongle (USB 2458:0001); MyoWare: connect the microcontroller by USB")
        return 0
    for p in ports:
        vid_pid = p.to_dict()["vid_pid"] or "-"
        print(f"{p.device:24s} {p.kind:16s} {vid_pid:10s} {p.what}")
    dongles = [p for p in ports if p.kind == "myo-dongle"]
    boards = [p for p in ports if p.kind == "microcontroller"]
    if dongles:
        hint = f"emgpilot run --source myo --port {dongles[0].device}"
        if boards:
            hint += f" --upper-arm-port {boards[0].device}"
        print(f"\ntry: {hint}")
    return 0
