"""A flight session for the GUI: device, pipeline, pilot and cues on their own threads.

Nothing here imports Qt. The GUI owns one :class:`Session` at a time and only

* calls :meth:`Session.drain` from its frame timer (a deque filled by the runner thread),
* queues user actions (take off, land, emergency, connect) to a small action thread,
* asks the synthetic arm to perform a gesture (thread-safe, returns at once).

So the GUI thread never waits on device or drone I/O: the device is read by the
:class:`~emgpilot.signals.runner.SessionRunner` thread, the drone is driven by the pilot inside
that thread (simulator) or by the backend's own threads (Olympe), and blocking drone calls such as
``connect`` run on the action thread.
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
from emgpilot.signals.device import Device
from emgpilot.signals.streams import Chunk, CueEvent, GapEvent, Message, StreamInfo

log = logging.getLogger(__name__)

SOURCES = ("synthetic", "myo", "myoware", "recording")
DRONE_ACTIONS = frozenset({"takeoff", "land", "emergency"})
DRONES = ("none", "sim", "virtual", "bebop")

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

    def stop(self) -> Path | None:
        with self._lock:
            writer, path = self.writer, self.path
            self.writer = None
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

    def close(self, timeout: float = 5.0) -> None:
        self._q.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("GUI action thread did not stop within %.1f s", timeout)


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
        return ReplaySource(spec.recording, speed=spec.speed, start_at=spec.start_at)
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

        self.spec = spec
        self.device = TimedDevice(device if device is not None else open_device(spec))
        self.cfg = load_pipeline_config(spec.config)
        self.pipeline = build_pipeline(self.device.streams(), self.cfg)
        self.recorder = RecorderSwitch()
        self.actions = ActionThread()
        self._emergency_threads: list[threading.Thread] = []
        self.pilot: Any | None = None
        self._virtual: Any | None = None
        self.drone_status = "no drone"
        self.cues: CueSequencer | None = None
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
            self.start_recording(self.spec.record)
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

    def close(self) -> None:
        """Stop the runner thread, land and close the drone, close any recording."""
        self.runner.stop()
        if self.spec.manual:
            self.device.stop()
        self.actions.close()
        for thread in self._emergency_threads:
            thread.join(5.0)
        if self.pilot is not None:
            try:
                self.pilot.close()
            except Exception:  # closing must go on: the recorder and the virtual drone still need closing
                log.exception("closing the drone failed")
        self.recorder.stop()
        if self._virtual is not None:
            self._virtual.close()
            self._virtual = None

    @property
    def running(self) -> bool:
        return self._started and not self.runner.done

    @property
    def finished(self) -> bool:
        return self.runner.done

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
        self.drone_status = "connecting..."

        def connect() -> None:
            assert self.pilot is not None
            ok = self.pilot.connect()
            self.drone_status = "connected" if ok else f"{kind} at {self.spec.ip} did not answer"
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
    def start_recording(self, path: str | Path) -> Path:
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
            metadata={"device": self.device.info(), "pipeline_config": to_mapping(self.cfg), "command": "gui"},
        )
        self.recorder.start(writer, path)
        return path

    def stop_recording(self) -> Path | None:
        return self.recorder.stop()

    # ------------------------------------------------------------------ cued session
    def start_cues(self, sequencer: CueSequencer) -> None:
        """Run a cued session: its cues become the ground truth (the device's own cues are dropped)."""
        self.device.drop_cues = True
        self.cues = sequencer

    def stop_cues(self) -> None:
        self.cues = None
        self.device.drop_cues = False

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
