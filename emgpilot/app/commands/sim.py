"""``emgpilot sim --arsdk``: serve the simulator as a virtual Parrot Bebop 2 on loopback."""

from __future__ import annotations

import argparse
import errno
import logging
import re
import threading

from emgpilot.app.commands.argtypes import non_negative_int, positive_float

log = logging.getLogger(__name__)


def port(text: str) -> int:
    """A TCP port number, 0 (any free port) to 65535."""
    value = non_negative_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, not {value}")
    return value


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sim",
        help="run the simulator as a virtual Bebop 2 (ARSDK on 127.0.0.1) for Olympe or any ARSDK client",
        description=(
            "Serve the drone simulator over ARSDK (protocol v1, like a Bebop 2) on 127.0.0.1 until "
            "Ctrl-C. Fly it with `emgpilot run --headless --drone bebop --ip 127.0.0.1 --discovery-port P` or "
            "with olympe.Drone('127.0.0.1', discovery_port=P)."
        ),
    )
    p.add_argument("--arsdk", action="store_true", help="serve over ARSDK (the only mode so far; required)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind: only 127.0.0.1 is accepted (default)")
    p.add_argument(
        "--discovery-port",
        type=port,
        default=44445,
        help="TCP port of the JSON discovery (default 44445; 0 = any)",
    )
    p.add_argument(
        "--handshake-port",
        type=port,
        default=44444,
        help="TCP port of the connection handshake (default 44444; 0 = any)",
    )
    p.add_argument(
        "--no-discovery",
        action="store_true",
        help="serve only the handshake port, like a real Bebop 2 firmware (for --legacy-discovery clients)",
    )
    p.add_argument("--no-gps", action="store_true", help="report the position as unavailable (indoors)")
    p.add_argument(
        "--duration", type=positive_float, default=None, help="stop after this many seconds (default: Ctrl-C)"
    )
    p.add_argument(
        "--measure",
        action="store_true",
        help="instead of serving: time Olympe against a private virtual Bebop on ephemeral ports "
        "(connect with/without the optional answers, link-loss detection, close) and print JSON",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from emgpilot.app.cli import CLIError
    from emgpilot.drone.virtual_bebop import VirtualBebop

    if not args.arsdk:
        raise CLIError("nothing to serve: use --arsdk (the virtual Bebop 2)")
    if args.measure:
        return _measure()
    try:
        drone = VirtualBebop(
            host=args.host,
            discovery_port=None if args.no_discovery else args.discovery_port,
            handshake_port=args.handshake_port,
            gps=not args.no_gps,
        )
        drone.start()
    except ValueError as e:
        raise CLIError(str(e)) from e
    except OSError as e:
        raise CLIError(_bind_error(e)) from e
    stop = threading.Event()
    try:
        print(f"virtual Bebop 2 on {drone.host}", flush=True)
        if drone.discovery_port is not None:
            print(f"  discovery  tcp {drone.discovery_port}", flush=True)
        print(f"  handshake  tcp {drone.handshake_port}", flush=True)
        print(f"  commands   udp {drone.c2d_port}", flush=True)
        if drone.discovery_port is not None:
            how = f"--discovery-port {drone.discovery_port}"
        else:
            how = f"--legacy-discovery --handshake-port {drone.handshake_port}"
        print(f"fly it: emgpilot run --headless --drone bebop --ip {drone.host} {how}", flush=True)
        print("Ctrl-C to stop", flush=True)
        stop.wait(args.duration)  # None: until Ctrl-C (KeyboardInterrupt)
    except KeyboardInterrupt:
        print("stopping", flush=True)
    finally:
        drone.close()
    s = drone.state()
    print(f"final state: {s.flying_state}, x={s.x:.2f} y={s.y:.2f} z={s.z:.2f} m, battery {s.battery:.0f} %")
    return 0


def _bind_error(e: OSError) -> str:
    """One line for a port the virtual drone could not open, without Python's ``[Errno 98]``."""
    hint = "(another virtual drone running? try --discovery-port 0 --handshake-port 0)"
    if e.errno == errno.EADDRINUSE:
        # the virtual drone names the port it failed on: "... port 127.0.0.1:44445: ..."
        found = re.search(r":(\d+):", e.strerror or "")
        which = f"port {found.group(1)}" if found else "a port"
        return f"{which} is already in use {hint}"
    return f"{e.strerror or e} {hint}"


def _measure() -> int:
    """Wall-clock figures of the Olympe backend against the virtual Bebop 2 (README numbers)."""
    import json
    import time

    from emgpilot.app.cli import CLIError
    from emgpilot.drone.olympe_backend import OlympeBackend, OlympeUnavailable, import_olympe
    from emgpilot.drone.virtual_bebop import VirtualBebop

    result: dict[str, float | bool] = {}
    t = time.monotonic()
    try:
        import_olympe()
    except OlympeUnavailable as e:
        raise CLIError(str(e)) from e
    result["import_olympe_s"] = round(time.monotonic() - t, 2)
    for answer in (True, False):
        with VirtualBebop(discovery_port=0, handshake_port=0, answer_optional=answer) as vb:
            backend = OlympeBackend("127.0.0.1", discovery_port=vb.discovery_port or 0)
            try:
                t = time.monotonic()
                ok = backend.connect()
                key = "answered" if answer else "unanswered"
                result[f"connect_{key}_s"] = round(time.monotonic() - t, 2)
                result[f"connect_{key}_ok"] = ok
                if answer and ok:
                    vb.go_silent()
                    t = time.monotonic()
                    result["link_loss_noticed"] = backend.wait_until(lambda b: b.link == "lost", 30.0)
                    result["link_loss_detect_s"] = round(time.monotonic() - t, 1)
            finally:
                t = time.monotonic()
                backend.close()
                result[f"close_after_{'link_loss' if answer else 'connect'}_s"] = round(time.monotonic() - t, 2)
    print(json.dumps(result, indent=2))
    return 0
