"""The safety supervisor: the only way commands reach a drone backend.

Rules, in order of precedence:

1. The emergency action (a user action) always goes straight to the backend, whatever the
   state, without waiting for any lock.
2. ``stop`` beats everything: zero velocity at once, cancelling pulses and moves.
3. Take-off and landing happen only on explicit user actions (:meth:`SafetySupervisor.takeoff`,
   :meth:`SafetySupervisor.land`); a command of that name coming from the gesture path is refused.
4. Motion is refused, and a drone in motion is made to hover, while sensor data is older than
   ``stale_after_s``, a sensor stream has a gap, a device reports itself lost, the drone link is
   down, the battery is low, or after an emergency cut.
5. Every motion command is bounded: speed (PCMD percent and pulse length), step size and turn
   angle of moves, an altitude floor and ceiling, and a horizontal geofence around home.
6. Low battery lands the drone.

Every decision is a :class:`~emgpilot.signals.streams.SafetyEvent` with its reason, and every
command actually sent is a :class:`~emgpilot.signals.streams.CommandEvent` with
``source="safety"``; both are collected in :attr:`SafetySupervisor.events`.

Time sources are explicit: ``clock`` measures sensor freshness and pulse lengths (data time in
replay and evaluation, a monotonic clock for live flights, a fake clock in tests), while event
stamps use the data time the owner sets with :meth:`SafetySupervisor.set_data_time`.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

from emgpilot.drone.backend import DroneBackend, DroneState
from emgpilot.drone.commands import MOTION_COMMANDS, STOP, USER_ACTIONS, is_move, is_pulse
from emgpilot.signals.streams import CommandEvent, Event, SafetyEvent

log = logging.getLogger(__name__)

# Device statuses (emgpilot.signals.serialio / myo) that mean "no trustworthy data" and those
# that end it; anything else is only logged.
LOST_STATUSES = frozenset(
    {"lost", "silent", "disconnected", "stopped", "searching", "scanning", "connecting", "error", "failed"}
)
OK_STATUSES = frozenset({"connected", "reconnected", "resumed", "ok", "streaming"})


@dataclass
class SafetyConfig:
    """Limits the supervisor enforces on every command (metres, seconds, percent, degrees)."""

    stale_after_s: float = 0.3
    max_speed_percent: int = 50
    max_pulse_s: float = 3.0
    max_step_m: float = 2.0
    max_turn_deg: float = 180.0
    altitude_floor_m: float = 0.3
    altitude_ceiling_m: float = 3.0
    geofence_radius_m: float = 20.0
    low_battery_percent: float = 15.0


class ManualClock:
    """A clock that only moves when told to: data time in replay/evaluation, fake time in tests."""

    def __init__(self, t: float = 0.0) -> None:
        self.t = float(t)

    def __call__(self) -> float:
        return self.t

    def set(self, t: float) -> None:
        if t > self.t:
            self.t = float(t)


class SafetySupervisor:
    """Sits between the mapper (and the user's buttons) and a :class:`DroneBackend`.

    Parameters
    ----------
    backend : the drone; nothing else may call it.
    cfg : limits.
    clock : time source for freshness and pulse lengths (default: a :class:`ManualClock`).
    require_sensors : refuse motion until sensor data has been seen at least once.
    """

    def __init__(
        self,
        backend: DroneBackend,
        cfg: SafetyConfig | None = None,
        clock: Callable[[], float] | None = None,
        require_sensors: bool = True,
    ) -> None:
        self._backend = backend
        self.cfg = cfg or SafetyConfig()
        self.clock: Callable[[], float] = clock if clock is not None else ManualClock()
        self.require_sensors = require_sensors
        self.events: list[Event] = []
        self._lock = threading.RLock()
        self._data_time: float | None = None
        self._last_seen: dict[str, float] = {}
        self._gaps: dict[str, str] = {}
        self._lost_devices: dict[str, str] = {}
        self._pulse_end: float | None = None
        self._pulse_command = ""
        self._hold: str | None = None
        self._emergency_latched = False
        self._low_battery = False
        self._link_down = False
        self._ceiling_hold = False
        self._fence_hold = False
        self._closed_reason: str | None = None

    @property
    def backend_name(self) -> str:
        return self._backend.name

    # ------------------------------------------------------------------ bookkeeping
    def set_data_time(self, t: float) -> None:
        """Data time used to stamp events (the owner keeps it current)."""
        self._data_time = float(t)

    def _stamp(self) -> float:
        return self._data_time if self._data_time is not None else float(self.clock())

    def _decide(self, action: str, reason: str) -> None:
        ev = SafetyEvent(t=self._stamp(), action=action, reason=reason)
        self.events.append(ev)
        log.info("safety: %s (%s)", action, reason)

    def _sent(self, command: str, args: dict[str, float], source: str = "safety") -> CommandEvent:
        ev = CommandEvent(t=self._stamp(), command=command, args=dict(args), source=source)
        self.events.append(ev)
        return ev

    def drain(self) -> list[Event]:
        """Events since the last call (safety decisions and commands sent)."""
        with self._lock:
            out, self.events = self.events, []
        return out

    # ------------------------------------------------------------------ sensor health
    def sensor_seen(self, stream: str) -> None:
        """Fresh data of ``stream`` arrived now (by :attr:`clock`)."""
        with self._lock:
            self._last_seen[stream] = float(self.clock())
            self._gaps.pop(stream, None)

    def sensor_gap(self, stream: str, reason: str = "") -> None:
        """Samples of ``stream`` are missing (a GapEvent): hold until data resumes."""
        with self._lock:
            self._gaps[stream] = reason or "gap"
            self.tick()

    def device_status(self, device: str, status: str, detail: str = "") -> None:
        """A device status change (a StatusEvent): a lost device means hover."""
        with self._lock:
            if status in LOST_STATUSES:
                self._lost_devices[device] = f"{status}{': ' + detail if detail else ''}"
            elif status in OK_STATUSES:
                self._lost_devices.pop(device, None)
            self.tick()

    def _sensor_problem(self) -> str | None:
        now = float(self.clock())
        if self._lost_devices:
            dev, why = sorted(self._lost_devices.items())[0]
            return f"device {dev} {why}"
        if self._gaps:
            stream, why = sorted(self._gaps.items())[0]
            return f"sensor stream {stream} has a gap ({why})"
        if not self._last_seen:
            return "no sensor data yet" if self.require_sensors else None
        stream, seen = min(self._last_seen.items(), key=lambda kv: kv[1])
        age = now - seen
        if age > self.cfg.stale_after_s:
            return (
                f"sensor data stale: {stream} is {age * 1000:.0f} ms old (limit {self.cfg.stale_after_s * 1000:.0f} ms)"
            )
        return None

    def hold_reason(self) -> str | None:
        """Why motion is refused right now (None: motion allowed)."""
        with self._lock:
            return self._hold_reason(self._backend.state())

    def _hold_reason(self, state: DroneState) -> str | None:
        if self._closed_reason is not None:
            return f"drone link closed ({self._closed_reason})"
        if self._emergency_latched:
            return "emergency cut active (take off again to clear)"
        if state.link != "connected":
            return f"drone link {state.link}"
        if self._low_battery:
            return f"battery low ({state.battery:.0f} % <= {self.cfg.low_battery_percent:.0f} %)"
        return self._sensor_problem()

    # ------------------------------------------------------------------ user actions
    def takeoff(self, source: str = "user") -> bool:
        """Explicit user action: take off. Refused if the link is down or the battery low."""
        with self._lock:
            if self._closed_reason is not None:
                self._decide("refuse_takeoff", f"drone link closed ({self._closed_reason})")
                return False
            state = self._backend.state()
            if state.link != "connected":
                self._decide("refuse_takeoff", f"drone link {state.link}")
                return False
            if state.battery <= self.cfg.low_battery_percent:
                self._decide("refuse_takeoff", f"battery {state.battery:.0f} % <= {self.cfg.low_battery_percent:.0f} %")
                return False
            if state.flying_state != "landed":
                self._decide("refuse_takeoff", f"drone is {state.flying_state}")
                return False
            self._emergency_latched = False
            self._low_battery = False
            self._clear_pulse()
            self._backend.takeoff()
            self._sent("takeoff", {}, source=f"user:{source}")
            self._decide("takeoff", f"user action ({source})")
            return True

    def land(self, source: str = "user") -> None:
        """Explicit user action: land. Always allowed."""
        with self._lock:
            self._clear_pulse()
            self._backend.land()
            self._sent("land", {}, source=f"user:{source}")
            self._decide("land", f"user action ({source})")

    def emergency(self, source: str = "user") -> None:
        """Explicit user action: cut the motors. Reaches the backend first, without the lock."""
        try:
            self._backend.emergency()
            failed = None
        except Exception as e:  # the panic path must not die on a backend error: land instead
            failed = e
            log.exception("emergency on %s failed; trying to land", self._backend.name)
            try:
                self._backend.land()
            except Exception:
                log.exception("landing after a failed emergency also failed on %s", self._backend.name)
        with self._lock:
            self._emergency_latched = True
            self._pulse_end = None
            self._sent("emergency", {}, source=f"user:{source}")
            if failed is None:
                self._decide("emergency", f"user action ({source}): motors cut")
            else:
                self._decide("emergency_failed", f"backend refused the emergency ({failed}); landing instead")

    def close(self, reason: str = "closed") -> None:
        """The link is being closed: from now on take-off and every motion command (stop
        included) are refused, and :meth:`tick` sends nothing. Landing and :meth:`emergency`
        still reach the backend (which sends them while its link is up)."""
        with self._lock:
            if self._closed_reason is not None:
                return
            self._closed_reason = reason
            self._clear_pulse()
            self._decide("closed", f"drone link closing ({reason}): take-off and motion refused from now on")

    @property
    def closed(self) -> bool:
        return self._closed_reason is not None

    # ------------------------------------------------------------------ gesture commands
    def command(self, cmd: CommandEvent) -> CommandEvent | None:
        """A motion command from the mapper. Returns what was sent (bounded), or None if refused."""
        with self._lock:
            return self._command(cmd)

    def _command(self, cmd: CommandEvent) -> CommandEvent | None:
        name = cmd.command
        if self._closed_reason is not None:
            self._decide("refuse", f"{name}: drone link closed ({self._closed_reason})")
            return None
        if name in USER_ACTIONS:
            self._decide("refuse", f"{name} only by explicit user action, not from {cmd.source or 'a gesture'}")
            return None
        if name not in MOTION_COMMANDS:
            self._decide("refuse", f"unknown command {name!r}")
            return None
        if name == STOP:
            self._clear_pulse()
            self._backend.pcmd(0, 0, 0, 0)
            self._decide("stop", f"stop from {cmd.source or 'user'}: zero velocity")
            return self._sent(STOP, {})
        state = self._backend.state()
        if state.flying_state not in ("hovering", "flying"):
            self._decide("refuse", f"{name}: drone is {state.flying_state}")
            return None
        hold = self._hold_reason(state)
        if hold is not None:
            self._decide("refuse", f"{name}: {hold}")
            return None
        if is_move(cmd.args):
            return self._move(name, cmd.args, state)
        if is_pulse(cmd.args):
            return self._pulse(name, cmd.args, state)
        self._decide("refuse", f"{name}: arguments {sorted(cmd.args)} are neither a move nor a pulse")
        return None

    def _move(self, name: str, args: dict[str, float], state: DroneState) -> CommandEvent | None:
        cfg = self.cfg
        dx, dy, dz, dpsi = (float(args[k]) for k in ("dx", "dy", "dz", "dpsi"))
        limits: list[str] = []
        step = math.hypot(dx, dy, dz)
        if step > cfg.max_step_m:
            k = cfg.max_step_m / step
            dx, dy, dz = dx * k, dy * k, dz * k
            limits.append(f"step {step:.2f} m > {cfg.max_step_m:.2f} m")
        max_turn = math.radians(cfg.max_turn_deg)
        if abs(dpsi) > max_turn:
            limits.append(f"turn {math.degrees(abs(dpsi)):.0f} deg > {cfg.max_turn_deg:.0f} deg")
            dpsi = math.copysign(max_turn, dpsi)
        target_z = state.z - dz
        if target_z > cfg.altitude_ceiling_m:
            limits.append(f"target altitude {target_z:.2f} m above ceiling {cfg.altitude_ceiling_m:.2f} m")
            dz = state.z - cfg.altitude_ceiling_m
        elif target_z < cfg.altitude_floor_m and dz > 0:
            limits.append(f"target altitude {target_z:.2f} m below floor {cfg.altitude_floor_m:.2f} m")
            dz = max(0.0, state.z - cfg.altitude_floor_m)
        # body (forward, right) -> world (x forward-at-home, y left)
        c, s = math.cos(state.yaw), math.sin(state.yaw)
        tx, ty = state.x + dx * c + dy * s, state.y + dx * s - dy * c
        r_now, r_target = math.hypot(state.x, state.y), math.hypot(tx, ty)
        if r_target > cfg.geofence_radius_m and r_target > r_now:
            self._decide(
                "refuse",
                f"{name}: target {r_target:.1f} m from home is outside the {cfg.geofence_radius_m:.1f} m geofence",
            )
            return None
        if abs(dx) < 1e-3 and abs(dy) < 1e-3 and abs(dz) < 1e-3 and abs(dpsi) < 1e-3:
            self._decide("refuse", f"{name}: nothing left after limits ({'; '.join(limits)})")
            return None
        self._clear_pulse()
        self._backend.move_by(dx, dy, dz, dpsi)
        if limits:
            self._decide("limit", f"{name}: {'; '.join(limits)}")
        else:
            self._decide("allow", f"{name}: within limits")
        return self._sent(name, {"dx": dx, "dy": dy, "dz": dz, "dpsi": dpsi})

    def _pulse(self, name: str, args: dict[str, float], state: DroneState) -> CommandEvent | None:
        cfg = self.cfg
        limits: list[str] = []
        vals = {}
        for k in ("roll", "pitch", "yaw", "gaz"):
            v = round(float(args[k]))
            if abs(v) > cfg.max_speed_percent:
                limits.append(f"{k} {v} % beyond +-{cfg.max_speed_percent} %")
                v = int(math.copysign(cfg.max_speed_percent, v))
            vals[k] = v
        duration = float(args["duration_s"])
        if duration > cfg.max_pulse_s:
            limits.append(f"pulse {duration:.1f} s > {cfg.max_pulse_s:.1f} s")
            duration = cfg.max_pulse_s
        if vals["gaz"] > 0 and state.z >= cfg.altitude_ceiling_m - 0.05:
            limits.append(f"at the altitude ceiling {cfg.altitude_ceiling_m:.2f} m: no climb")
            vals["gaz"] = 0
        if vals["gaz"] < 0 and state.z <= cfg.altitude_floor_m + 0.05:
            limits.append(f"at the altitude floor {cfg.altitude_floor_m:.2f} m: no descent")
            vals["gaz"] = 0
        if (vals["roll"] or vals["pitch"]) and self._heading_outward(state, vals["roll"], vals["pitch"]):
            limits.append(f"at the {cfg.geofence_radius_m:.1f} m geofence: no outward motion")
            vals["roll"] = vals["pitch"] = 0
        if not any(vals.values()):
            self._decide("refuse", f"{name}: nothing left after limits ({'; '.join(limits)})")
            return None
        self._backend.pcmd(vals["roll"], vals["pitch"], vals["yaw"], vals["gaz"])
        self._pulse_end = float(self.clock()) + duration
        self._pulse_command = name
        if limits:
            self._decide("limit", f"{name}: {'; '.join(limits)}")
        else:
            self._decide("allow", f"{name}: within limits")
        return self._sent(name, {**{k: float(v) for k, v in vals.items()}, "duration_s": duration})

    def _heading_outward(self, state: DroneState, roll: int, pitch: int) -> bool:
        """True if the drone is at (or within 1 m of) the fence and would move outward."""
        r = state.distance_from_home
        if r < self.cfg.geofence_radius_m - 1.0:
            return False
        c, s = math.cos(state.yaw), math.sin(state.yaw)
        vx, vy = pitch * c + roll * s, pitch * s - roll * c
        return state.x * vx + state.y * vy > 0

    def _clear_pulse(self) -> None:
        self._pulse_end = None
        self._pulse_command = ""

    def _hover(self, reason: str) -> None:
        self._clear_pulse()
        self._backend.pcmd(0, 0, 0, 0)
        self._decide("hover", reason)
        self._sent("hover", {})

    # ------------------------------------------------------------------ periodic checks
    def tick(self) -> None:
        """Check time-dependent rules: stale sensors, pulse end, link, battery, ceiling, fence.

        Call it often (the pilot does at least every 50 ms of data time, or from a watchdog).
        """
        with self._lock:
            if self._closed_reason is not None:
                return  # nothing more goes out: the link is being closed
            state = self._backend.state()
            airborne = state.flying_state in ("hovering", "flying")
            # link (the drone's own failsafe holds it; we only report and refuse)
            link_down = state.link != "connected"
            if link_down and not self._link_down:
                self._decide("link_lost", f"drone link {state.link}: commands refused, the drone's failsafe holds it")
                self._clear_pulse()
            elif not link_down and self._link_down:
                self._decide("link_ok", "drone link connected")
            self._link_down = link_down
            # battery
            if state.battery <= self.cfg.low_battery_percent and not self._low_battery:
                self._low_battery = True
                if airborne or state.flying_state == "takingoff":
                    self._clear_pulse()
                    self._backend.land()
                    self._sent("land", {})
                    self._decide(
                        "land", f"battery {state.battery:.1f} % <= {self.cfg.low_battery_percent:.0f} %: landing"
                    )
                else:
                    self._decide("low_battery", f"battery {state.battery:.1f} %: take-off refused until charged")
            # sensors and other holds: hover on the transition into a hold
            hold = self._hold_reason(state)
            if hold is not None and self._hold is None:
                if airborne:
                    self._hover(f"hold: {hold}")
                else:
                    self._decide("hold", hold)
            elif hold is None and self._hold is not None:
                self._decide("resume", f"motion allowed again (was: {self._hold})")
            self._hold = hold
            # pulse end
            if self._pulse_end is not None and float(self.clock()) >= self._pulse_end:
                name = self._pulse_command
                self._clear_pulse()
                if airborne:
                    self._backend.pcmd(0, 0, 0, 0)
                    self._decide("pulse_end", f"{name} pulse over: hover")
                    self._sent("hover", {})
            if not airborne:
                self._ceiling_hold = self._fence_hold = False
                return
            # altitude ceiling (catches drift and pulses that overshoot)
            ceiling = self.cfg.altitude_ceiling_m
            if state.z > ceiling and not self._ceiling_hold:
                self._ceiling_hold = True
                self._clear_pulse()
                self._backend.pcmd(0, 0, 0, -20)
                self._decide("descend", f"altitude {state.z:.2f} m above the ceiling {ceiling:.2f} m")
                self._sent("descend", {"gaz": -20.0})
            elif self._ceiling_hold and state.z <= ceiling - 0.05:
                self._ceiling_hold = False
                self._backend.pcmd(0, 0, 0, 0)
                self._decide("hover", "back under the altitude ceiling")
                self._sent("hover", {})
            # geofence: moving outward at the fence -> hover
            r = state.distance_from_home
            outward = state.x * state.vx + state.y * state.vy > 0
            at_fence = r >= self.cfg.geofence_radius_m and outward and state.horizontal_speed > 0.05
            if at_fence and not self._fence_hold:
                self._hover(f"at the geofence: {r:.1f} m from home >= {self.cfg.geofence_radius_m:.1f} m")
            self._fence_hold = at_fence
