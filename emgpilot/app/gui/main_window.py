"""The main flight window: live plots, detectors, timeline, drone view, controls, cues, replay.

One QTimer (30 fps) drives everything: it drains the session's queue into ring buffers and
redraws what is visible. Device reading, the pipeline and the simulated drone run on the
session runner's thread; drone I/O runs on the backend's threads or the session's action
thread. The GUI thread only copies new chunks into ring buffers and draws.

Closing never blocks it either: Disconnect, closing the window and stopping a recording detach
the session (or the file) at once and close it on a background job (see
:class:`~emgpilot.app.gui.session.BackgroundJob`), which reports back through a queued signal.
Meanwhile Connect is disabled, the status bar says what the close waits on and EMERGENCY still
reaches the drone; the window accepts its close event (and so lets the application quit) only
once every job is done. :meth:`MainWindow.shutdown` is the blocking variant for code that runs
after the event loop (``launch``, the benchmark, tests).
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from PyQt6 import QtCore, QtGui, QtWidgets

from emgpilot.app.gui.cues import ARROWS, CuePlan, CueSequencer, score_table
from emgpilot.app.gui.drone_view import DroneView
from emgpilot.app.gui.pacing import FramePacer, RedrawGate
from emgpilot.app.gui.plots import DetectorPanel, EventLog, SignalPlots, StreamStore, Timeline
from emgpilot.app.gui.session import DEMO_SCRIPT, BackgroundJob, Session, SessionSpec, exclusive_resources
from emgpilot.app.gui.settings import GuiSettings, default_settings_path
from emgpilot.signals.runner import describe_statuses, problem_statuses
from emgpilot.signals.vocabulary import GESTURES, REST

log = logging.getLogger(__name__)

DEMO_KEYS: dict[int, str] = {
    QtCore.Qt.Key.Key_F: "fist",
    QtCore.Qt.Key.Key_S: "stiffen",
    QtCore.Qt.Key.Key_Up: "wave_up",
    QtCore.Qt.Key.Key_Down: "wave_down",
    QtCore.Qt.Key.Key_Left: "wave_left",
    QtCore.Qt.Key.Key_Right: "wave_right",
    QtCore.Qt.Key.Key_Q: "rotate_ccw",
    QtCore.Qt.Key.Key_E: "rotate_cw",
}
"""Keys that make the synthetic arm perform a gesture."""

KEY_HELP = (
    "<b>Keys</b> (synthetic arm)<br>"
    "F fist \u2192 forward<br>S stiffen \u2192 stop<br>"
    "\u2191 \u2193 wave up/down \u2192 up/down<br>\u2190 \u2192 wave left/right \u2192 left/right<br>"
    "Q / E rotate ccw/cw \u2192 turn left/right<br>"
    "T take off &nbsp; L land<br><b style='color:#c00'>Space: EMERGENCY</b>"
)

SOURCE_LABELS = {
    "synthetic": "Synthetic arm",
    "myo": "Myo armband",
    "myoware": "MyoWare (upper arm)",
    "recording": "Recording",
}
DRONE_LABELS = {"sim": "Simulator", "virtual": "Virtual Bebop 2", "bebop": "Bebop 2 at IP", "none": "No drone"}
WINDOWS_S = (5.0, 10.0, 30.0, 60.0, 600.0, 3600.0)
SHUTDOWN_TIMEOUT_S = 120.0
"""How long :meth:`MainWindow.shutdown` waits for closing sessions and files: longer than a
session's own bounded waits (runner, actions and EMERGENCY threads 5 s each, the Olympe link's
60 s), so it only gives up on a driver that is stuck for good."""


@dataclass
class FrameStats:
    """GUI-thread cost of frames (for the status bar and the benchmark)."""

    times_ms: deque
    points: int = 0
    signal_redraws: int = 0

    @classmethod
    def new(cls) -> FrameStats:
        return cls(deque(maxlen=300))


class CueDisplay(QtWidgets.QFrame):
    """The large cue: icon/arrow, text, countdown and progress."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        lay = QtWidgets.QHBoxLayout(self)
        self.icon = QtWidgets.QLabel(ARROWS[REST])
        font = self.icon.font()
        font.setPointSize(44)
        self.icon.setFont(font)
        self.icon.setMinimumWidth(80)
        self.icon.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.text = QtWidgets.QLabel("No cued session")
        self.text.setWordWrap(True)
        # long texts (the score) must not widen the panel and squeeze the plots
        self.text.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        tf = self.text.font()
        tf.setPointSize(18)
        tf.setBold(True)
        self.text.setFont(tf)
        self.countdown = QtWidgets.QLabel("")
        self.countdown.setFont(tf)
        lay.addWidget(self.icon)
        lay.addWidget(self.text, 1)
        lay.addWidget(self.countdown)

    def show_state(self, label: str, text: str, countdown: str, active: bool) -> None:
        self.icon.setText(ARROWS.get(label, "?"))
        self.text.setText(text)
        self.countdown.setText(countdown)
        self.setStyleSheet("QFrame { background: #fff3b0; }" if active else "")


class MainWindow(QtWidgets.QMainWindow):
    """See the module docstring.

    Parameters
    ----------
    spec : session to open at once (None: open nothing until Connect).
    settings_path : where settings persist (None: the user config folder).
    history_s : ring-buffer history per stream.
    autostart : start the frame timer (tests may call :meth:`frame` themselves instead).
    save_settings : write the settings back when closing (False: scripted runs such as screenshots).
    """

    _job_finished = QtCore.pyqtSignal(object)
    """A background close finished (emitted from its thread, delivered on the GUI thread)."""

    def __init__(
        self,
        spec: SessionSpec | None = None,
        settings_path: Path | None = None,
        history_s: float = 3600.0,
        autostart: bool = True,
        save_settings: bool = True,
    ) -> None:
        super().__init__()
        self._persist = save_settings
        self.setWindowTitle("emgpilot")
        self.settings_path = settings_path or default_settings_path()
        self.settings = GuiSettings.load(self.settings_path)
        self.store = StreamStore(history_s=history_s)
        self.session: Session | None = None
        self.frame_stats = FrameStats.new()
        self.window_s = self.settings.window_s if self.settings.window_s > 0 else 10.0
        self.channels: dict[str, tuple[str, ...]] = {}
        self.cue_result: str = ""
        self._cues: CueSequencer | None = None
        self._calibrate_for: str | None = None  # the wearer the running cued session calibrates
        self._rate_hist: deque[tuple[float, dict[str, int]]] = deque(maxlen=64)
        self._closed = False
        # closing in the background: the jobs not yet reported, the sessions they close, a session to
        # open once its resources are free, and whether the window closes when all are done
        self._jobs: list[BackgroundJob] = []
        self._ended: list[BackgroundJob] = []  # reported, their threads maybe still returning: joined at shutdown
        self._closing: list[Session] = []
        self._pending_open: SessionSpec | None = None
        self._close_requested = False
        self._job_finished.connect(self._on_job_finished)
        self._build()
        self._keys_filter_installed = False
        app = QtWidgets.QApplication.instance()
        if app is not None:
            app.installEventFilter(self)
            self._keys_filter_installed = True
        # one-shot timer re-armed by every frame for the pacer's next slot (a fixed 30 fps schedule)
        self.pacer = FramePacer()
        self._redraw_gate = RedrawGate()
        self.timer = QtCore.QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(self._timed_frame)
        self.signals.setFocus()  # keys go to the demo, not to the first text field
        if spec is not None:
            self.open_session(spec)
        if autostart:
            self.timer.start(0)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        central = QtWidgets.QWidget()
        self.setCentralWidget(central)
        outer = QtWidgets.QHBoxLayout(central)
        outer.setContentsMargins(4, 4, 4, 4)
        outer.addWidget(self._controls(), 0)
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        outer.addWidget(split, 1)
        left = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.signals = SignalPlots()
        self.signals.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        left.addWidget(self.signals)
        self.timeline = Timeline()
        left.addWidget(self.timeline)
        left.setSizes([620, 170])
        split.addWidget(left)
        right = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        self.cue_display = CueDisplay()
        right.addWidget(self.cue_display)
        drone_box = QtWidgets.QWidget()
        dl = QtWidgets.QVBoxLayout(drone_box)
        dl.setContentsMargins(0, 0, 0, 0)
        from emgpilot.drone.course import CourseConfig

        self.drone_view = DroneView(CourseConfig().hoops)
        dl.addWidget(self.drone_view, 1)
        dl.addWidget(self.drone_view.status)
        right.addWidget(drone_box)
        tabs = QtWidgets.QTabWidget()
        self.detectors = DetectorPanel()
        tabs.addTab(self.detectors, "Detectors")
        self.event_log = EventLog()
        tabs.addTab(self.event_log, "Event log")
        self.score_view = QtWidgets.QTableWidget(0, 6)
        self.score_view.setHorizontalHeaderLabels(["gesture", "cued", "correct", "wrong", "missed", "acc %"])
        self.score_view.verticalHeader().setVisible(False)
        self.score_view.horizontalHeader().setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.Stretch)
        tabs.addTab(self.score_view, "Cue score")
        self.tabs = tabs
        right.addWidget(tabs)
        right.setSizes([90, 380, 400])
        split.addWidget(right)
        split.setSizes([820, 520])
        self.status_label = QtWidgets.QLabel("")
        self.statusBar().addWidget(self.status_label, 1)
        QtGui.QShortcut(QtGui.QKeySequence("Ctrl+Q"), self, activated=self.close)

    def _controls(self) -> QtWidgets.QWidget:
        box = QtWidgets.QWidget()
        box.setMaximumWidth(250)
        lay = QtWidgets.QVBoxLayout(box)
        lay.setContentsMargins(0, 0, 0, 0)

        src = QtWidgets.QGroupBox("Source")
        sl = QtWidgets.QFormLayout(src)
        self.source_combo = QtWidgets.QComboBox()
        for key, label in SOURCE_LABELS.items():
            self.source_combo.addItem(label, key)
        self._select(self.source_combo, self.settings.source)
        sl.addRow(self.source_combo)
        self.port_edit = QtWidgets.QLineEdit(self.settings.myo_port)
        self.port_edit.setPlaceholderText("Myo dongle port (auto)")
        sl.addRow("Myo", self.port_edit)
        self.upper_edit = QtWidgets.QLineEdit(self.settings.upper_arm_port)
        self.upper_edit.setPlaceholderText("MyoWare serial port")
        sl.addRow("Upper", self.upper_edit)
        self.recording_edit = QtWidgets.QLineEdit(self.settings.recording)
        self.recording_edit.setPlaceholderText("recording.mcap")
        browse = QtWidgets.QPushButton("Open\u2026")
        browse.clicked.connect(self._browse_recording)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.recording_edit, 1)
        row.addWidget(browse)
        sl.addRow(row)
        self.wearer_edit = QtWidgets.QLineEdit(self.settings.wearer)
        self.wearer_edit.setPlaceholderText("name (remembers the armband rotation)")
        self.wearer_edit.setToolTip(
            "Wearer profile (Myo armband source): the rotation estimate starts from where this wearer's armband "
            "sat last time and the profile is updated when the session closes. Empty: start from the standard "
            "placement. Not used with the synthetic arm or a recording."
        )
        sl.addRow("Wearer", self.wearer_edit)
        lay.addWidget(src)

        drone = QtWidgets.QGroupBox("Drone")
        dl = QtWidgets.QFormLayout(drone)
        self.drone_combo = QtWidgets.QComboBox()
        for key, label in DRONE_LABELS.items():
            self.drone_combo.addItem(label, key)
        self._select(self.drone_combo, self.settings.drone)
        dl.addRow(self.drone_combo)
        self.ip_edit = QtWidgets.QLineEdit(self.settings.ip)
        dl.addRow("IP", self.ip_edit)
        self.mapping_edit = QtWidgets.QLineEdit(self.settings.mapping)
        self.mapping_edit.setPlaceholderText("mapping.toml (default)")
        dl.addRow("Map", self.mapping_edit)
        self.connect_button = QtWidgets.QPushButton("Connect")
        self.connect_button.clicked.connect(self._connect_clicked)
        dl.addRow(self.connect_button)
        fly = QtWidgets.QHBoxLayout()
        self.takeoff_button = QtWidgets.QPushButton("Take off (T)")
        self.takeoff_button.clicked.connect(self.takeoff)
        self.land_button = QtWidgets.QPushButton("Land (L)")
        self.land_button.clicked.connect(self.land)
        fly.addWidget(self.takeoff_button)
        fly.addWidget(self.land_button)
        dl.addRow(fly)
        self.emergency_button = QtWidgets.QPushButton("EMERGENCY\n(Space)")
        self.emergency_button.setMinimumHeight(64)
        self.emergency_button.setStyleSheet(
            "QPushButton { background: #d00000; color: white; font-size: 18px; font-weight: bold; border-radius: 6px; }"
            "QPushButton:pressed { background: #800000; }"
        )
        self.emergency_button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.emergency_button.clicked.connect(self.emergency)
        dl.addRow(self.emergency_button)
        lay.addWidget(drone)

        rec = QtWidgets.QGroupBox("Record")
        rl = QtWidgets.QFormLayout(rec)
        self.record_edit = QtWidgets.QLineEdit(self._default_record_path())
        rl.addRow(self.record_edit)
        self.record_button = QtWidgets.QPushButton("Record")
        self.record_button.setCheckable(True)
        self.record_button.toggled.connect(self._record_toggled)
        self.record_label = QtWidgets.QLabel("not recording")
        rl.addRow(self.record_button, self.record_label)
        lay.addWidget(rec)

        rp = QtWidgets.QGroupBox("Replay")
        pl = QtWidgets.QGridLayout(rp)
        self.play_button = QtWidgets.QPushButton("Pause")
        self.play_button.clicked.connect(self.toggle_pause)
        self.speed_combo = QtWidgets.QComboBox()
        for s in ("0.5", "1", "2", "5", "10", "max"):
            self.speed_combo.addItem(f"{s}x", s)
        self._select(self.speed_combo, "1")
        self.speed_combo.currentIndexChanged.connect(self._speed_changed)
        self.seek_slider = QtWidgets.QSlider(QtCore.Qt.Orientation.Horizontal)
        self.seek_slider.setRange(0, 1000)
        self.seek_slider.sliderReleased.connect(lambda: self.seek_fraction(self.seek_slider.value() / 1000.0))
        self.replay_label = QtWidgets.QLabel("-")
        pl.addWidget(self.play_button, 0, 0)
        pl.addWidget(self.speed_combo, 0, 1)
        pl.addWidget(self.seek_slider, 1, 0, 1, 2)
        pl.addWidget(self.replay_label, 2, 0, 1, 2)
        self.replay_box = rp
        lay.addWidget(rp)

        cue = QtWidgets.QGroupBox("Cued session")
        cl = QtWidgets.QFormLayout(cue)
        self.cue_list = QtWidgets.QListWidget()
        self.cue_list.setMaximumHeight(90)
        chosen = set(self.settings.cue_gestures or GESTURES)
        for g in GESTURES:
            item = QtWidgets.QListWidgetItem(g)
            item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(QtCore.Qt.CheckState.Checked if g in chosen else QtCore.Qt.CheckState.Unchecked)
            self.cue_list.addItem(item)
        cl.addRow(self.cue_list)
        self.reps_spin = QtWidgets.QSpinBox()
        self.reps_spin.setRange(1, 50)
        self.reps_spin.setValue(self.settings.cue_repetitions)
        self.cue_spin = QtWidgets.QDoubleSpinBox()
        self.cue_spin.setRange(0.5, 20)
        self.cue_spin.setValue(self.settings.cue_s)
        self.rest_spin = QtWidgets.QDoubleSpinBox()
        self.rest_spin.setRange(0.5, 30)
        self.rest_spin.setValue(self.settings.rest_s)
        self.random_check = QtWidgets.QCheckBox("random order")
        self.random_check.setChecked(self.settings.cue_random)
        cl.addRow("reps", self.reps_spin)
        cl.addRow("cue s", self.cue_spin)
        cl.addRow("rest s", self.rest_spin)
        cl.addRow(self.random_check)
        self.calibrate_check = QtWidgets.QCheckBox("calibrate the wearer from it")
        self.calibrate_check.setToolTip(
            "Optional (recognition needs no calibration): at the end, fit the wearer's own fist / wrist "
            "flexion / extension patterns from this session's held cues (choose fist and waves, 5 reps, 3 s) "
            "and keep them in their profile. Live Myo, with the Wearer field set; used from their next session."
        )
        cl.addRow(self.calibrate_check)
        self.cue_button = QtWidgets.QPushButton("Start cued session")
        self.cue_button.clicked.connect(self._cue_clicked)
        cl.addRow(self.cue_button)
        lay.addWidget(cue)

        view = QtWidgets.QGroupBox("View")
        vl = QtWidgets.QFormLayout(view)
        self.window_combo = QtWidgets.QComboBox()
        for w in WINDOWS_S:
            self.window_combo.addItem(f"{w:g} s" if w < 60 else f"{w / 60:g} min", w)
        idx = min(range(len(WINDOWS_S)), key=lambda i: abs(WINDOWS_S[i] - self.window_s))
        self.window_combo.setCurrentIndex(idx)
        self.window_combo.currentIndexChanged.connect(self._window_changed)
        self.follow_check = QtWidgets.QCheckBox("follow")
        self.follow_check.setChecked(True)
        self.follow_check.toggled.connect(self._follow_toggled)
        vl.addRow(self.window_combo, self.follow_check)
        lay.addWidget(view)

        keys = QtWidgets.QLabel(KEY_HELP)
        keys.setWordWrap(True)
        lay.addWidget(keys)
        lay.addStretch(1)
        for w in box.findChildren(QtWidgets.QPushButton) + box.findChildren(QtWidgets.QComboBox):
            w.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)  # keys stay with the demo
        return box

    @staticmethod
    def _select(combo: QtWidgets.QComboBox, key: str) -> None:
        i = combo.findData(key)
        if i >= 0:
            combo.setCurrentIndex(i)

    def _default_record_path(self) -> str:
        from platformdirs import user_data_dir

        folder = Path(self.settings.record_dir or Path(user_data_dir("emgpilot")) / "recordings")
        stem = time.strftime("session-%Y%m%d-%H%M%S")
        path, n = folder / f"{stem}.mcap", 1
        while path.exists():  # two recordings started within one second
            n += 1
            path = folder / f"{stem}-{n}.mcap"
        return str(path)

    # ------------------------------------------------------------------ session
    def spec_from_controls(self) -> SessionSpec:
        speed_text = self.speed_combo.currentData()
        source = self.source_combo.currentData()
        return SessionSpec(
            source=source,
            recording=self.recording_edit.text().strip() or None,
            seed=self.settings.seed,
            speed=math.inf if speed_text == "max" else (float(speed_text) if source == "recording" else 1.0),
            drone=self.drone_combo.currentData(),
            ip=self.ip_edit.text().strip() or "192.168.42.1",
            mapping=self.mapping_edit.text().strip() or None,
            myo_port=self.port_edit.text().strip() or None,
            upper_arm_port=self.upper_edit.text().strip() or None,
            wearer=self.wearer_edit.text().strip() or None,
        )

    def open_session(self, spec: SessionSpec) -> bool:
        """Close any running session and open ``spec``; errors are shown, never raised.

        The old session closes in the background. If it holds what ``spec`` needs (live sensors, an
        Olympe drone link; see :func:`~emgpilot.app.gui.session.exclusive_resources`), ``spec`` is
        opened when it has closed and this returns False; otherwise (replays, the simulator: seeking)
        at once."""
        self.close_session(announce=False)  # replaced: its "disconnected" would only confuse
        if self._closed or self._close_requested:
            return False
        needed = exclusive_resources(spec)
        busy = [s for s in self._closing if needed & exclusive_resources(s.spec)]
        if busy:
            self._pending_open = spec
            self._message(f"{spec.source} \u2192 {spec.drone}: opens when the previous session has closed")
            self._update_connect_button()
            return False
        self._pending_open = None
        try:
            session = Session(spec)
        except Exception as e:  # any opening failure is the user's to fix: shown, the window stays up
            # the status bar (and a screenshot's error) says why; the traceback only for -vv
            log.debug("cannot open session", exc_info=True)
            self._message(f"cannot open {spec.source}: {e}")
            return False
        self.session = session
        self.store.clear()
        calibrated = bool(session.cfg.recognition.wrist_calibration)
        note = f"calibrated for {spec.wearer}" if spec.wearer else "calibrated"
        self.signals.calibration_note = note if calibrated else ""

        self.timeline.clear_events()
        self.channels = {s.name: s.channels for s in [*session.device.streams(), *session.pipeline.output_streams]}
        from emgpilot.drone.backend import TELEMETRY_CHANNELS

        self.channels["drone_telemetry"] = TELEMETRY_CHANNELS
        self._select(self.source_combo, spec.source)
        self._select(self.drone_combo, spec.drone)
        if spec.recording:
            self.recording_edit.setText(spec.recording)
        if spec.wearer:
            self.wearer_edit.setText(spec.wearer)
        replay = self.replay_device
        self.replay_box.setEnabled(replay is not None)
        if replay is not None:
            recorded = replay.recorded_outputs()
            self.store.add(recorded, recorded=True)
            self.timeline.add([m for m in recorded if not hasattr(m, "info")], recorded=True)
            self.play_button.setText("Pause")
        self._update_connect_button()
        try:
            session.start()
        except Exception as e:  # e.g. the recording file cannot be created: shown, nothing half-open
            self.session = None
            self._close_in_background(session, announce=False)  # an Olympe connect may already be under way
            self._message(f"cannot start: {e}")
            return False
        if spec.record:  # already recording: only show it
            self.record_edit.setText(spec.record)
            self.record_button.blockSignals(True)
            self.record_button.setChecked(True)
            self.record_button.setText("Stop")
            self.record_button.blockSignals(False)
        from emgpilot.classifiers.wrist import signed_shift

        profile = session.profile
        known = (
            ""
            if profile is None
            else (
                f" (wearer {profile.name}: armband rotation {signed_shift(profile.wrist_rotation):+d} from last time)"
                if profile.wrist_rotation is not None
                else f" (wearer {profile.name}: new)"
            )
        )
        self._message(f"{spec.source} \u2192 {spec.drone}: running{known}")
        return True

    def close_session(self, announce: bool = True) -> None:
        """Detach the running session and close it on a background job (returns at once).

        Its recording is finished by the same job ("recorded ..." when done). ``announce``: say
        "disconnecting..." now and "disconnected" when done."""
        session = self.session
        if session is not None:
            self.session = None
            self._cues = None
            if self.record_button.isChecked():  # the session's close finishes the file
                self._show_not_recording("finishing the recording\u2026")
            self._close_in_background(session, announce)
            if announce:
                self._message(f"{session.spec.source} \u2192 {session.spec.drone}: disconnecting\u2026")
        self._update_connect_button()

    def _close_in_background(self, session: Session, announce: bool = True) -> None:
        """``announce``: say "disconnected" when done (not after a failed start: its error stays
        shown, nor for a session replaced by another, e.g. seeking a replay)."""
        path = session.recorder.path if session.recorder.writer is not None else None
        self._closing.append(session)
        self._jobs.append(session.close_in_background(self._report_job, payload=("session", session, path, announce)))
        self._update_connect_button()

    def _report_job(self, job: BackgroundJob) -> None:
        """The job's own thread: hand the news to the GUI thread (queued), nothing else."""
        try:
            self._job_finished.emit(job)
        except RuntimeError:  # the window is already deleted (shutdown gave up waiting): nobody to tell
            log.debug("%s finished after the window was deleted", job.what)

    def _on_job_finished(self, job: BackgroundJob) -> None:
        """GUI thread: a background close is done (idempotent: shutdown() may have reported it)."""
        if job not in self._jobs:
            return
        self._jobs.remove(job)
        self._ended = [j for j in self._ended if j.alive] + [job]
        kind, *rest = job.payload
        path = None
        if kind == "calibration":
            (wearer,) = rest
            text = f"wearer {wearer}: calibration saved; their next session uses it (reconnect to start one)"
        elif kind == "session":
            session, path, announce = rest
            self._closing.remove(session)
            text = f"{session.spec.source} \u2192 {session.spec.drone}: disconnected" if announce else ""
            if path is not None:
                text += f"; recorded {path}" if text else f"recorded {path}"
        else:
            (path,) = rest
            text = f"recorded {path}"
        if path is not None and not (self.session is not None and self.session.recorder.writer is not None):
            self.record_label.setText("not recording")
        if job.error or text:
            self._message(job.error or text)
        self._update_connect_button()
        spec = self._pending_open
        if spec is not None and not any(exclusive_resources(spec) & exclusive_resources(s.spec) for s in self._closing):
            self._pending_open = None
            self.open_session(spec)
        if self._close_requested and not self._jobs:
            self.close()  # everything is closed: now the window accepts its close event

    @property
    def closing(self) -> bool:
        """A session or a recording file is still closing in the background."""
        return bool(self._jobs)

    def _update_connect_button(self) -> None:
        """Disconnect while a session runs; disabled while an old one closes (Connect afterwards)."""
        if self.session is not None:
            text, enabled = "Disconnect", True
        elif self._closing or self._pending_open is not None:
            text, enabled = "Disconnecting\u2026", False
        else:
            text, enabled = "Connect", not self._close_requested
        if self.connect_button.text() != text:
            self.connect_button.setText(text)
        self.connect_button.setEnabled(enabled)

    @property
    def replay_device(self):  # -> ReplaySource | None
        from emgpilot.app.gui.replay import ReplaySource

        if self.session is None:
            return None
        inner = self.session.device.inner
        return inner if isinstance(inner, ReplaySource) else None

    def _connect_clicked(self) -> None:
        if self.session is not None:
            self.close_session()
            return
        if self._closing or self._close_requested:  # the button is disabled meanwhile; a queued click
            return
        self._save_settings()
        self.open_session(self.spec_from_controls())

    def _browse_recording(self) -> None:
        path, _ = QtWidgets.QFileDialog.getOpenFileName(
            self, "Open recording", "", "Recordings (*.mcap);;All files (*)"
        )
        if path:
            self.recording_edit.setText(path)
            self._select(self.source_combo, "recording")

    # ------------------------------------------------------------------ user actions
    def takeoff(self) -> None:
        if self.session is not None:
            self.session.takeoff()

    def land(self) -> None:
        if self.session is not None:
            self.session.land()

    def emergency(self) -> None:
        """Cut the motors: of the running session's drone and of any drone still closing (it may
        be landing on its way out); each on its own thread."""
        for session in [self.session, *self._closing]:
            if session is not None:
                session.emergency()
        self._message("EMERGENCY: motors cut")

    def perform(self, label: str) -> bool:
        return self.session is not None and self.session.perform(label)

    def eventFilter(self, obj: QtCore.QObject, event: QtCore.QEvent) -> bool:
        """Demo and flight keys (Space = EMERGENCY included) anywhere in the window except while
        typing in a text field; Escape leaves the field. Focus starts on the plots."""
        if event.type() != QtCore.QEvent.Type.KeyPress or not isinstance(obj, QtWidgets.QWidget):
            return False
        if obj.window() is not self or not obj.isWidgetType():
            return False
        typing = isinstance(obj, QtWidgets.QLineEdit | QtWidgets.QAbstractSpinBox)
        key = event.key()
        if typing:
            if key == QtCore.Qt.Key.Key_Escape:
                self.signals.setFocus()
                return True
            return False
        return self.handle_key(key)

    def handle_key(self, key: int) -> bool:
        """Demo and flight keys; True if the key was used."""
        if key == QtCore.Qt.Key.Key_Space:
            self.emergency()
            return True
        if key == QtCore.Qt.Key.Key_T:
            self.takeoff()
            return True
        if key == QtCore.Qt.Key.Key_L:
            self.land()
            return True
        label = DEMO_KEYS.get(key)
        if label is not None:
            if not self.perform(label):
                self._message("gesture keys need the synthetic arm as source")
            return True
        return False

    # ------------------------------------------------------------------ record
    def _record_toggled(self, on: bool) -> None:
        if self.session is None:
            if on:
                self.record_button.setChecked(False)
                self._message("connect a source before recording")
            return
        if on:
            try:
                path = self.session.start_recording(self.record_edit.text().strip() or self._default_record_path())
            except Exception as e:  # shown to the user, nothing lost
                self.record_button.blockSignals(True)
                self.record_button.setChecked(False)
                self.record_button.blockSignals(False)
                self._message(f"cannot record: {e}")
                return
            self.record_button.setText("Stop")
            self._message(f"recording to {path}")
        else:
            # detached at once (the runner writes no more to it); the file is finished on a job
            writer, path = self.session.recorder.detach()
            self._show_not_recording("not recording")
            if writer is not None:
                self.record_label.setText("finishing the file\u2026")
                self._message(f"finishing {path}\u2026")
                job = BackgroundJob(
                    writer.close, "close recording", on_done=self._report_job, payload=("recording", path)
                )
                self._jobs.append(job)
                self.record_edit.setText(self._default_record_path())

    def _show_not_recording(self, label: str) -> None:
        self.record_button.blockSignals(True)
        self.record_button.setChecked(False)
        self.record_button.blockSignals(False)
        self.record_button.setText("Record")
        self.record_label.setText(label)

    # ------------------------------------------------------------------ replay
    def toggle_pause(self) -> None:
        replay = self.replay_device
        if replay is None:
            return
        replay.set_paused(not replay.paused)
        self.play_button.setText("Play" if replay.paused else "Pause")

    def _speed_changed(self) -> None:
        replay = self.replay_device
        if replay is not None:
            text = self.speed_combo.currentData()
            replay.set_speed(math.inf if text == "max" else float(text))

    def seek_fraction(self, fraction: float) -> None:
        replay = self.replay_device
        if replay is not None:
            self.seek(fraction * replay.duration_s)

    def seek(self, t_rel: float) -> None:
        """Jump to ``t_rel`` s into the recording: the pipeline re-runs from the start up to it."""
        if self.session is None or self.replay_device is None:
            return
        paused = self.replay_device.paused
        spec = self.session.spec
        # a new session from the same spec: no new recording (it would overwrite) nor take-off
        spec = SessionSpec(**{**spec.__dict__, "start_at": max(0.0, t_rel), "record": None, "takeoff": False})
        if self.open_session(spec) and paused:
            self.toggle_pause()

    # ------------------------------------------------------------------ cues
    def cue_plan_from_controls(self) -> CuePlan:
        gestures = tuple(
            self.cue_list.item(i).text()
            for i in range(self.cue_list.count())
            if self.cue_list.item(i).checkState() == QtCore.Qt.CheckState.Checked
        )
        return CuePlan(
            gestures=gestures,
            repetitions=self.reps_spin.value(),
            cue_s=self.cue_spin.value(),
            rest_s=self.rest_spin.value(),
            random_order=self.random_check.isChecked(),
            seed=int(time.time()) % 100000,
        )

    def _cue_clicked(self) -> None:
        if self._cues is not None:
            self.stop_cues()
            return
        try:
            plan = self.cue_plan_from_controls()
        except ValueError as e:
            self._message(str(e))
            return
        self.start_cues(plan)

    def start_cues(self, plan: CuePlan) -> bool:
        if self.session is None:
            self._message("connect a source before a cued session")
            return False
        self._calibrate_for = None
        if self.calibrate_check.isChecked():
            problem = self._calibration_problem()
            if problem:
                self._message(problem)
                return False
            self._calibrate_for = self.wearer_edit.text().strip()
        self._cues = CueSequencer(plan)
        self.session.start_cues(self._cues, keep_emg=self._calibrate_for is not None)
        self.cue_result = ""
        self.cue_button.setText("Stop cued session")
        return True

    def _calibration_problem(self) -> str:
        """Why the running session cannot calibrate its wearer ("" if it can)."""
        from emgpilot.wearer import PROFILE_SOURCES, ProfileError, check_name

        wearer = self.wearer_edit.text().strip()
        if not wearer:
            return "to calibrate, enter the wearer's name in the Wearer field"
        try:
            check_name(wearer)
        except ProfileError as e:
            return str(e)
        if self.session is None or self.session.spec.source not in PROFILE_SOURCES:
            return "a calibration is kept for a live Myo wearer: connect the Myo (source myo) first"
        return ""

    def _calibrate_in_background(self, wearer: str) -> None:
        """Fit and save the wearer's calibration from the cued session that just ended, off the GUI thread."""
        from emgpilot.wearer import configured_arm, save_calibration

        assert self.session is not None and self._cues is not None
        session = self.session
        messages = session.take_cued_emg(self._cues)

        def calibrate() -> None:
            calibration = session.cued_calibration(messages)
            save_calibration(wearer, calibration, session.spec.profile_dir, arm=configured_arm(session.cfg))

        self._message(f"calibrating wearer {wearer}\u2026")
        self._jobs.append(
            BackgroundJob(calibrate, "calibration", on_done=self._report_job, payload=("calibration", wearer))
        )

    def stop_cues(self) -> None:
        if self.session is not None:
            self.session.stop_cues()
        self._cues = None
        self.cue_button.setText("Start cued session")
        self.cue_display.show_state(REST, "No cued session", "", False)

    def _finish_cues(self) -> None:
        assert self._cues is not None and self.session is not None
        has_imu = any(s.name == "forearm_imu" for s in self.session.device.streams())
        score = self._cues.score(has_imu=has_imu)
        rows = score_table(score)
        self.score_view.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, v in enumerate(row):
                self.score_view.setItem(r, c, QtWidgets.QTableWidgetItem(str(v)))
        acc = rows[-1][-1]
        lat = score.latency_ms()["median"]
        self.cue_result = (
            f"{score.correct}/{score.cued} correct ({acc} %), {score.false_events} false events, "
            f"median latency {lat:.0f} ms"
            if score.cued
            else "no cues scored"
        )
        self.tabs.setCurrentWidget(self.score_view)
        if self._calibrate_for is not None:
            self._calibrate_in_background(self._calibrate_for)
            self._calibrate_for = None
        self.stop_cues()
        self.cue_display.show_state(REST, f"Score: {self.cue_result}", "", False)
        self._message(f"cued session: {self.cue_result}")

    def _update_cue_display(self) -> None:
        if self._cues is None:
            return
        t = self.store.t_latest
        st = self._cues.state(t)
        if st.done:
            self._finish_cues()
            return
        if st.index == 0:
            text = "Get ready" + (f": first {st.next_label}" if st.next_label else "")
        elif st.label == REST:
            text = f"rest \u2014 next: {st.next_label}" if st.next_label else "rest"
        else:
            text = st.label.replace("_", " ").upper()
        self.cue_display.show_state(
            st.label, f"{text}  ({st.index}/{st.total})", f"{st.remaining_s:.1f} s", st.label != REST
        )

    # ------------------------------------------------------------------ view
    def _window_changed(self) -> None:
        self.window_s = float(self.window_combo.currentData())
        self.follow_check.setChecked(True)
        self.signals.follow = True

    def _follow_toggled(self, on: bool) -> None:
        self.signals.follow = on

    # ------------------------------------------------------------------ the frame
    def _timed_frame(self) -> None:
        if self._closed:
            return
        # re-armed before the work: the painting that follows this frame counts in its period
        self.timer.start(self.pacer.frame_started())
        self.frame(every_panel=False)

    def frame(self, every_panel: bool = True) -> None:
        """One GUI frame: drain the session, fill ring buffers, redraw what is visible.

        ``every_panel=False`` (the frame timer) skips scrolling panels with nothing new to show
        (see :class:`~emgpilot.app.gui.pacing.RedrawGate`); direct calls (tests, screenshots)
        redraw everything."""
        w0 = time.perf_counter()
        if self.session is not None:
            msgs = self.session.drain()
            if msgs:
                self.store.add(msgs)
            if self._cues is not None:
                self._cues.observe(self.store.new_events)
            if self.store.new_events:
                self.timeline.add(self.store.new_events)
                self.event_log.add(self.store.new_events)
                self.store.new_events = []
        self.redraw(every_panel)
        self._update_cue_display()
        self._update_record_label()
        self._frame_no += 1
        if self._frame_no % 8 == 0:  # text relayout is not free; 4 updates a second are plenty
            self._update_status()
        dt = (time.perf_counter() - w0) * 1000.0
        self.frame_stats.times_ms.append(dt)

    def redraw(self, every_panel: bool = True) -> None:
        t1 = self.store.t_latest
        if not math.isfinite(t1):
            return
        if self.signals.follow:
            x0, x1 = t1 - self.window_s, t1
            if not self.follow_check.isChecked():
                self.follow_check.setChecked(True)
        else:
            x0, x1 = self.signals.view_range()
            if self.follow_check.isChecked():
                self.follow_check.blockSignals(True)
                self.follow_check.setChecked(False)
                self.follow_check.blockSignals(False)
        # hidden panels (another tab, a minimised window) cost nothing: Qt paints only what is shown;
        # visible ones are redrawn when they moved by half a pixel or have new data to show
        version = self.store.version
        for name, panel in (("signals", self.signals), ("detectors", self.detectors), ("timeline", self.timeline)):
            if not panel.isVisible():
                self._redraw_gate.forget(name)
                continue
            if not (every_panel or self._redraw_gate.due(name, x0, x1, panel.width(), version)):
                continue
            if panel is self.signals:
                if self.signals.follow:
                    self.signals.set_x_range(x0, x1)
                self.frame_stats.points = self.signals.refresh(self.store, x0, x1)
                self.frame_stats.signal_redraws += 1
            elif panel is self.detectors:
                self.detectors.refresh(self.store, x0, x1, self.channels)
            else:
                self.timeline.refresh(x0, x1)
        telemetry = self.store.buffers.get("drone_telemetry")
        drone = "" if self.session is None else self.session.drone_status
        until = None
        recorded = self.store.recorded_buffers.get("drone_telemetry")
        if telemetry is None and recorded is not None:  # a replay without a drone: the recorded flight
            telemetry, until = recorded, self.store.t_latest
            drone = "recorded flight"
        key = (0 if telemetry is None else telemetry.count, drone, until)
        if key != self._drone_key:  # 10 Hz telemetry: redraw the map only when it moved on
            self._drone_key = key
            course = ""
            if self.session is not None and self.session.pilot is not None:
                c = getattr(self.session.pilot._backend, "course", None)
                if c is not None:
                    course = f" &nbsp; hoops {c.next_hoop}/{len(c.hoops)}"
            self.drone_view.refresh(telemetry, course, "" if "connected" in drone else drone, until=until)

    def _update_record_label(self) -> None:
        s = self.session
        if s is not None and s.recorder.writer is not None:
            text = f"\u25cf {s.recorder.elapsed_s:.1f} s"
            if text != self.record_label.text():
                self.record_label.setText(text)

    def _update_status(self) -> None:
        now = time.perf_counter()
        self._rate_hist.append((now, dict(self.store.samples)))
        parts = []
        if len(self._rate_hist) >= 2:
            (w0, s0), (w1, s1) = self._rate_hist[0], self._rate_hist[-1]
            if w1 - w0 > 0.2:
                for name in ("forearm_emg", "forearm_imu", "upper_emg"):
                    if name in s1:
                        parts.append(f"{name} {(s1[name] - s0.get(name, 0)) / (w1 - w0):.0f} Hz")
        s = self.session
        if s is not None:
            lat = list(s.latency_ms)
            if lat:
                parts.append(f"latency {statistics.median(lat):.1f} ms (max {max(lat):.0f})")
            parts.append(f"gaps {s.gaps}, dropped {s.dropped_samples} samples")
            counters = s.device_counters()
            if counters:
                text = f"device {counters.get('status', '')} dropped {counters['dropped']} packets"
                if "battery" in counters:
                    text += f", Myo battery {counters['battery']} %"
                parts.append(text)
            # the reason (a wrong port, no Myo found, a lost link) where the user looks, not in a log
            statuses = s.device_statuses()
            if not s.has_data and not s.finished:
                parts.append(f"no data yet ({describe_statuses(statuses)})" if statuses else "no data yet")
            else:
                problems = problem_statuses(statuses)
                if problems:
                    parts.append(describe_statuses(problems))
            if s.runner.error is not None:
                parts.append(f"source stopped: {s.runner.error}")
            errors = list(s.actions.errors)
            if errors:
                parts.append(f"last error: {errors[-1]}")
            replay = self.replay_device
            if replay is not None:
                pos = replay.position - replay.t_first
                self.replay_label.setText(
                    f"{pos:.1f} / {replay.duration_s:.1f} s{' (paused)' if replay.paused else ''}"
                )
                if not self.seek_slider.isSliderDown() and replay.duration_s > 0:
                    self.seek_slider.setValue(int(1000 * pos / replay.duration_s))
        for closing in self._closing:
            parts.append(f"closing: {closing.closing_stage or 'starting'}\u2026")
        ft = self.frame_stats.times_ms
        if ft:
            parts.append(f"frame {statistics.median(ft):.1f} ms")
        if math.isfinite(self.store.t_latest):
            parts.append(f"t {self.store.t_latest:.1f} s")
        self.status_label.setText("  |  ".join(parts) + (f"  |  {self._last_message}" if self._last_message else ""))

    _last_message = ""
    _frame_no = 0
    _drone_key: tuple = (-1, "", None)

    def _message(self, text: str) -> None:
        self._last_message = text
        log.info("%s", text)

    # ------------------------------------------------------------------ settings / close
    def _save_settings(self) -> None:
        if not self._persist:
            return
        st = self.settings
        st.source = self.source_combo.currentData()
        st.drone = self.drone_combo.currentData()
        st.ip = self.ip_edit.text().strip()
        st.mapping = self.mapping_edit.text().strip()
        st.recording = self.recording_edit.text().strip()
        st.myo_port = self.port_edit.text().strip()
        st.upper_arm_port = self.upper_edit.text().strip()
        st.wearer = self.wearer_edit.text().strip()
        st.window_s = self.window_s
        st.cue_gestures = [
            self.cue_list.item(i).text()
            for i in range(self.cue_list.count())
            if self.cue_list.item(i).checkState() == QtCore.Qt.CheckState.Checked
        ]
        st.cue_repetitions = self.reps_spin.value()
        st.cue_s = self.cue_spin.value()
        st.rest_s = self.rest_spin.value()
        st.cue_random = self.random_check.isChecked()
        st.save(self.settings_path)

    def shutdown(self, timeout_s: float = SHUTDOWN_TIMEOUT_S) -> bool:
        """Stop the timer, close the session and wait until every background close has finished
        (idempotent). Blocking: for code after the event loop (``launch``, the benchmark, tests)
        and for :meth:`closeEvent` once nothing is left to wait for. True if all closed in time."""
        if not self._closed:
            self._closed = True
            self.timer.stop()
            if self._keys_filter_installed:
                app = QtWidgets.QApplication.instance()
                if app is not None:
                    app.removeEventFilter(self)
                self._keys_filter_installed = False
            self._save_settings()
        self.close_session()
        self._pending_open = None
        deadline = time.monotonic() + timeout_s
        for job in list(self._jobs):
            if job.join(max(0.0, deadline - time.monotonic())):
                self._on_job_finished(job)  # its queued signal may never be delivered now
            else:
                log.error("%s did not finish within %.0f s; exiting without it", job.what, timeout_s)
        for job in self._ended:  # done and reported: at most returning from their last line
            job.join(max(0.0, deadline - time.monotonic()))
        self._ended = [j for j in self._ended if j.alive]
        return not self._jobs

    def closeEvent(self, event: QtGui.QCloseEvent) -> None:
        """Closing the window returns at once: the session closes in the background while the
        window stays up (status "closing: ...", EMERGENCY still live); the close is refused until
        then and done again by :meth:`_on_job_finished`, so the application cannot quit first."""
        if not self._closed:
            self._pending_open = None
            self.close_session()
            if self._jobs:
                if not self._close_requested:
                    self._save_settings()  # now, as the user asked to close (again at shutdown)
                self._close_requested = True
                self._update_connect_button()
                self._message("closing the window once the session has closed\u2026")
                self._update_status()
                event.ignore()
                return
        self.shutdown()  # nothing left to wait for (at most a job's thread ending its last line)
        super().closeEvent(event)


def demo_spec(
    seed: int = 0, duration_s: float | None = None, scripted: bool = False, speed: float = 1.0
) -> SessionSpec:
    """Demo mode: synthetic arm (resting until keys are pressed) and the simulator taking off by itself."""
    return SessionSpec(
        source="synthetic",
        seed=seed,
        speed=speed,
        drone="sim",
        duration_s=duration_s,
        demo_idle=True,
        script=DEMO_SCRIPT if scripted else (),
        auto_takeoff_s=None if scripted else 1.0,
    )
