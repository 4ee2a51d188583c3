"""``emgpilot gui``: the desktop window (demo mode, live flight, replay, cued sessions)."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from emgpilot.app.commands.argtypes import non_negative_int, positive_float, positive_int

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
        choices=["synthetic", "myo", "myoware", "recording", "replay"],
        help="open this source at once (default: wait for Connect, or the demo with --demo); "
        "replay is another name for recording, as in `emgpilot run`",
    )
    p.add_argument("--recording", help="recording to replay (--source recording)")
    p.add_argument("--drone", choices=["none", "sim", "virtual", "bebop"], default=None, help="drone to fly")
    p.add_argument("--ip", default="192.168.42.1", help="Bebop 2 address (--drone bebop)")
    p.add_argument("--mapping", metavar="TOML", help="gesture-to-command mapping")
    p.add_argument("--config", help="pipeline configuration TOML")
    p.add_argument("--port", help="BLED112 dongle serial port (--source myo)")
    p.add_argument("--upper-arm-port", help="MyoWare microcontroller serial port")
    p.add_argument("--seed", type=non_negative_int, default=0, help="synthetic arm seed")
    p.add_argument(
        "--wearer",
        metavar="NAME",
        help="wearer profile (--source myo): armband rotation remembered between sessions",
    )
    p.add_argument("--speed", default="1", help="synthetic arm / replay speed: 1, N or max")
    p.add_argument(
        "--screenshot",
        metavar="PNG",
        help="run --seconds of data (of the demo, or from the start of a recording), save a PNG of the window, exit "
        "(the PNG's folder must exist)",
    )
    p.add_argument(
        "--seconds",
        type=positive_float,
        help="with --screenshot: data seconds before the picture (default 20); the window without --screenshot "
        "runs until closed",
    )
    p.add_argument(
        "--connect-timeout",
        type=positive_float,
        help="with --screenshot: fail if no data arrives, or data stops, for this many seconds (default 30); "
        "the window without --screenshot shows the device status instead",
    )
    p.add_argument(
        "--bench",
        action="store_true",
        help="measure frame rate and GUI-thread time per frame with an hour of history, print JSON, exit",
    )
    p.add_argument("--bench-frames", type=positive_int, default=150, help="frames per --bench scenario")
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
    from emgpilot.wearer import PROFILE_SOURCES

    for option, value in (("--seconds", args.seconds), ("--connect-timeout", args.connect_timeout)):
        # an open window runs until closed: rather than a time limit nobody asked for, say so
        if value is not None and not args.screenshot:
            raise CLIError(f"{option} is for --screenshot (the window runs until you close it)")
    seconds = 20.0 if args.seconds is None else args.seconds
    speed = _speed(args.speed)
    if args.source == "replay":
        args.source = "recording"
    spec = None
    if args.screenshot:
        args.demo = args.demo or not args.source
        _check_writable(Path(args.screenshot))
    if args.wearer and args.source not in PROFILE_SOURCES:
        # as `emgpilot run`: a profile describes a person wearing a Myo; a demo or replay must not touch it
        live = " or ".join(PROFILE_SOURCES)
        used = f"--source {args.source}" if args.source else "the demo" if args.demo else "no --source"
        raise CLIError(f"--wearer is for live sessions (--source {live}), not {used}")
    if args.demo and args.source in (None, "synthetic"):
        spec = demo_spec(seed=args.seed, scripted=bool(args.screenshot), speed=speed)
        if args.screenshot:
            spec.duration_s = seconds
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
            duration_s=seconds if args.screenshot else None,
        )
    if spec is not None:
        spec.config = args.config
        spec.mapping = args.mapping
        spec.wearer = args.wearer
    timeout = CONNECT_TIMEOUT_S if args.connect_timeout is None else args.connect_timeout
    return launch(spec, screenshot=args.screenshot, settings=args.settings, connect_timeout_s=timeout)


def _check_writable(path: Path) -> None:
    """Refuse a screenshot path that cannot be written before any window opens (CLIError)."""
    from emgpilot.app.cli import CLIError

    if path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp"):
        raise CLIError(f"--screenshot {path}: give a .png (or .jpg, .bmp) file name")
    if path.is_dir():
        raise CLIError(f"--screenshot {path}: is a folder")
    # not created: a typo in the folder would otherwise leave new folders behind
    if not path.parent.is_dir():
        raise CLIError(f"--screenshot {path}: no folder {path.parent}")
    # a real write, not os.access: root passes access checks on folders such as /proc
    existed = path.exists()
    try:
        with path.open("ab"):
            pass
    except OSError as e:
        raise CLIError(f"--screenshot {path}: cannot write it ({e.strerror or e})") from e
    if not existed:
        path.unlink(missing_ok=True)


CONNECT_TIMEOUT_S = 30.0
"""A screenshot run fails when no new data arrives for this long (wall seconds): a live device on
a wrong port, or one lost on the way, would otherwise keep it waiting for ever."""


def launch(
    spec,
    screenshot: str | None = None,
    settings: str | None = None,
    connect_timeout_s: float = CONNECT_TIMEOUT_S,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Open the window (and run the Qt event loop until it closes).

    With ``screenshot``, a run without new data for ``connect_timeout_s`` (``clock`` seconds) is
    a CLIError naming the device status; no picture is written."""
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
        from PyQt6 import QtCore, QtGui, QtWidgets
    except ImportError as e:
        raise CLIError(f"the GUI needs PyQt6 ({e})") from e
    import pyqtgraph as pg

    from emgpilot.app.gui.interrupt import CloseOnSignals
    from emgpilot.app.gui.main_window import MainWindow
    from emgpilot.app.gui.session import CONNECTING

    pg.setConfigOptions(antialias=False, background="w", foreground="k")
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    # a screenshot is a scripted one-off: it must not change what the user's window remembers
    win = MainWindow(spec, settings_path=Path(settings) if settings else None, save_settings=not screenshot)
    win.resize(1600, 1000)
    win.show()
    result: dict = {"code": 0, "saved": False, "error": None}
    timer = None
    if screenshot:
        win.window_combo.setCurrentIndex(win.window_combo.findData(30.0))  # the whole scripted story fits
        if win.session is None:
            reason = win._last_message
            win.shutdown()
            _delete(win, app)
            raise CLIError(f"the session did not open: {reason}" if reason else "the session did not open")

        progress = {"t": -math.inf, "wall": clock()}

        def check() -> None:
            s = win.session
            if s is not None and s.data_time > progress["t"]:
                progress["t"], progress["wall"] = s.data_time, clock()
            elif s is not None and not s.finished and clock() - progress["wall"] > connect_timeout_s:
                result["error"] = no_data_message(s, connect_timeout_s)
                timer.stop()
                win.close()
                return
            # an Olympe drone still connecting (at most its connect time-out) is waited for: the
            # picture shows how it ended, and tearing Olympe down mid-connect spews its errors
            if s is not None and s.finished and s.pending == 0 and s.drone_status != CONNECTING:
                win.frame()
                win.frame()
                out = Path(screenshot)
                writer = QtGui.QImageWriter(str(out))
                if not writer.write(win.grab().toImage()):
                    log.error("could not save %s: %s", out, writer.errorString())
                    result["code"] = 1
                else:
                    result["saved"] = True
                    print(f"saved {out} ({win.store.t_latest:.1f} data-seconds)")
                timer.stop()
                win.close()

        timer = QtCore.QTimer()
        timer.setInterval(100)
        timer.timeout.connect(check)
        timer.start()
    with CloseOnSignals(win) as signals:
        app.exec()
        win.shutdown()  # still under the handlers: a second Ctrl-C must not cut the recording short
    if timer is not None:
        timer.stop()
    if signals.received is not None:
        import signal

        log.info("closed on %s", signal.Signals(signals.received).name)
        if screenshot and not result["saved"]:
            result["code"] = 128 + signals.received  # the shell's convention for "killed by this signal"
    _delete(win, app)
    if result["error"] and signals.received is None:
        raise CLIError(result["error"])
    return result["code"]


def no_data_message(session, timeout_s: float) -> str:
    """Why a screenshot run gave up: no data at all, or none since some data time; with the status."""
    from emgpilot.signals.runner import describe_statuses

    state = describe_statuses(session.device_statuses())
    if not math.isfinite(session.data_time):
        return f"no data within {timeout_s:g} s ({state}): no screenshot written"
    at = session.data_time - session.runner.stats.t_first
    return (
        f"the source stopped sending data at {at:.1f} s (nothing for {timeout_s:g} s; {state}): no screenshot written"
    )


def _delete(win, app) -> None:
    """Delete the window through Qt, not through Python's garbage collector at some later moment
    (a scene half-deleted by the collector can still get a paint event: pyqtgraph then crashes)."""
    from PyQt6 import QtCore

    win.deleteLater()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete.value)
    app.processEvents()


def run_gui_from_run_args(args: argparse.Namespace) -> int:
    """``emgpilot run`` without ``--headless``: the same session, in the window."""
    from emgpilot.app.cli import CLIError
    from emgpilot.app.gui.session import SessionSpec

    speed = _speed(args.speed)
    # "recording" too: `run` accepts it as another name for replay
    source = {"synthetic": "synthetic", "myo": "myo", "replay": "recording", "recording": "recording"}[args.source]
    if source == "recording" and not args.recording:
        raise CLIError("--source replay needs --recording PATH")
    drone = {"none": "none", "sim": "sim", "bebop": "bebop"}[getattr(args, "drone", "none")]
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
