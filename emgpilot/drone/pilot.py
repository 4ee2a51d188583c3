"""The pilot: gesture events in, drone commands out, through the mapper and the safety supervisor.

A :class:`Pilot` is a sink of :class:`~emgpilot.signals.runner.SessionRunner`: it receives each
batch of messages (sensor chunks and derived events) and

* notes sensor freshness (every sensor chunk), gaps (GapEvent) and device status (StatusEvent)
  for the supervisor's staleness rule,
* maps each GestureEvent to a command and hands it to the supervisor (the only path to the
  drone: the pilot never holds the backend itself),
* advances the drone backend to the batch's data time in steps of at most ``tick_s`` and lets
  the supervisor check its time rules at each step,
* collects the CommandEvents, SafetyEvents and the ``drone_telemetry`` chunk it produced; they
  are written to ``recorder`` (if any) and kept for :meth:`Pilot.drain` (GUI, tests, benchmark).

Time: the backend always runs in data time. The supervisor's freshness clock is data time too
(``clock=None``: replay, evaluation, benchmark, tests), or a monotonic clock for a live flight, in
which case a watchdog thread (:meth:`Pilot.start_watchdog`) keeps checking while no data arrives.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from emgpilot.drone.backend import DRONE_TELEMETRY, DroneBackend, DroneState, telemetry_chunk
from emgpilot.drone.mapper import Mapper, MappingConfig
from emgpilot.drone.safety import ManualClock, SafetyConfig, SafetySupervisor
from emgpilot.signals.streams import (
    EVENT_STREAMS,
    SENSOR_STREAMS,
    Chunk,
    CommandEvent,
    Event,
    GapEvent,
    GestureEvent,
    Message,
    SafetyEvent,
    StatusEvent,
    StreamInfo,
)

log = logging.getLogger(__name__)

SENSOR_NAMES = frozenset(s.name for s in SENSOR_STREAMS)

PILOT_STREAMS: tuple[StreamInfo, ...] = (EVENT_STREAMS["command"], EVENT_STREAMS["safety"], DRONE_TELEMETRY)
"""Streams a pilot adds to a recording."""


class Pilot:
    """Flies a backend from gesture events; see the module docstring.

    Parameters
    ----------
    backend : the drone (owned by the supervisor from now on).
    mapping : gesture -> command mapping.
    safety : supervisor limits.
    clock : freshness clock (None: data time).
    recorder : optional object with ``write(msgs)`` for the pilot's own messages.
    telemetry_period_s : data-time spacing of telemetry samples.
    tick_s : largest data-time step between safety checks.
    sensor_streams : sensor stream names whose freshness matters (default: the standard sensors).
    """

    def __init__(
        self,
        backend: DroneBackend,
        mapping: MappingConfig | None = None,
        safety: SafetyConfig | None = None,
        clock: Callable[[], float] | None = None,
        recorder: Any | None = None,
        telemetry_period_s: float = 0.1,
        tick_s: float = 0.05,
        sensor_streams: Iterable[str] = SENSOR_NAMES,
    ) -> None:
        self.mapper = Mapper(mapping)
        self._data_clock = ManualClock(float("-inf"))
        self._live = clock is not None
        self.supervisor = SafetySupervisor(backend, safety, clock=clock if clock is not None else self._data_clock)
        self._backend = backend
        self.recorder = recorder
        self.telemetry_period_s = telemetry_period_s
        self.tick_s = tick_s
        self.sensor_streams = frozenset(sensor_streams)
        self.t: float | None = None
        self._next_telemetry = float("-inf")
        self._telemetry: list[DroneState] = []
        self._out: list[Message] = []
        # what the pilot produced before any data gave it a data time (a take-off ordered on the
        # command line or a button before the first sample): stamped with the first data time
        self._held: list[Event] = []
        # bounded so that a long headless flight nobody drains cannot grow without limit
        self._delivered: deque[Message] = deque(maxlen=200_000)
        self.counts: dict[str, int] = {}
        self._lock = threading.RLock()
        self._watchdog: threading.Thread | None = None
        self._watchdog_stop = threading.Event()
        self._closed = False

    # ------------------------------------------------------------------ user actions
    def takeoff(self, source: str = "user") -> bool:
        with self._lock:
            ok = self.supervisor.takeoff(source)
            self._collect()
            return ok

    def land(self, source: str = "user") -> None:
        with self._lock:
            self.supervisor.land(source)
            self._collect()

    def emergency(self, source: str = "user") -> None:
        """Reaches the backend at once, even while another thread holds the pilot's lock."""
        self.supervisor.emergency(source)
        with self._lock:
            self._collect()

    def stop(self, source: str = "user") -> None:
        """The stop command from a button or key (same path as the stiffen gesture)."""
        with self._lock:
            t = self.t if self.t is not None else 0.0
            self.supervisor.command(CommandEvent(t=t, command="stop", source=f"user:{source}"))
            self._collect()

    def connect(self) -> bool:
        """Open the drone link (call off the GUI thread for real drones).

        False without trying once :meth:`close` has been called; a connect that :meth:`close` or
        :meth:`cancel_connect` cuts short returns False too."""
        if self._closed:
            log.warning("drone connect refused: the pilot is closed")
            return False
        return bool(self._backend.connect())

    def cancel_connect(self) -> None:
        """Make a :meth:`connect` in progress on another thread give up at once (it returns
        False and leaves no link open). Any thread; nothing happens without one in progress."""
        cancel = getattr(self._backend, "cancel_connect", None)
        if cancel is not None:
            cancel()

    def state(self) -> DroneState:
        return self._backend.state()

    # ------------------------------------------------------------------ the sink
    def __call__(self, batch: list[Message]) -> None:
        self.process(batch)

    def process(self, batch: list[Message]) -> list[Message]:
        """Handle one batch from the session runner; returns the messages the pilot produced."""
        with self._lock:
            for msg in batch:
                if isinstance(msg, Chunk):
                    if msg.info.name in self.sensor_streams and len(msg):
                        self._advance(float(msg.t[0]))
                        self._seen(msg.info.name)
                        self._advance(msg.t_end)
                        self._seen(msg.info.name)
                    continue
                if isinstance(msg, GestureEvent):
                    self._advance(float(msg.t))
                    self._gesture(msg)
                # Status and gap events of live drivers are stamped by the host clock, not in data
                # time: they take effect now and never move the pilot's data time.
                elif isinstance(msg, GapEvent) and msg.source_stream in self.sensor_streams:
                    # only streams whose data clears the gap again (derived streams never do)
                    self.supervisor.sensor_gap(msg.source_stream, msg.reason)
                elif isinstance(msg, StatusEvent):
                    self.supervisor.device_status(msg.device, msg.status, msg.detail)
            return self._collect()

    def advance_to(self, t: float) -> list[Message]:
        """Advance data time without new data (end of a run, tests)."""
        with self._lock:
            self._advance(t)
            return self._collect()

    def tick(self) -> list[Message]:
        """Run the supervisor's time checks now (watchdog, GUI timer)."""
        with self._lock:
            self.supervisor.tick()
            return self._collect()

    def _seen(self, stream: str) -> None:
        self.supervisor.sensor_seen(stream)

    def _gesture(self, ev: GestureEvent) -> None:
        cmd = self.mapper.map(ev)
        if cmd is None:
            return
        if self.t is not None and cmd.t < self.t:
            cmd = CommandEvent(t=self.t, command=cmd.command, args=cmd.args, source=cmd.source)
        # what the mapper asked for is recorded too, before safety decides
        self._out.append(CommandEvent(t=cmd.t, command=cmd.command, args=cmd.args, source=f"mapper:{cmd.source}"))
        self.supervisor.command(cmd)

    def _advance(self, t: float) -> None:
        if self.t is None:
            self.t = t
            self._data_clock.set(t)
            self.supervisor.set_data_time(t)
            self._release_held(t)
            self._backend.step(t)
            self._sample(force=True)
            return
        while self.t < t:
            nxt = min(t, self.t + self.tick_s)
            self.t = nxt
            self._data_clock.set(nxt)
            self.supervisor.set_data_time(nxt)
            self._backend.step(nxt)
            self.supervisor.tick()
            self._sample()

    def _sample(self, force: bool = False) -> None:
        assert self.t is not None
        if force or self.t >= self._next_telemetry - 1e-9:
            self._telemetry.append(self._backend.state())
            base = self.t if force or self._next_telemetry == float("-inf") else self._next_telemetry
            self._next_telemetry = base + self.telemetry_period_s

    def _release_held(self, t: float) -> None:
        """Stamp what was held back with data time ``t`` and queue it ahead of everything else."""
        held, self._held = self._held, []
        self._out[:0] = [dataclasses.replace(m, t=t) for m in held]

    def _collect(self) -> list[Message]:
        produced: list[Message] = [*self._out, *self.supervisor.drain()]
        self._out = []
        if self.t is None:
            # Stamps made before the first data are not data times (-inf, or the live freshness
            # clock): hold them until the first data time is known (see _release_held).
            self._held.extend(m for m in produced if isinstance(m, Event))
            return []
        if self._telemetry:
            produced.append(telemetry_chunk(self._telemetry))
            self._telemetry = []
        if produced:
            produced.sort(key=lambda m: m.t if isinstance(m, Event) else float(m.t[0]))
            if self.recorder is not None:
                self.recorder.write(produced)
            self._delivered.extend(produced)
            for m in produced:
                if isinstance(m, CommandEvent) and m.source == "safety":
                    self.counts["commands_sent"] = self.counts.get("commands_sent", 0) + 1
                elif isinstance(m, SafetyEvent):
                    key = f"safety_{m.action}"
                    self.counts[key] = self.counts.get(key, 0) + 1
        return produced

    def summary(self) -> dict[str, Any]:
        """Counts of commands and safety decisions, final drone state, course score (simulator)."""
        s = self._backend.state()
        out: dict[str, Any] = {
            "backend": self._backend.name,
            "counts": dict(sorted(self.counts.items())),
            "final_state": {
                "flying_state": s.flying_state,
                "link": s.link,
                "battery": round(s.battery, 1),
                "x": round(s.x, 2),
                "y": round(s.y, 2),
                "z": round(s.z, 2),
            },
        }
        course = getattr(self._backend, "course", None)
        if course is not None:
            out["course"] = course.score()
        return out

    def drain(self) -> list[Message]:
        """Everything the pilot produced since the last call (for the GUI and tests)."""
        with self._lock:
            out = list(self._delivered)
            self._delivered.clear()
            return out

    # ------------------------------------------------------------------ live watchdog
    def start_watchdog(self, period_s: float = 0.05) -> None:
        """Live flights: check staleness every ``period_s`` even when no data arrives."""
        if not self._live:
            raise RuntimeError("a watchdog only makes sense with a live clock")
        if self._watchdog is not None or self._closed:
            return
        self._watchdog_stop.clear()

        def loop() -> None:
            while not self._watchdog_stop.wait(period_s):
                self.tick()

        self._watchdog = threading.Thread(target=loop, name="pilot-watchdog", daemon=True)
        self._watchdog.start()

    def close(self) -> None:
        """Cut a connect in progress short, stop the watchdog, land if airborne, close the backend.

        From the first line on, a late :meth:`connect`, :meth:`takeoff` or gesture is refused (the
        supervisor records why); :meth:`emergency` still reaches the drone while its link is up."""
        self._closed = True
        self.cancel_connect()
        self._watchdog_stop.set()
        if self._watchdog is not None:
            self._watchdog.join(2.0)
            self._watchdog = None
        with self._lock:
            if self._backend.state().airborne:
                self.supervisor.land("close")
            self.supervisor.close("pilot closed")
            self._collect()
            if self._held:  # no data ever came: the session's data time never started
                self.t = 0.0
                self._release_held(0.0)
                self._collect()
            self._backend.close()

    @property
    def closed(self) -> bool:
        """:meth:`close` has been called."""
        return self._closed


def open_backend(
    kind: str,
    ip: str = "192.168.42.1",
    discovery_port: int | None = None,
    legacy_discovery: bool = False,
    handshake_port: int | None = None,
) -> DroneBackend:
    """The backend for ``--drone``: ``sim`` (simulator with the default hoop course) or ``bebop``.

    ``legacy_discovery`` skips the JSON discovery and goes straight to the ARSDK handshake port
    (``handshake_port``, default 44444), as older Bebop 2 firmware may need (not yet verified
    on a real drone). The Olympe backend is imported only here, and only for ``bebop``.
    """
    if kind == "sim":
        from emgpilot.drone.course import Course
        from emgpilot.drone.sim import SimBackend

        return SimBackend(Course())
    if kind == "bebop":
        from emgpilot.drone.olympe_backend import OlympeBackend  # optional extra, heavy import

        kwargs: dict[str, Any] = {"ip": ip}
        if discovery_port is not None:
            kwargs["discovery_port"] = discovery_port
        if legacy_discovery:
            kwargs["legacy_discovery"] = True
        if handshake_port is not None:
            kwargs["handshake_port"] = handshake_port
        return OlympeBackend(**kwargs)
    raise ValueError(f"unknown drone backend {kind!r} (sim or bebop)")


def pilot_from_args(args: Any, recorder: Any | None = None, live: bool = False) -> Pilot:
    """A connected :class:`Pilot` for the ``run`` command's ``--drone/--ip/--discovery-port/--mapping``
    (and ``--legacy-discovery/--handshake-port``).

    ``live`` selects the monotonic freshness clock and starts the watchdog (live sensors);
    otherwise freshness is measured in data time (synthetic arm, replay).
    """
    import time

    from emgpilot.drone.mapper import load_mapping

    mapping = load_mapping(getattr(args, "mapping", None))
    backend = open_backend(
        args.drone,
        getattr(args, "ip", "192.168.42.1"),
        getattr(args, "discovery_port", None),
        legacy_discovery=getattr(args, "legacy_discovery", False),
        handshake_port=getattr(args, "handshake_port", None),
    )
    pilot = Pilot(backend, mapping=mapping, clock=time.monotonic if live else None, recorder=recorder)
    if not pilot.connect():
        backend.close()
        raise ConnectionError(f"drone {args.drone} at {getattr(args, 'ip', '')} did not answer")
    if live:
        pilot.start_watchdog()
    return pilot
