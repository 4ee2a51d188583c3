"""A flight session for the GUI: device, pipeline, pilot and cues on their own threads.

Nothing here imports Qt. The GUI owns one :class:`Session` at a time and only

* calls :meth:`Session.drain` from its frame timer (a deque filled by the runner thread),
* queues user actions (take off, land, emergency, connect) to a small action thread,
* asks the synthetic arm to perform a gesture (thread-safe, returns at once).

So the GUI thread never waits on device or drone I/O: the device is read by the
:class:`~emgpilot.signals.runner.SessionRunner` thread, the drone is driven by the pilot inside
that thread (simulator) or by the backend's own threads (Olympe), and blocking drone calls such as
``connect`` run on the action thread. Closing is blocking work too (joining those threads, landing
and closing the drone link, finishing the recording file): the GUI runs :meth:`Session.close` and
a recording's ``close`` on a :class:`BackgroundJob` each and hears back when they are done.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emgpilot.app.gui.cues import CueSequencer
from emgpilot.classifiers.calibration import is_forearm_emg
from emgpilot.signals.device import Device
from emgpilot.signals.streams import Chunk, CueEvent, GapEvent, Message, StreamInfo

log = logging.getLogger(__name__)

SOURCES = ("synthetic", "myo", "myoware", "recording")
DRONE_ACTIONS = frozenset({"takeoff", "land", "emergency"})
DRONES = ("none", "sim", "virtual", "bebop")
CONNECTING = "connecting..."
""":attr:`Session.drone_status` while an Olympe drone connects (on the action thread)."""
JOIN_TIMEOUT_S = 5.0
"""How long closing a session waits for each of its threads (runner, actions, each EMERGENCY)
before it logs the thread as stuck and goes on closing the rest."""

DEMO_SCRIPT: tuple[tuple[float, str], ...] = (
    (1.0, "takeoff"),
    (4.0, "fist"),
    (7.0, "fist"),
    (10.0, "fist"),
    (13.0, "wave_up"),
    (16.0, "fist"),
    (19.0, "rotate_ccw"),
    (22.0, "fist"),
    (25.0, "wave_right"),
    (28.0, "stiffen"),
)
"""What the scripted demo does (data time, action): used for the screenshot and tests. A wave that
needs the thumb up comes 6 s after the rotation: the forearm turns back, then to thumb up (3 s
left too little time, and the wave was read with the palm still down)."""


@dataclass
class SessionSpec:
    """What to open. ``speed`` is data seconds per wall second (synthetic arm, recording)."""

    source: str = "synthetic"
    recording: str | None = None
    seed: int = 0
    speed: float = 1.0
    drone: str = "sim"
    ip: str = "192.168.42.1"
    mapping: str | None = None
    config: str | None = None
    duration_s: float | None = None
    myo_port: str | None = None
    upper_arm_port: str | None = None
    demo_idle: bool = True
    """Synthetic arm rests until told (keys); False: a random gesture schedule."""
    script: tuple[tuple[float, str], ...] = ()
    """Scripted actions in data time (gesture labels or takeoff/land/emergency)."""
    start_at: float = 0.0
    """Recording: fast-forward (pipeline included) to this data time, then play."""
    auto_takeoff_s: float | None = None
    """Simulator: take off by itself at this data time (demo mode)."""
    record: str | None = None
    """Start recording to this file at once."""
    takeoff: bool = False
    """Take off as soon as the drone is connected (the command line's explicit ``--takeoff``)."""
    manual: bool = False
    """No runner thread: the caller steps the session with :meth:`Session.advance` (tests, benchmarks)."""
    wearer: str | None = None
    """Wearer profile name: the session starts from what it remembers and updates it on close."""
    profile_dir: str | None = None
    """Folder of the wearer profiles (None: the user's data folder)."""
    extra: dict[str, Any] = field(default_factory=dict)


class TimedDevice:
    """Wraps a device: stamps when each read returned (processing latency), can drop its cues."""

    def __init__(self, inner: Device) -> None:
        self.inner = inner
        self.name = inner.name
        self.read_wall = 0.0
        self.drop_cues = False

    def streams(self) -> list[StreamInfo]:
        return self.inner.streams()

    def info(self) -> dict[str, Any]:
        return self.inner.info()

    def start(self) -> None:
        self.inner.start()

    def stop(self) -> None:
        self.inner.stop()

    @property
    def finished(self) -> bool:
        return self.inner.finished

    def read(self, timeout: float | None = None) -> list[Message]:
        msgs = self.inner.read(timeout)
        self.read_wall = time.perf_counter()
        if self.drop_cues:
            msgs = [m for m in msgs if not isinstance(m, CueEvent)]
        return msgs


class RecorderSwitch:
    """The runner's recorder: forwards to the current writer (if any); can be switched live."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.writer: Any | None = None
        self.path: Path | None = None
        self.t_first: float | None = None
        self.t_last: float | None = None

    def write(self, msgs: list[Message]) -> None:
        with self._lock:
            if self.writer is None or not msgs:
                return
            self.writer.write(msgs)
            for m in msgs:
                t = m.t_end if isinstance(m, Chunk) else float(m.t)
                if math.isfinite(t):
                    self.t_first = t if self.t_first is None else self.t_first
                    self.t_last = t if self.t_last is None else max(self.t_last, t)

    def start(self, writer: Any, path: Path) -> None:
        with self._lock:
            self.writer, self.path, self.t_first, self.t_last = writer, path, None, None

    def detach(self) -> tuple[Any | None, Path | None]:
        """Stop writing at once; the caller closes the returned writer (file I/O: off the GUI thread).

        A ``write`` in progress holds the lock, so none is still writing to it on return."""
        with self._lock:
            writer, path = self.writer, self.path
            self.writer = None
        return writer, path

    def stop(self) -> Path | None:
        """Stop writing and close the file (blocking)."""
        writer, path = self.detach()
        if writer is not None:
            writer.close()
        return path

    @property
    def elapsed_s(self) -> float:
        """Data seconds recorded so far."""
        if self.t_first is None or self.t_last is None:
            return 0.0
        return self.t_last - self.t_first


class ActionThread:
    """Runs user actions (drone connect, take off, ...) off the GUI thread, in order."""

    def __init__(self) -> None:
        self._q: queue.Queue[Callable[[], Any] | None] = queue.Queue()
        self.errors: deque[str] = deque(maxlen=50)
        self._thread = threading.Thread(target=self._loop, name="gui-actions", daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], Any], what: str = "action") -> None:
        self._q.put(lambda: self._guard(fn, what))

    def _guard(self, fn: Callable[[], Any], what: str) -> None:
        try:
            fn()
        except Exception as e:  # reported in the window's status; the thread keeps serving
            log.exception("%s failed", what)
            self.errors.append(f"{what}: {e}")

    def _loop(self) -> None:
        while True:
            fn = self._q.get()
            if fn is None:
                return
            fn()

    def close(self, timeout: float = JOIN_TIMEOUT_S) -> None:
        self._q.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("GUI action thread did not stop within %.1f s", timeout)


class BackgroundJob:
    """Runs ``fn`` once on its own thread (closing a session or a recording file).

    ``on_done(job)`` is called from that thread when ``fn`` has returned or raised (the error is
    kept in :attr:`error`, as a message for the window's status bar); it must only hand the news
    over (the window emits a queued Qt signal). ``payload`` is the caller's note of what it was.
    """

    def __init__(
        self,
        fn: Callable[[], Any],
        what: str,
        on_done: Callable[[BackgroundJob], None] | None = None,
        payload: Any = None,
    ) -> None:
        self.what = what
        self.payload = payload
        self.error: str | None = None
        self._fn = fn
        self._on_done = on_done
        self._done = threading.Event()
        # a daemon: whoever waits for the job (the window's shutdown) does so with a bound, and a
        # driver stuck for good must not keep the process alive after that
        self._thread = threading.Thread(target=self._run, name=f"gui-{what.replace(' ', '-')}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._fn()
        except Exception as e:  # reported by the window; closing the rest went on inside fn
            log.exception("%s failed", self.what)
            self.error = f"{self.what}: {e}"
        finally:
            self._done.set()
            if self._on_done is not None:
                self._on_done(self)

    @property
    def done(self) -> bool:
        """``fn`` has returned (the thread may still be finishing ``on_done``)."""
        return self._done.is_set()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end (blocking: not on the GUI thread while the window runs).
        True if it ended."""
        self._thread.join(timeout)
        return not self._thread.is_alive()


def exclusive_resources(spec: SessionSpec) -> frozenset[str]:
    """What a session holds that a second session could not open at the same time: the live
    sensors' serial ports and an Olympe drone link. A new session that needs one of these waits
    until the old session has closed; replays and the simulator never wait."""
    held = set()
    if spec.source in ("myo", "myoware"):
        held.add("live sensors")
    if spec.drone in ("virtual", "bebop"):
        held.add("olympe drone link")
    return frozenset(held)


def open_device(spec: SessionSpec) -> Device:
    """The source device for ``spec`` (raises ValueError/DeviceError/RecordingError with a clear message)."""
    if spec.source == "synthetic":
        from emgpilot.signals.synthetic import Schedule, SyntheticArm
        from emgpilot.signals.synthetic_model import DEFAULT_PERFORM_OTHER_S, DEFAULT_PERFORM_S

        schedule = Schedule.idle() if spec.demo_idle else None
        gestures = [(t, a) for t, a in spec.script if a not in DRONE_ACTIONS]
        if gestures:
            # scripted gestures belong to the arm's own schedule: exact data times whatever the pacing
            items = [(t, DEFAULT_PERFORM_S.get(a, DEFAULT_PERFORM_OTHER_S), a) for t, a in gestures]
            schedule = Schedule.scripted(items, end_s=spec.duration_s)
        return SyntheticArm(seed=spec.seed, speed=spec.speed, schedule=schedule, duration_s=spec.duration_s)
    if spec.source == "recording":
        from emgpilot.app.gui.replay import ReplaySource

        if not spec.recording:
            raise ValueError("choose a recording to replay")
        return ReplaySource(spec.recording, speed=spec.speed, start_at=spec.start_at, duration_s=spec.duration_s)
    if spec.source in ("myo", "myoware"):
        from emgpilot.signals.myo import open_live_arm

        if spec.source == "myoware":
            from emgpilot.signals.myoware import MyoWareConfig, MyoWareDevice

            if not spec.upper_arm_port:
                raise ValueError("MyoWare: give the microcontroller's serial port")
            return MyoWareDevice(spec.upper_arm_port, MyoWareConfig.for_channels(2))
        return open_live_arm(spec.myo_port, spec.upper_arm_port)
    raise ValueError(f"unknown source {spec.source!r} (choose from {', '.join(SOURCES)})")


class Session:
    """One running session; see the module docstring.

    Parameters
    ----------
    spec : what to open.
    device : use this device instead of opening ``spec.source`` (tests).
    """

    def __init__(self, spec: SessionSpec, device: Device | None = None) -> None:
        from emgpilot.build import build_pipeline, load_pipeline_config
        from emgpilot.signals.runner import SessionRunner
        from emgpilot.wearer import PROFILE_SOURCES, apply_profile, load_profile

        self.spec = spec
        self.cfg = load_pipeline_config(spec.config)
        self.profile = None
        if spec.wearer and spec.source in PROFILE_SOURCES:
            self.profile = load_profile(spec.wearer, spec.profile_dir)
        elif spec.wearer:
            log.info("wearer %s: profiles are for live Myo sessions, not used with %s", spec.wearer, spec.source)
        if self.profile is not None:
            self.cfg = apply_profile(self.cfg, self.profile, spec.profile_dir)
        self.device = TimedDevice(device if device is not None else open_device(spec))
        self.pipeline = build_pipeline(self.device.streams(), self.cfg)
        self.recorder = RecorderSwitch()
        self.actions = ActionThread()
        self._emergency_threads: list[threading.Thread] = []
        self._emergency_lock = threading.Lock()
        self._close_started = False
        self._closed = False
        self.closing_stage = ""
        """What :meth:`close` is waiting on (shown in the window's status bar while it closes)."""
        self.pilot: Any | None = None
        self._virtual: Any | None = None
        self.drone_status = "no drone"
        self.cues: CueSequencer | None = None
        self._cue_emg: list[Message] | None = None  # forearm EMG of a cued session that calibrates
        self._cue_lock = threading.Lock()
        self._queue: deque[list[Message]] = deque()
        self.latency_ms: deque[float] = deque(maxlen=256)
        self.data_time = float("-inf")
        self.gaps = 0
        self.dropped_samples = 0
        # gestures of a script are compiled into the synthetic arm's schedule (see open_device)
        self._script = sorted((t, a) for t, a in spec.script if a in DRONE_ACTIONS)
        self._script_pos = 0
        self._auto_takeoff = spec.auto_takeoff_s
        try:
            self._open_drone()
        except Exception:
            if self.pilot is not None:
                self.pilot.cancel_connect()
            self.actions.close()
            raise
        self.runner = SessionRunner(self.device, self.pipeline, recorder=self.recorder, sinks=[self._sink])
        self._started = False

    # ------------------------------------------------------------------ lifecycle
    @property
    def arm(self) -> Any | None:
        """The synthetic arm, if the source is one (demo keys, cue sessions)."""
        from emgpilot.signals.synthetic import SyntheticArm

        return self.device.inner if isinstance(self.device.inner, SyntheticArm) else None

    def start(self) -> None:
        """Start recording (``spec.record``), queue the take-off (``spec.takeoff``), then the data."""
        if self.spec.record:
            # the command line already refused an existing file unless told to replace it
            self.start_recording(self.spec.record, overwrite=True)
        if self.spec.takeoff:
            self.takeoff()  # queued behind the drone connection (refused with a reason if it failed)
        self._started = True
        if self.spec.manual:
            self.device.start()
        else:
            self.runner.start_thread()

    def advance(self, seconds: float) -> float:
        """Manual mode: run the device and pipeline for ``seconds`` of data time in this thread.

        Returns the data time reached. With the synthetic arm at speed ``max`` every step is
        deterministic, so a test knows exactly when a key press happens in data time.
        """
        if not self.spec.manual:
            raise RuntimeError("advance() is for manual sessions; this one runs its own thread")
        target = (self.data_time if math.isfinite(self.data_time) else 0.0) + seconds
        while not self.runner.done and (not math.isfinite(self.data_time) or self.data_time < target - 1e-9):
            self.runner.step(timeout=0.0)
        return self.data_time

    def close(self, join_timeout_s: float | None = None) -> None:
        """Stop the runner thread, land and close the drone, close any recording (idempotent).

        Blocking (threads are joined, the drone link closes, the file is finished): the window runs
        it on a :class:`BackgroundJob`. EMERGENCY keeps working until the drone link is closed;
        threads it starts meanwhile are joined before this returns. Each thread is waited for at
        most ``join_timeout_s`` (default :data:`JOIN_TIMEOUT_S`); a stuck one is logged and left.
        Raises the first error of the drone, the recording or the virtual drone after closing the rest.
        """
        timeout = JOIN_TIMEOUT_S if join_timeout_s is None else join_timeout_s
        with self._emergency_lock:
            if self._close_started:
                return
            self._close_started = True
        errors: list[Exception] = []
        try:
            self.closing_stage = "stopping the source"
            self.runner.stop(timeout)
            if self.spec.manual:
                self.device.stop()
            self.closing_stage = "finishing drone actions"
            if self.pilot is not None:
                # A connect still in progress (Olympe waits up to 45 s) gives up at once.
                self.pilot.cancel_connect()
            self.actions.close(timeout)
            self._join_emergencies(timeout)  # pressed before closing: they reach the drone before it lands
            if self.pilot is not None:
                self.closing_stage = "landing and closing the drone link"
                try:
                    self.pilot.close()
                except Exception as e:  # closing must go on: the recorder and the virtual drone still need closing
                    log.exception("closing the drone failed")
                    errors.append(e)
            if self.profile is not None:
                from emgpilot.wearer import remember_session

                self.closing_stage = "saving the wearer profile"
                try:
                    self.profile = remember_session(self.profile, self.pipeline, self.cfg, self.spec.profile_dir)
                except OSError as e:  # reported; the recording and the virtual drone still close
                    log.exception("saving the wearer profile failed")
                    errors.append(e)
            self.closing_stage = "closing the recording"
            try:
                self.recorder.stop()
            except Exception as e:  # e.g. disk full: reported, the virtual drone still closes
                log.exception("closing the recording failed")
                errors.append(e)
            if self._virtual is not None:
                self.closing_stage = "stopping the virtual drone"
                try:
                    self._virtual.close()
                except Exception as e:
                    log.exception("stopping the virtual drone failed")
                    errors.append(e)
                self._virtual = None
        finally:
            with self._emergency_lock:
                self._closed = True  # from now on EMERGENCY has no link to reach: no new threads
            self.closing_stage = "waiting for EMERGENCY threads"
            self._join_emergencies(timeout)  # pressed while the link was closing
            self.closing_stage = "closed"
        if errors:
            raise errors[0]

    def _join_emergencies(self, timeout: float) -> None:
        with self._emergency_lock:
            threads = list(self._emergency_threads)
        for thread in threads:
            thread.join(timeout)
            if thread.is_alive():
                log.error("EMERGENCY thread did not end within %.1f s", timeout)
        with self._emergency_lock:
            self._emergency_threads = [t for t in self._emergency_threads if t.is_alive()]

    @property
    def closed(self) -> bool:
        """:meth:`close` has finished."""
        return self._closed and self.closing_stage == "closed"

    def close_in_background(
        self, on_done: Callable[[BackgroundJob], None] | None = None, payload: Any = None
    ) -> BackgroundJob:
        """:meth:`close` on its own thread; ``on_done(job)`` is called from that thread at the end."""
        return BackgroundJob(self.close, "close session", on_done=on_done, payload=payload)

    @property
    def running(self) -> bool:
        return self._started and not self.runner.done

    @property
    def finished(self) -> bool:
        return self.runner.done

    def device_statuses(self) -> dict[str, tuple[str, str]]:
        """Each device's latest ``(status, detail)`` (a copy: the runner thread updates the original)."""
        return dict(self.runner.stats.device_status)

    @property
    def has_data(self) -> bool:
        """A sample has arrived."""
        return math.isfinite(self.data_time)

    def device_counters(self) -> dict[str, Any]:
        """Driver counters for the status bar (live drivers): packets dropped, link status, battery.

        Reads counters the driver thread updates (no I/O); a composite device sums its parts.
        """
        stats = getattr(self.device.inner, "stats", None)
        if not callable(stats):
            return {}
        raw = stats()
        parts = [v for v in raw.values() if isinstance(v, dict)] or [raw]
        out: dict[str, Any] = {"dropped": sum(int(p.get("dropped", 0) or 0) for p in parts)}
        status = [str(p["status"]) for p in parts if "status" in p]
        if status:
            out["status"] = "/".join(status)
        battery = [p["battery"] for p in parts if p.get("battery") is not None]
        if battery:
            out["battery"] = battery[0]
        return out

    # ------------------------------------------------------------------ drone
    def _open_drone(self) -> None:
        kind = self.spec.drone
        if kind == "none":
            return
        from emgpilot.drone.mapper import load_mapping
        from emgpilot.drone.pilot import Pilot, open_backend

        mapping = load_mapping(self.spec.mapping)
        live = self.spec.source in ("myo", "myoware")
        clock = time.monotonic if live else None
        if kind == "sim":
            backend = open_backend("sim")
            self.pilot = Pilot(backend, mapping=mapping, clock=clock, recorder=self.recorder)
            self.pilot.connect()
            if live:  # live sensors: staleness is checked on the wall clock even when no data arrives
                self.pilot.start_watchdog()
            self.drone_status = "simulator connected"
            return
        if kind == "virtual":
            from emgpilot.drone.virtual_bebop import VirtualBebop

            self._virtual = VirtualBebop(discovery_port=0, handshake_port=0).start()
            backend = open_backend("bebop", "127.0.0.1", self._virtual.discovery_port)
        elif kind == "bebop":
            backend = open_backend("bebop", self.spec.ip)
        else:
            raise ValueError(f"unknown drone {kind!r} (choose from {', '.join(DRONES)})")
        self.pilot = Pilot(backend, mapping=mapping, clock=clock, recorder=self.recorder)
        self.drone_status = CONNECTING

        def connect() -> None:
            assert self.pilot is not None
            ok = self.pilot.connect()
            reason = getattr(backend, "last_error", None) or "did not answer"
            self.drone_status = "connected" if ok else f"{kind} at {self.spec.ip}: {reason}"
            if ok and live:
                self.pilot.start_watchdog()

        self.actions.submit(connect, f"connect {kind}")

    def takeoff(self) -> None:
        if self.pilot is not None:
            pilot = self.pilot
            self.actions.submit(lambda: pilot.takeoff("gui"), "take off")

    def land(self) -> None:
        if self.pilot is not None:
            pilot = self.pilot
            self.actions.submit(lambda: pilot.land("gui"), "land")

    def emergency(self) -> None:
        """Cut the motors. Not through the action queue: a 45 s Olympe connect or a take-off
        waiting there must never hold up the panic button (nor may the GUI thread wait)."""
        if self.pilot is not None:
            pilot = self.pilot
            with self._emergency_lock:  # while closing too: until the link is closed it still reaches the drone
                if self._closed:
                    log.error("EMERGENCY not sent: the session (and its drone link) is closed")
                    return
                thread = threading.Thread(
                    target=ActionThread._guard,
                    args=(self.actions, lambda: pilot.emergency("gui"), "emergency"),
                    name="gui-emergency",
                    daemon=True,
                )
                thread.start()
                self._emergency_threads.append(thread)

    def perform(self, label: str) -> bool:
        """Demo keys: the synthetic arm performs ``label`` now (False if the source is not one)."""
        arm = self.arm
        if arm is None:
            return False
        arm.perform(label)
        return True

    # ------------------------------------------------------------------ recording
    def start_recording(self, path: str | Path, overwrite: bool = False) -> Path:
        """Record every stream to ``path`` from now on; an existing file is refused unless
        ``overwrite`` (:class:`~emgpilot.signals.recording.RecordingError`)."""
        from emgpilot.classifiers.calibration import calibration_metadata
        from emgpilot.config import to_mapping
        from emgpilot.drone.pilot import PILOT_STREAMS
        from emgpilot.signals.recording import RecordingWriter
        from emgpilot.signals.streams import EVENT_STREAMS

        path = Path(path)
        streams = [*self.device.streams(), *self.pipeline.output_streams]
        if self.pilot is not None:
            streams += list(PILOT_STREAMS)
        if not any(s.name == "cue" for s in streams):
            streams.append(EVENT_STREAMS["cue"])
        writer = RecordingWriter(
            path,
            streams=streams,
            metadata={
                "device": self.device.info(),
                "pipeline_config": to_mapping(self.cfg),
                "command": "gui",
                **calibration_metadata(self.cfg),
            },
            overwrite=overwrite,
        )
        self.recorder.start(writer, path)
        return path

    def stop_recording(self) -> Path | None:
        """Stop and close the recording (blocking; the window uses :meth:`RecorderSwitch.detach`)."""
        return self.recorder.stop()

    # ------------------------------------------------------------------ cued session
    def start_cues(self, sequencer: CueSequencer, keep_emg: bool = False) -> None:
        """Run a cued session: its cues become the ground truth (the device's own cues are dropped).
        With ``keep_emg`` the session keeps its forearm EMG for :meth:`cued_calibration`."""
        with self._cue_lock:
            self._cue_emg = [] if keep_emg else None
        self.device.drop_cues = True
        self.cues = sequencer

    def stop_cues(self) -> None:
        self.cues = None
        self.device.drop_cues = False

    def take_cued_emg(self, sequencer: CueSequencer) -> list[Message]:
        """The forearm EMG kept during ``sequencer``'s session with its cues, once (then forgotten)."""
        with self._cue_lock:
            emg, self._cue_emg = self._cue_emg or [], None
        return [*emg, *sequencer.cues]

    def cued_calibration(self, messages: list[Message]) -> Any:
        """The wearer calibration (:mod:`emgpilot.classifiers.calibration`) made from a cued session's
        :meth:`take_cued_emg` (slow-ish: call it off the GUI thread; ``CalibrationError`` if it cannot)."""
        from emgpilot.classifiers.calibration import calibrate_with_config

        source = f"cued session {time.strftime('%Y-%m-%d %H:%M')} ({self.spec.source})"
        return calibrate_with_config(messages, self.cfg, source=source)

    # ------------------------------------------------------------------ data flow
    def _sink(self, batch: list[Message]) -> None:
        """Runner thread: pilot, scripted actions, cues; then hand everything to the GUI."""
        t = self.data_time
        for m in batch:
            if isinstance(m, Chunk) and len(m):
                t = max(t, m.t_end)
            elif isinstance(m, GapEvent):
                self.gaps += 1
                if math.isfinite(m.t_resume):
                    rate = next((s.rate_hz for s in self.device.streams() if s.name == m.source_stream), 0.0)
                    self.dropped_samples += round((m.t_resume - m.t) * rate)
        self.data_time = t
        extra: list[Message] = []
        self._run_script(t)
        cues = self.cues
        if cues is not None and self._cue_emg is not None:
            with self._cue_lock:
                if self._cue_emg is not None:
                    self._cue_emg.extend(m for m in batch if is_forearm_emg(m))
        if cues is not None:
            extra = cues.update(t, self.arm)
            if extra:
                self.recorder.write(extra)
        if self.pilot is not None:
            self.pilot.process(batch)
        self.latency_ms.append((time.perf_counter() - self.device.read_wall) * 1000.0)
        self._queue.append(batch + extra if extra else batch)

    def _run_script(self, t: float) -> None:
        if self._auto_takeoff is not None and t >= self._auto_takeoff and self.pilot is not None:
            self._auto_takeoff = None
            self.pilot.takeoff("demo")
        while self._script_pos < len(self._script) and self._script[self._script_pos][0] <= t:
            action = self._script[self._script_pos][1]
            self._script_pos += 1
            if self.pilot is not None:
                getattr(self.pilot, action)("script")

    def drain(self, max_batches: int | None = None) -> list[Message]:
        """Everything that arrived since the last call (GUI timer): device, pipeline, cues, pilot."""
        out: list[Message] = []
        n = 0
        while self._queue and (max_batches is None or n < max_batches):
            out.extend(self._queue.popleft())
            n += 1
        if self.pilot is not None:
            out.extend(self.pilot.drain())
        return out

    @property
    def pending(self) -> int:
        return len(self._queue)
