"""``emgpilot gui``: the desktop window (demo mode, live flight, replay, cued sessions)."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gui",
        help="open the window (with no command, emgpilot opens it in demo mode)",
        description="The flight window. --demo: synthetic arm + simulator, keys make gestures (F, S, arrows, Q/E).",
    )
    p.add_argument("--demo", action="store_true", help="synthetic arm + simulator at once (keys make gestures)")
    p.add_argument(
        "--source",
        choices=["synthetic", "myo", "myoware", "recording"],
        help="open this source at once (default: wait for Connect, or the demo with --demo)",
    )
    p.add_argument("--recording", help="recording to replay (--source recording)")
    p.add_argument("--drone", choices=["none", "sim", "virtual", "bebop"], default=None, help="drone to fly")
    p.add_argument("--ip", default="192.168.42.1", help="Bebop 2 address (--drone bebop)")
    p.add_argument("--mapping", metavar="TOML", help="gesture-to-command mapping")
    p.add_argument("--config", help="pipeline configuration TOML")
    p.add_argument("--port", help="BLED112 dongle serial port (--source myo)")
    p.add_argument("--upper-arm-port", help="MyoWare microcontroller serial port")
    p.add_argument("--seed", type=int, default=0, help="synthetic arm seed")
    p.add_argument("--wearer", metavar="NAME", help="wearer profile (armband rotation remembered between sessions)")
    p.add_argument("--speed", default="1", help="synthetic arm / replay speed: 1, N or max")
    p.add_argument("--screenshot", metavar="PNG", help="run --seconds of data, save a PNG of the window, exit")
    p.add_argument("--seconds", type=float, default=20.0, help="data seconds before --screenshot (default 20)")
    p.add_argument(
        "--bench",
        action="store_true",
        help="measure frame rate and GUI-thread time per frame with an hour of history, print JSON, exit",
    )
    p.add_argument("--bench-frames", type=int, default=150, help="frames per --bench scenario")
    p.add_argument("--settings", metavar="TOML", help="settings file (default: the user config folder)")
    p.set_defaults(func=run)


def _speed(text: str) -> float:
    from emgpilot.app.cli import CLIError
    from emgpilot.signals.device import parse_speed

    try:
        return parse_speed(text)
    except ValueError as e:
        raise CLIError(str(e)) from e


def run(args: argparse.Namespace) -> int:
    from emgpilot.app.cli import CLIError

    if args.bench:
        from emgpilot.app.gui.bench import run_bench

        return run_bench(frames=args.bench_frames)
    from emgpilot.app.gui.main_window import demo_spec
    from emgpilot.app.gui.session import SessionSpec

    speed = _speed(args.speed)
    spec = None
    if args.screenshot:
        args.demo = args.demo or not args.source
        if not args.seconds > 0:
            raise CLIError("--seconds must be positive")
    if args.demo and args.source in (None, "synthetic"):
        spec = demo_spec(seed=args.seed, scripted=bool(args.screenshot), speed=speed)
        if args.screenshot:
            spec.duration_s = args.seconds
        if args.drone is not None:
            spec.drone = args.drone
    elif args.source is not None:
        if args.source == "recording" and not args.recording:
            raise CLIError("--source recording needs --recording PATH")
        if args.recording and not Path(args.recording).exists():
            raise CLIError(f"no recording {args.recording}")
        spec = SessionSpec(
            source=args.source,
            recording=args.recording,
            seed=args.seed,
            speed=speed if args.source in ("synthetic", "recording") else 1.0,
            drone=args.drone or ("sim" if args.source == "synthetic" else "none"),
            ip=args.ip,
            mapping=args.mapping,
            config=args.config,
            myo_port=args.port,
            upper_arm_port=args.upper_arm_port,
            demo_idle=False,
            duration_s=args.seconds if args.screenshot else None,
        )
    if spec is not None:
        spec.config = args.config
        spec.mapping = args.mapping
        spec.wearer = args.wearer
    return launch(spec, screenshot=args.screenshot, settings=args.settings)


def launch(spec, screenshot: str | None = None, settings: str | None = None) -> int:
    """Open the window (and run the Qt event loop until it closes)."""
    from emgpilot.app.cli import CLIError

    no_display = (
        sys.platform.startswith("linux")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
        and not os.environ.get("QT_QPA_PLATFORM")
    )
    if no_display:
        if not screenshot:
            raise CLIError(
                "no display to open the window on (DISPLAY is not set): use `emgpilot run --headless ...`, "
                "or xvfb-run, or QT_QPA_PLATFORM=offscreen"
            )
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    try:
        from PyQt6 import QtCore, QtWidgets
    except ImportError as e:
        raise CLIError(f"the GUI needs PyQt6 ({e})") from e
    import pyqtgraph as pg

    from emgpilot.app.gui.main_window import MainWindow

    pg.setConfigOptions(antialias=False, background="w", foreground="k")
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    win = MainWindow(spec, settings_path=Path(settings) if settings else None)
    win.resize(1600, 1000)
    win.show()
    result = {"code": 0}
    if screenshot:
        win.window_combo.setCurrentIndex(win.window_combo.findData(30.0))  # the whole scripted story fits
        if win.session is None:
            win.shutdown()
            raise CLIError("the session did not open (see the log)")

        def check() -> None:
            s = win.session
            if s is not None and s.finished and s.pending == 0:
                win.frame()
                win.frame()
                out = Path(screenshot)
                out.parent.mkdir(parents=True, exist_ok=True)
                if not win.grab().save(str(out)):
                    log.error("could not save %s", out)
                    result["code"] = 1
                else:
                    print(f"saved {out} ({win.store.t_latest:.1f} data-seconds)")
                timer.stop()
                win.close()

        timer = QtCore.QTimer()
        timer.setInterval(100)
        timer.timeout.connect(check)
        timer.start()
    app.exec()
    win.shutdown()
    # delete the window through Qt, not through Python's garbage collector at some later moment
    # (a scene half-deleted by the collector can still get a paint event: pyqtgraph then crashes)
    win.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete.value)
    app.processEvents()
    return result["code"]


def run_gui_from_run_args(args: argparse.Namespace) -> int:
    """``emgpilot run`` without ``--headless``: the same session, in the window."""
    from emgpilot.app.cli import CLIError
    from emgpilot.app.gui.session import SessionSpec

    speed = _speed(args.speed)
    source = {"synthetic": "synthetic", "myo": "myo", "replay": "recording"}[args.source]
    if source == "recording" and not args.recording:
        raise CLIError("--source replay needs --recording PATH")
    drone = {"none": "none", "sim": "sim", "bebop": "bebop"}[getattr(args, "drone", "none")]
    if drone == "bebop" and args.ip == "127.0.0.1" and getattr(args, "discovery_port", None):
        log.warning("--discovery-port is ignored by the GUI; use --drone virtual in the window")
    spec = SessionSpec(
        source=source,
        recording=args.recording,
        seed=args.seed,
        speed=speed if math.isfinite(speed) or source != "myo" else 1.0,
        drone=drone if drone != "none" or source != "synthetic" else "sim",
        ip=args.ip,
        mapping=getattr(args, "mapping", None),
        config=args.config,
        duration_s=args.duration,
        myo_port=args.port,
        upper_arm_port=args.upper_arm_port,
        demo_idle=False,
        record=getattr(args, "record", None),
        takeoff=bool(getattr(args, "takeoff", False)),
        wearer=getattr(args, "wearer", None),
    )
    return launch(spec)
