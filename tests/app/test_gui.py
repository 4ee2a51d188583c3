"""The window, offscreen: opens and closes cleanly, demo keys fly the simulator, EMERGENCY,
replay controls, cued sessions, persisted settings.

Time is data time. Most tests run the session in manual mode: no runner thread, the test steps
the synthetic arm (speed ``max``) and the pipeline itself with ``session.advance(seconds)``, so a
key press happens at a known data time and every result is deterministic. Tests of the threaded
path wait with ``qtbot.waitUntil`` for data-time conditions, never on sleeps.
"""

from __future__ import annotations

import gc
import math
import threading
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")
from PyQt6 import QtCore, QtWidgets

from emgpilot.app.gui.cues import CuePlan
from emgpilot.app.gui.drone_view import state_of
from emgpilot.app.gui.main_window import MainWindow, demo_spec
from emgpilot.app.gui.session import SessionSpec
from emgpilot.signals.streams import CueEvent, GestureEvent, SafetyEvent

WAIT_MS = 60_000  # generous: the suite shares 2 cores


@pytest.fixture
def no_leaks(qapp, qtbot):
    """Fails the test if it leaves a thread, a window, an active QTimer or a QThread behind.

    Windows are closed as a user closes them: ``close()`` returns at once and the window closes
    itself once its session has closed in the background (every thread joined)."""
    before = set(threading.enumerate())
    yield
    windows = [w for w in QtWidgets.QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
    for w in windows:
        w.close()
    qtbot.waitUntil(lambda: not any(w.isVisible() or w.closing for w in windows), timeout=WAIT_MS)
    for w in windows:
        w.deleteLater()
    qapp.processEvents()
    QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete.value)
    qapp.processEvents()
    # collect cyclic garbage (windows, plot items) now, not in the middle of a later test's paint
    gc.collect()
    qapp.processEvents()
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    # Olympe's logging starts one background thread per process, at import
    left = [t for t in left if "_background_log_handle" not in t.name]
    assert not left, f"threads left running: {[t.name for t in left]}"
    windows = [w for w in QtWidgets.QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
    assert not windows, "a MainWindow was left open"
    timers = [t for t in qapp.findChildren(QtCore.QTimer) if t.isActive()]
    assert not timers, f"active QTimers left: {timers}"
    assert not qapp.findChildren(QtCore.QThread), "a QThread was left"


def make_window(qtbot, tmp_path: Path, spec: SessionSpec | None) -> MainWindow:
    win = MainWindow(spec, settings_path=tmp_path / "gui.toml", history_s=600.0)
    qtbot.addWidget(win, before_close_func=lambda w: w.shutdown())
    win.resize(1200, 800)
    win.show()
    return win


def drone(win: MainWindow):
    return state_of(win.store.buffers.get("drone_telemetry"))


def fast_demo(seed: int = 0, manual: bool = False) -> SessionSpec:
    spec = demo_spec(seed=seed, speed=math.inf)
    spec.manual = manual
    return spec


def advance(win: MainWindow, seconds: float) -> None:
    """Manual mode: run ``seconds`` of data, then one GUI frame (drains everything)."""
    assert win.session is not None
    win.session.advance(seconds)
    win.frame()


def events_of(win: MainWindow, kind: type) -> list:
    return [e for e in win.store.events if isinstance(e, kind)]


def test_window_opens_and_closes_cleanly(qtbot, tmp_path, no_leaks):
    win = make_window(qtbot, tmp_path, fast_demo())
    assert win.session is not None and win.timer.isActive()
    qtbot.waitUntil(lambda: win.store.t_latest > 2.0, timeout=WAIT_MS)
    for name in (
        "forearm_emg",
        "forearm_emg.envelope",
        "upper_emg.filtered",
        "forearm_imu",
        "decision",
        "drone_telemetry",
    ):
        assert name in win.store.buffers, name
    assert "forearm_emg.filtered" not in win.store.buffers  # not drawn: counted, not kept
    assert win.store.samples["upper_emg"] > 0
    assert any(n.startswith("detector.") for n in win.store.buffers)
    win.close()  # returns at once: the session closes in the background, then the window
    assert win.session is None
    qtbot.waitUntil(lambda: not win.isVisible(), timeout=WAIT_MS)
    assert not win.timer.isActive() and not win.closing


def test_demo_key_makes_a_gesture_and_the_drone_moves(qtbot, tmp_path, no_leaks):
    win = make_window(qtbot, tmp_path, fast_demo(seed=1, manual=True))
    advance(win, 5.0)  # demo mode takes off by itself at 1 s of data time
    before = drone(win)
    assert before is not None and before.flying_state == "hovering"
    assert win.timeline.count["gesture"] == 0
    # This test is about the key -> arm -> pipeline -> timeline -> drone chain, not accuracy.
    # Known recogniser weakness: the very first gesture of a session can be taken for a stiffen
    # (the stiffen detector's cold start on upper-arm spill-over), so warm up with one gesture.
    qtbot.keyClick(win, QtCore.Qt.Key.Key_E)
    advance(win, 4.0)
    n_gestures = len(events_of(win, GestureEvent))
    before = drone(win)
    qtbot.keyClick(win, QtCore.Qt.Key.Key_E)  # rotate cw -> turn right
    advance(win, 4.0)
    # the arm's own ground truth, the recognised gesture, the command and the drone turning
    assert any(isinstance(e, CueEvent) and e.label == "rotate_cw" for e in win.store.events)
    gestures = events_of(win, GestureEvent)[n_gestures:]
    assert [g.gesture for g in gestures] == ["rotate_cw"]
    assert win.timeline.count["gesture"] == n_gestures + 1 and win.timeline.count["command"] >= 2
    after = drone(win)
    assert after.yaw < before.yaw - 0.2  # turning right: yaw (counter-clockwise positive) decreases
    assert win.event_log.rowCount() >= 3


def test_threaded_demo_key_reaches_the_timeline(qtbot, tmp_path, no_leaks):
    """The real threaded path: the runner thread at speed max, the key from the GUI thread."""
    win = make_window(qtbot, tmp_path, fast_demo(seed=1))
    qtbot.waitUntil(lambda: win.store.t_latest > 4.0, timeout=WAIT_MS)
    qtbot.keyClick(win, QtCore.Qt.Key.Key_E)  # rotate cw
    qtbot.waitUntil(
        lambda: any(isinstance(e, CueEvent) and e.label == "rotate_cw" for e in win.store.events), timeout=WAIT_MS
    )
    qtbot.waitUntil(lambda: win.timeline.count["gesture"] >= 1, timeout=WAIT_MS)


def test_emergency_does_not_wait_behind_a_slow_action(qtbot, tmp_path, no_leaks):
    """A slow action (an Olympe connect takes up to 45 s) must not hold up the panic button."""
    import threading

    win = make_window(qtbot, tmp_path, fast_demo(manual=True))
    advance(win, 4.0)
    assert drone(win).airborne
    release = threading.Event()
    win.session.actions.submit(lambda: release.wait(120.0), "slow connect")  # held until the test ends
    try:
        qtbot.keyClick(win, QtCore.Qt.Key.Key_Space)
        qtbot.waitUntil(lambda: win.session.pilot.state().flying_state == "emergency", timeout=20_000)
    finally:
        release.set()


@pytest.mark.parametrize("how", ["button", "key"])
def test_emergency_from_button_and_key(qtbot, tmp_path, no_leaks, how):
    win = make_window(qtbot, tmp_path, fast_demo(manual=True))
    advance(win, 4.0)
    assert drone(win).airborne
    if how == "button":
        qtbot.mouseClick(win.emergency_button, QtCore.Qt.MouseButton.LeftButton)
    else:
        qtbot.keyClick(win, QtCore.Qt.Key.Key_Space)
    # an emergency thread reaches the drone; the GUI thread never waits for it
    qtbot.waitUntil(lambda: win.session.pilot.state().flying_state == "emergency", timeout=WAIT_MS)
    advance(win, 0.5)
    from emgpilot.drone.backend import FLYING_STATES

    _, rows = win.store.buffers["drone_telemetry"].raw.view()
    states = {FLYING_STATES[int(v)] for v in rows[:, 10]}
    assert "emergency" in states  # motors cut: it drops (and then reports landed)
    assert not drone(win).airborne
    safety = events_of(win, SafetyEvent)
    assert any(e.action == "emergency" for e in safety), [e.action for e in safety]
    assert win.timeline.count["safety"] > 0


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    """8 s of the synthetic arm with a fist and a stiffen, recorded with its pipeline outputs."""
    from emgpilot.build import build_pipeline
    from emgpilot.signals.recording import RecordingWriter
    from emgpilot.signals.runner import SessionRunner
    from emgpilot.signals.synthetic import Schedule, SyntheticArm

    path = tmp_path_factory.mktemp("rec") / "session.mcap"
    arm = SyntheticArm(seed=1, speed=math.inf, schedule=Schedule.scripted([(2.0, 1.5, "fist"), (5.0, 1.0, "stiffen")]))
    pipe = build_pipeline(arm.streams())
    with RecordingWriter(path, [*arm.streams(), *pipe.output_streams], background_flush=False) as writer:
        SessionRunner(arm, pipe, recorder=writer).run()
    return path


def test_replay_controls(qtbot, tmp_path, no_leaks, recording):
    from emgpilot.app.gui.replay import ReplaySource

    spec = SessionSpec(source="recording", recording=str(recording), speed=math.inf, drone="none")
    win = make_window(qtbot, tmp_path, spec)
    assert win.replay_box.isEnabled()
    # recorded decisions are shown next to the recomputed ones
    assert win.timeline.count["recorded"] >= 1
    assert "decision" in win.store.recorded_buffers
    qtbot.waitUntil(
        lambda: win.session is not None and win.session.finished and win.session.pending == 0, timeout=WAIT_MS
    )
    qtbot.waitUntil(lambda: win.timeline.count["gesture"] >= 1, timeout=WAIT_MS)
    recomputed = [e.gesture for e in events_of(win, GestureEvent)]
    recorded = [e.gesture for e in win.store.recorded_events if isinstance(e, GestureEvent)]
    assert recomputed == recorded  # same pipeline, same data: same decisions
    # pause / play
    qtbot.mouseClick(win.play_button, QtCore.Qt.MouseButton.LeftButton)
    assert isinstance(win.replay_device, ReplaySource) and win.replay_device.paused
    assert win.play_button.text() == "Play"
    qtbot.mouseClick(win.play_button, QtCore.Qt.MouseButton.LeftButton)
    assert not win.replay_device.paused
    # speed
    win.speed_combo.setCurrentIndex(win.speed_combo.findData("2"))
    assert win.replay_device.speed == 2.0
    # seek: the session restarts, fast-forwards through the pipeline to the target, keeps playing
    win.seek(4.0)
    dev = win.replay_device
    assert dev is not None and dev.start_at == pytest.approx(dev.t_first + 4.0)
    qtbot.waitUntil(lambda: dev.position >= dev.t_first + 4.0, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: win.store.t_latest >= dev.t_first + 4.0, timeout=WAIT_MS)


def test_cued_session_records_cues_and_shows_a_score(qtbot, tmp_path, no_leaks):
    from emgpilot.signals.recording import open_recording

    win = make_window(qtbot, tmp_path, fast_demo(seed=1, manual=True))
    advance(win, 3.0)
    win.record_edit.setText(str(tmp_path / "cued.mcap"))
    win.record_button.setChecked(True)
    plan = CuePlan(gestures=("wave_up", "stiffen"), repetitions=1, cue_s=2.0, rest_s=2.0, lead_in_s=1.0, seed=3)
    assert win.start_cues(plan)
    advance(win, 1.5)
    assert "(1/2)" in win.cue_display.text.text()
    assert win.cue_display.countdown.text().endswith(" s")
    advance(win, plan.duration_s)
    assert win.cue_result != ""
    assert win.score_view.rowCount() == 3  # stiffen, wave_up, all
    assert win.score_view.item(2, 0).text() == "all" and win.score_view.item(2, 1).text() == "2"
    assert "correct" in win.cue_result
    win.record_button.setChecked(False)  # the file is finished in the background
    qtbot.waitUntil(lambda: not win.closing, timeout=WAIT_MS)
    rec = open_recording(tmp_path / "cued.mcap")
    cues = [e for e in rec.events("cue") if isinstance(e, CueEvent)]
    # the protocol's cues are the ground truth; the arm's own cue stream is left out meanwhile
    assert [c.label for c in cues if c.label != "rest"] == plan.order()


def test_a_cued_session_can_calibrate_the_wearer(qtbot, tmp_path, monkeypatch, no_leaks):
    from emgpilot.classifiers.calibration import load_calibration
    from emgpilot.wearer import calibration_path, load_profile

    spec = fast_demo(seed=2, manual=True)
    spec.profile_dir = str(tmp_path / "wearers")
    win = make_window(qtbot, tmp_path, spec)
    advance(win, 2.0)
    plan = CuePlan(
        gestures=("fist", "wave_down", "wave_up"),
        repetitions=3,
        cue_s=3.0,
        rest_s=2.0,
        lead_in_s=1.0,
        random_order=False,
    )
    win.calibrate_check.setChecked(True)
    assert not win.start_cues(plan)
    assert "Wearer field" in win._last_message
    win.wearer_edit.setText("ana")
    assert not win.start_cues(plan)
    assert "live Myo wearer" in win._last_message
    # The synthetic arm stands in for a person wearing a Myo here (it follows the cues).
    monkeypatch.setattr("emgpilot.wearer.PROFILE_SOURCES", ("myo", "synthetic"))
    assert win.start_cues(plan)
    advance(win, plan.duration_s + 0.5)
    assert "correct" in win.cue_result
    qtbot.waitUntil(lambda: not win.closing, timeout=WAIT_MS)
    assert "calibration saved" in win._last_message, win._last_message
    cal = load_calibration(calibration_path("ana", spec.profile_dir))
    assert cal.classes == ("rest", "fist", "wrist_flexion", "wrist_extension")
    assert load_profile("ana", spec.profile_dir).wrist_rotation == cal.rotation


def test_settings_persist_between_runs(qtbot, tmp_path, no_leaks):
    win = make_window(qtbot, tmp_path, None)
    win._select(win.drone_combo, "virtual")
    win.ip_edit.setText("10.0.0.7")
    win.mapping_edit.setText("/tmp/my-mapping.toml")
    win.reps_spin.setValue(5)
    win.close()
    again = make_window(qtbot, tmp_path, None)
    assert again.drone_combo.currentData() == "virtual"
    assert again.ip_edit.text() == "10.0.0.7"
    assert again.mapping_edit.text() == "/tmp/my-mapping.toml"
    assert again.reps_spin.value() == 5
    again.close()


def test_bad_source_is_reported_not_raised(qtbot, tmp_path, no_leaks):
    spec = SessionSpec(source="recording", recording=str(tmp_path / "missing.mcap"), drone="none")
    win = make_window(qtbot, tmp_path, spec)
    assert win.session is None
    assert "missing.mcap" in win._last_message


def test_screenshot_command(qtbot, tmp_path, no_leaks):
    from emgpilot.app.cli import main

    out = tmp_path / "shot.png"
    code = main(
        [
            "gui",
            "--demo",
            "--screenshot",
            str(out),
            "--seconds",
            "3",
            "--speed",
            "max",
            "--settings",
            str(tmp_path / "s.toml"),
        ]
    )
    assert code == 0
    from PyQt6 import QtGui

    img = QtGui.QImage(str(out))
    assert img.width() >= 800 and img.height() >= 500
    assert not (tmp_path / "s.toml").exists()  # a scripted screenshot leaves the user's settings alone


def test_no_arguments_open_the_demo_and_run_opens_the_window(monkeypatch, tmp_path):
    """`emgpilot` alone -> `gui --demo`; `emgpilot run` without --headless -> the window (launch is stubbed)."""
    from emgpilot.app import cli
    from emgpilot.app.commands import gui as gui_cmd

    opened = []
    monkeypatch.setattr(gui_cmd, "launch", lambda spec, **kw: opened.append(spec) or 0)
    assert cli.main([]) == 0
    spec = opened[-1]
    assert spec.source == "synthetic" and spec.drone == "sim" and spec.demo_idle and spec.auto_takeoff_s == 1.0
    assert (
        cli.main(["run", "--source", "synthetic", "--drone", "sim", "--seed", "4", "--takeoff", "--record", "x.mcap"])
        == 0
    )
    spec = opened[-1]
    assert spec.source == "synthetic" and spec.drone == "sim" and spec.seed == 4 and not spec.demo_idle
    assert spec.takeoff and spec.record == "x.mcap"
    rec = tmp_path / "r.mcap"
    rec.write_bytes(b"")
    assert cli.main(["run", "--source", "replay", "--recording", str(rec), "--speed", "max"]) == 0
    assert opened[-1].source == "recording" and math.isinf(opened[-1].speed)
    assert cli.main(["gui", "--source", "recording"]) == 2  # a user error, not a traceback


def test_live_myo_on_a_fake_dongle_streams_into_the_window(qtbot, tmp_path, no_leaks):
    """The live path: the Myo driver (BLED112 protocol on a pseudo-terminal) read by the runner thread."""
    from emgpilot.signals.fakes import FakeMyoDongle

    fake = FakeMyoDongle(tmp_path / "ttyMyo")
    port = fake.start()
    try:
        win = make_window(qtbot, tmp_path, SessionSpec(source="myo", myo_port=port, drone="sim"))
        assert win.session is not None, win._last_message
        qtbot.waitUntil(lambda: win.store.samples.get("forearm_emg", 0) >= 200, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: win.store.samples.get("forearm_imu", 0) >= 50, timeout=WAIT_MS)
        assert "drone_telemetry" in win.store.buffers
        assert "dropped" in win.session.device_counters()
        win.close()
        qtbot.waitUntil(lambda: not win.isVisible(), timeout=WAIT_MS)  # the driver closed the port
    finally:
        fake.stop()


def test_no_display_is_a_clear_error(monkeypatch, capsys):
    from emgpilot.app import cli

    monkeypatch.setattr("sys.platform", "linux")
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    assert cli.main(["gui", "--demo"]) == 2
    assert "no display" in capsys.readouterr().err


# Olympe touches its own deprecated module aliases from its threads (see tests/drone/test_olympe_backend.py)
@pytest.mark.filterwarnings(r"ignore:'olympe\.[\w.]+' is deprecated:DeprecationWarning")
def test_virtual_bebop_connects_off_the_gui_thread_and_flies(qtbot, tmp_path, no_leaks):
    """Drone choice "Virtual Bebop 2": Olympe talks ARSDK to the virtual drone on loopback; the
    connection runs on the action thread while the window keeps drawing."""
    pytest.importorskip("olympe")
    spec = fast_demo(seed=1)
    spec.speed = 4.0  # Olympe flies in wall time: keep data time close to it
    spec.drone = "virtual"
    spec.auto_takeoff_s = None
    win = make_window(qtbot, tmp_path, spec)
    assert win.session is not None and win.session.drone_status == "connecting..."
    qtbot.waitUntil(lambda: win.session.drone_status == "connected", timeout=WAIT_MS)
    qtbot.keyClick(win, QtCore.Qt.Key.Key_T)
    qtbot.waitUntil(lambda: drone(win) is not None and drone(win).airborne, timeout=WAIT_MS)
    qtbot.keyClick(win, QtCore.Qt.Key.Key_L)
    qtbot.waitUntil(lambda: any(getattr(e, "action", "") == "land" for e in win.store.events), timeout=WAIT_MS)


def test_record_and_takeoff_from_the_spec(qtbot, tmp_path, no_leaks):
    """`emgpilot run --record F --takeoff` in the window: recording starts at once, the drone takes off."""
    from emgpilot.signals.recording import open_recording

    spec = fast_demo(seed=1, manual=True)
    spec.auto_takeoff_s = None
    spec.takeoff = True
    spec.record = str(tmp_path / "run.mcap")
    win = make_window(qtbot, tmp_path, spec)
    assert win.record_button.isChecked()
    qtbot.waitUntil(lambda: win.session.pilot.state().flying_state != "landed", timeout=WAIT_MS)  # action thread
    advance(win, 3.0)
    assert drone(win).airborne
    assert win.record_label.text().startswith("\u25cf")
    win.record_button.setChecked(False)
    qtbot.waitUntil(lambda: not win.closing, timeout=WAIT_MS)
    rec = open_recording(tmp_path / "run.mcap")
    assert {"forearm_emg", "gesture", "drone_telemetry", "safety"} <= set(rec.streams)
    assert rec.duration_s > 2.5
    assert len(rec.chunk("drone_telemetry")) > 20  # the pilot's own messages are recorded too
    assert any(getattr(e, "action", "") == "takeoff" for e in rec.events("safety"))


def test_the_record_box_never_replaces_an_existing_recording(qtbot, tmp_path, no_leaks):
    existing = tmp_path / "keep.mcap"
    existing.write_bytes(b"an earlier session")
    win = make_window(qtbot, tmp_path, fast_demo(seed=1, manual=True))
    win.record_edit.setText(str(existing))
    win.record_button.setChecked(True)
    assert not win.record_button.isChecked()  # refused, with the reason shown
    assert existing.read_bytes() == b"an earlier session"
    win.settings.record_dir = str(tmp_path / "recordings")
    first = Path(win._default_record_path())
    first.parent.mkdir(parents=True, exist_ok=True)
    first.write_bytes(b"")
    assert win._default_record_path() != str(first)  # two sessions started within one second


def test_replay_without_a_drone_shows_the_recorded_flight(qtbot, tmp_path, no_leaks):
    from emgpilot.app.gui.session import Session

    spec = fast_demo(seed=1, manual=True)
    spec.record = str(tmp_path / "flight.mcap")
    live = Session(spec)
    live.start()  # starts recording spec.record
    live.advance(5.0)
    live.close()
    win = make_window(
        qtbot, tmp_path, SessionSpec(source="recording", recording=spec.record, speed=math.inf, drone="none")
    )
    assert "drone_telemetry" not in win.store.buffers and "drone_telemetry" in win.store.recorded_buffers
    qtbot.waitUntil(lambda: win.session.finished and win.session.pending == 0, timeout=WAIT_MS)
    win.frame()
    assert win.drone_view.state is not None and win.drone_view.state.airborne
    assert "recorded flight" in win.drone_view.status.text()


class StuckDevice:
    """A device whose driver hangs inside ``read`` (an unplugged serial port with no timeout)
    until the test releases it."""

    name = "stuck"

    def __init__(self, release: threading.Event) -> None:
        self.release = release
        self.reading = threading.Event()

    def streams(self):
        from emgpilot.signals.streams import FOREARM_EMG, FOREARM_IMU

        return [FOREARM_EMG, FOREARM_IMU]

    def info(self) -> dict:
        return {"name": self.name}

    def start(self) -> None:
        pass

    def read(self, timeout: float | None = None) -> list:
        self.reading.set()
        self.release.wait()  # ignores the timeout: the worst case of a driver
        return []

    @property
    def finished(self) -> bool:
        return self.release.is_set()

    def stop(self) -> None:
        pass


class HangingConnectBackend:
    """The simulator behind a link whose connect hangs until released (an Olympe connect can take 45 s)."""

    def __init__(self, release: threading.Event) -> None:
        from emgpilot.drone.pilot import open_backend

        self.inner = open_backend("sim")
        self.release = release
        self.connecting = threading.Event()

    def connect(self) -> bool:
        self.connecting.set()
        self.release.wait()
        return self.inner.connect()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def test_gui_thread_never_waits_on_a_stuck_device_or_drone(qtbot, tmp_path, no_leaks, monkeypatch):
    """The device read and the drone connect both hang; the window keeps drawing frames and taking
    keys and clicks. (Had the GUI thread waited on either, this test would hang: nothing here
    releases them before the end.)"""
    import emgpilot.app.gui.session as session_module
    import emgpilot.drone.pilot as pilot_module

    release = threading.Event()
    device = StuckDevice(release)
    backend = HangingConnectBackend(release)
    monkeypatch.setattr(session_module, "open_device", lambda spec: device)
    monkeypatch.setattr(pilot_module, "open_backend", lambda *args, **kwargs: backend)
    win = make_window(qtbot, tmp_path, SessionSpec(source="synthetic", drone="bebop"))
    try:
        # the runner thread is inside read(), the action thread inside connect()
        qtbot.waitUntil(lambda: device.reading.is_set() and backend.connecting.is_set(), timeout=WAIT_MS)
        n_frames = len(win.frame_stats.times_ms)
        for key in (QtCore.Qt.Key.Key_T, QtCore.Qt.Key.Key_L, QtCore.Qt.Key.Key_F):
            qtbot.keyClick(win, key)  # take-off and land queue behind the connect; F: no synthetic arm here
        qtbot.mouseClick(win.emergency_button, QtCore.Qt.MouseButton.LeftButton)  # its own thread
        for _ in range(5):
            win.frame()
        win.window_combo.setCurrentIndex(0)  # the view still answers
        win.frame()
        assert len(win.frame_stats.times_ms) >= n_frames + 6
        assert win.window_s == 5.0
        assert win.session.drone_status == "connecting..." and not device.finished  # both still stuck
    finally:
        release.set()


class HangingStopDevice:
    """A real device (the synthetic arm) whose driver hangs in ``stop`` (a serial port that will
    not close) until the test releases it."""

    def __init__(self, inner, release: threading.Event) -> None:
        self.inner = inner
        self.name = inner.name
        self.release = release
        self.stopping = threading.Event()

    def streams(self):
        return self.inner.streams()

    def info(self) -> dict:
        return self.inner.info()

    def start(self) -> None:
        self.inner.start()

    def read(self, timeout: float | None = None) -> list:
        return self.inner.read(timeout)

    @property
    def finished(self) -> bool:
        return self.inner.finished

    def stop(self) -> None:
        self.stopping.set()
        self.release.wait()
        self.inner.stop()


class HangingCloseBackend:
    """The simulator behind a link whose close hangs until released (the Olympe backend waits up to
    60 s, behind any connect in progress); counts the EMERGENCY calls that reach it."""

    def __init__(self, release: threading.Event) -> None:
        from emgpilot.drone.pilot import open_backend

        self.inner = open_backend("sim")
        self.release = release
        self.closing = threading.Event()
        self.emergencies = 0

    def emergency(self) -> None:
        self.emergencies += 1
        self.inner.emergency()

    def close(self) -> None:
        self.closing.set()
        self.release.wait()
        self.inner.close()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def gui_thread_is_free(qtbot, win: MainWindow) -> None:
    """The frame timer keeps drawing and a click on a tab is handled (both would hang if the GUI
    thread waited)."""
    n = win._frame_no
    qtbot.waitUntil(lambda: win._frame_no >= n + 10, timeout=WAIT_MS)
    bar = win.tabs.tabBar()
    other = 1 - min(win.tabs.currentIndex(), 1)
    qtbot.mouseClick(bar, QtCore.Qt.MouseButton.LeftButton, pos=bar.tabRect(other).center())
    assert win.tabs.currentIndex() == other


@pytest.mark.parametrize("how", ["disconnect", "close the window"])
def test_closing_never_waits_on_a_stuck_device_or_drone(qtbot, tmp_path, no_leaks, monkeypatch, how):
    """Disconnect / closing the window while the device's stop and then the drone link's close hang:
    the GUI thread keeps drawing frames and taking clicks and keys, EMERGENCY reaches the closing
    drone, Connect stays disabled and the window stays up (saying what it waits on). Once the hangs
    are released every thread is joined; then Connect works again / the window closes by itself.
    (Had the GUI thread waited, this test would hang: nothing releases the hangs before the checks.)"""
    import emgpilot.app.gui.session as session_module
    import emgpilot.drone.pilot as pilot_module
    from emgpilot.signals.recording import open_recording

    # the close must wait for every thread however slow this machine is (the default gives up after 5 s)
    monkeypatch.setattr(session_module, "JOIN_TIMEOUT_S", 600.0)
    release_device, release_drone = threading.Event(), threading.Event()
    backend = HangingCloseBackend(release_drone)
    real_open_device = session_module.open_device
    devices: list[HangingStopDevice] = []

    def open_device(spec):
        devices.append(HangingStopDevice(real_open_device(spec), release_device))
        return devices[-1]

    monkeypatch.setattr(session_module, "open_device", open_device)
    monkeypatch.setattr(pilot_module, "open_backend", lambda *args, **kwargs: backend)
    spec = fast_demo(seed=1)  # the runner thread at speed max; the simulator takes off at 1 s of data
    spec.record = str(tmp_path / "closing.mcap")
    win = make_window(qtbot, tmp_path, spec)
    session = win.session
    try:
        qtbot.waitUntil(lambda: session.pilot.state().airborne, timeout=WAIT_MS)
        if how == "disconnect":
            qtbot.mouseClick(win.connect_button, QtCore.Qt.MouseButton.LeftButton)
        else:
            win.close()
        assert win.session is None  # detached at once
        # the background close waits for the runner thread, which is inside the device's stop()
        qtbot.waitUntil(devices[0].stopping.is_set, timeout=WAIT_MS)
        assert win.isVisible() and win.closing
        assert not win.connect_button.isEnabled() and win.connect_button.text() == "Disconnecting\u2026"
        gui_thread_is_free(qtbot, win)
        qtbot.keyClick(win, QtCore.Qt.Key.Key_Space)  # the closing session's drone is still reachable
        qtbot.waitUntil(lambda: backend.emergencies == 1, timeout=WAIT_MS)
        release_device.set()
        # next the drone link's close hangs, holding the pilot's lock
        qtbot.waitUntil(backend.closing.is_set, timeout=WAIT_MS)
        qtbot.waitUntil(
            lambda: "closing: landing and closing the drone link" in win.status_label.text(), timeout=WAIT_MS
        )
        gui_thread_is_free(qtbot, win)
        qtbot.keyClick(win, QtCore.Qt.Key.Key_Space)  # reaches the backend before it waits for that lock
        qtbot.waitUntil(lambda: backend.emergencies == 2, timeout=WAIT_MS)
        assert win.isVisible() and not win.connect_button.isEnabled()
        assert session.runner._thread is None and not session.closed
    finally:
        release_device.set()
        release_drone.set()
    if how == "disconnect":
        qtbot.waitUntil(lambda: win.connect_button.isEnabled(), timeout=WAIT_MS)
        assert win.connect_button.text() == "Connect" and not win.closing
        assert "recorded" in win._last_message, win._last_message
    else:
        qtbot.waitUntil(lambda: not win.isVisible(), timeout=WAIT_MS)  # closed itself once all was closed
        assert not win.timer.isActive()
    assert session.closed
    ours = ("runner-", "gui-", "pilot-")
    qtbot.waitUntil(lambda: not [t for t in threading.enumerate() if t.name.startswith(ours)], timeout=WAIT_MS)
    # the recording was finished (by the session's close), EMERGENCY included
    rec = open_recording(spec.record)
    assert any(getattr(e, "action", "") == "emergency" for e in rec.events("safety"))
    if how == "disconnect":  # and a new session can be opened now
        monkeypatch.undo()
        qtbot.mouseClick(win.connect_button, QtCore.Qt.MouseButton.LeftButton)
        assert win.session is not None and win.connect_button.text() == "Disconnect", win._last_message


def test_a_session_needing_the_same_sensors_opens_once_the_old_one_has_closed(qtbot, tmp_path, no_leaks, monkeypatch):
    """Live sensors (a serial port) cannot be opened twice: reopening waits for the old session's
    background close (Connect disabled meanwhile), then opens by itself."""
    import emgpilot.app.gui.session as session_module
    from emgpilot.signals.synthetic import SyntheticArm

    monkeypatch.setattr(session_module, "JOIN_TIMEOUT_S", 600.0)
    release = threading.Event()
    devices: list[HangingStopDevice] = []

    def open_device(spec):  # stands in for the Myo's driver
        devices.append(HangingStopDevice(SyntheticArm(seed=1, speed=math.inf), release))
        return devices[-1]

    monkeypatch.setattr(session_module, "open_device", open_device)
    spec = SessionSpec(source="myo", drone="none")
    win = make_window(qtbot, tmp_path, spec)
    try:
        qtbot.waitUntil(lambda: win.store.t_latest > 0.5, timeout=WAIT_MS)
        assert win.open_session(spec) is False  # the old session still holds the port
        qtbot.waitUntil(devices[0].stopping.is_set, timeout=WAIT_MS)
        assert win.session is None and len(devices) == 1
        assert not win.connect_button.isEnabled()
        gui_thread_is_free(qtbot, win)
    finally:
        release.set()
    qtbot.waitUntil(lambda: win.session is not None, timeout=WAIT_MS)
    assert len(devices) == 2 and win.connect_button.text() == "Disconnect" and win.connect_button.isEnabled()
    qtbot.waitUntil(lambda: win.store.t_latest > 0.5, timeout=WAIT_MS)


def test_a_session_that_cannot_start_is_closed_in_the_background(qtbot, tmp_path, no_leaks):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    spec = fast_demo(manual=True)
    spec.record = str(blocker / "run.mcap")  # cannot be created: start() fails after the drone opened
    win = make_window(qtbot, tmp_path, spec)
    assert win.session is None and "cannot start" in win._last_message
    qtbot.waitUntil(lambda: not win.closing, timeout=WAIT_MS)
    assert "cannot start" in win._last_message  # the error stays shown
    assert win.connect_button.text() == "Connect" and win.connect_button.isEnabled()


class SlowClosingWriter:
    """A recording writer whose ``close`` (flush, summary, footer) hangs until released (a slow disk)."""

    def __init__(self, inner, release: threading.Event) -> None:
        self.inner = inner
        self.release = release
        self.closing = threading.Event()

    def write(self, msgs: list) -> None:
        self.inner.write(msgs)

    def close(self) -> None:
        self.closing.set()
        self.release.wait()
        self.inner.close()


def test_stopping_a_recording_never_waits_on_the_file(qtbot, tmp_path, no_leaks):
    from emgpilot.signals.recording import open_recording

    win = make_window(qtbot, tmp_path, fast_demo(seed=1, manual=True))
    advance(win, 1.0)
    path = tmp_path / "slow.mcap"
    win.record_edit.setText(str(path))
    win.record_button.setChecked(True)
    advance(win, 2.0)
    recorder = win.session.recorder
    release = threading.Event()
    writer = recorder.writer = SlowClosingWriter(recorder.writer, release)
    try:
        win.record_button.setChecked(False)  # returns at once
        qtbot.waitUntil(writer.closing.is_set, timeout=WAIT_MS)
        assert win.closing and win.record_button.text() == "Record"
        assert win.record_label.text().startswith("finishing")
        advance(win, 1.0)  # data flows on (and is no longer written to the file)
        gui_thread_is_free(qtbot, win)
        assert win.connect_button.isEnabled()  # only a session's close holds Connect
    finally:
        release.set()
    qtbot.waitUntil(lambda: not win.closing, timeout=WAIT_MS)
    assert win._last_message == f"recorded {path}" and win.record_label.text() == "not recording"
    rec = open_recording(path)
    assert 1.5 < rec.duration_s < 2.5  # the 2 s recorded, not the second after the stop


def test_line_item_joins_runs_of_finite_points_and_never_has_empty_bounds(qapp):
    import numpy as np
    import pyqtgraph as pg

    from emgpilot.app.gui.plots import LineItem

    x = np.arange(10.0)
    y = np.array([0, 1, np.nan, 3, 4, 5, np.nan, np.nan, 8, 9], dtype=float)
    assert LineItem._runs(x, y, None) == [(0, 2), (3, 6), (8, 10)]
    connect = np.ones(10, dtype=bool)
    connect[3] = False  # point 3 not joined to 4
    assert LineItem._runs(x, y, connect) == [(0, 2), (4, 6), (8, 10)]
    assert LineItem._runs(x, np.zeros(10), None) == [(0, 10)]
    assert LineItem._runs(x[:1], y[:1], None) == []
    item = LineItem(pg.mkPen("k"))
    item.setData(x, np.full(10, -1.0))  # a flat line (the decision class resting at "rej")
    r = item.boundingRect()
    assert r.width() > 0 and r.height() > 0 and r.left() <= 0.0 and r.right() >= 9.0
    assert len(item._polylines) == 1 and item._polylines[0].size() == 10
    item.setData([], [])
    assert item.boundingRect().isEmpty() and not item._polylines
    with pytest.raises(ValueError, match="one length"):
        item.setData(x, y[:5])


def test_a_wearer_profile_is_kept_between_sessions(qapp, tmp_path, no_leaks):
    """Closing a session stores the armband rotation it learnt; the wearer's next session starts there."""
    from emgpilot.app.gui.session import Session
    from emgpilot.signals.synthetic import SyntheticArm
    from emgpilot.wearer import load_profile

    def spec(source: str = "myo") -> SessionSpec:
        return SessionSpec(
            source=source, speed=math.inf, drone="none", manual=True, wearer="ana", profile_dir=str(tmp_path)
        )

    def arm() -> SyntheticArm:  # stands in for the live Myo (the test steps it in data time)
        return SyntheticArm(seed=3, speed=math.inf)

    first = Session(spec(), device=arm())
    first.start()
    first.advance(150.0)
    learnt = first.pipeline.stages[[s.name for s in first.pipeline.stages].index("detector.activation")]
    assert learnt.rotation_windows >= 100
    first.close()
    profile = load_profile("ana", tmp_path)
    assert profile.wrist_rotation == learnt.electrode_shift and profile.sessions == 1
    second = Session(spec(), device=arm())
    try:
        assert second.cfg.recognition.wrist_rotation_prior == profile.wrist_rotation
    finally:
        second.close()
    assert load_profile("ana", tmp_path).sessions == 1  # the second session learnt nothing new
    # The synthetic arm (a demo) neither reads nor writes the profile.
    demo = Session(spec("synthetic"), device=arm())
    try:
        assert demo.profile is None and demo.cfg.recognition.wrist_rotation_prior == 0
    finally:
        demo.close()


def test_the_wearer_field_goes_into_the_spec_and_the_settings(qtbot, tmp_path, no_leaks):
    win = make_window(qtbot, tmp_path, None)
    win.wearer_edit.setText(" ana ")
    assert win.spec_from_controls().wearer == "ana"
    win.wearer_edit.setText("")
    assert win.spec_from_controls().wearer is None
    win.wearer_edit.setText("ana")
    win._save_settings()
    from emgpilot.app.gui.settings import GuiSettings

    assert GuiSettings.load(tmp_path / "gui.toml").wearer == "ana"
