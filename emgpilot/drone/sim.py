"""A Bebop-2-like quadcopter simulator, deterministic in data time, and its backend.

:class:`DroneSim` models what matters for piloting by gestures: a velocity response with a
first-order lag whose acceleration is bounded by the maximum tilt, a maximum horizontal and
vertical speed and yaw rate, take-off to a 1 m hover in about 2-3 s, landing at a fixed descent
rate, battery drain while the motors run, and the emergency cut (motors off, the drone falls).
Its command methods mirror the ARSDK commands (TakeOff, Landing, Emergency, PCMD, moveBy) so the
virtual Bebop 2 can drive it directly; :meth:`DroneSim.pop_events` hands out the events a Bebop
would send back (FlyingStateChanged, moveByEnd).

Time only advances through :meth:`DroneSim.step`, never with the wall clock, so a simulated
flight runs inside replay and evaluation as fast as the CPU allows and is exactly repeatable.

Frames and sign conventions are those of :mod:`emgpilot.drone.backend`.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emgpilot.drone.backend import AIRBORNE_STATES, DroneState

if TYPE_CHECKING:
    from emgpilot.drone.course import Course

log = logging.getLogger(__name__)

MOVE_BY_ERRORS: tuple[str, ...] = ("ok", "unknown", "busy", "notAvailable", "interrupted")
"""ARSDK ``moveByEnd`` error enum, in order."""


@dataclass
class SimParams:
    """Physical and behavioural parameters of the simulated drone (Bebop-2-like defaults)."""

    max_tilt_deg: float = 20.0
    """Maximum roll/pitch; bounds the horizontal acceleration to g*tan(tilt)."""
    max_horizontal_speed: float = 2.0
    """Speed (m/s) at 100 % roll or pitch (an indoor setting; a Bebop 2 can do far more)."""
    max_vertical_speed: float = 1.0
    """Climb/descent speed (m/s) at 100 % gaz (Bebop default 1 m/s)."""
    max_yaw_rate_deg: float = 100.0
    """Yaw rate (deg/s) at 100 % yaw (Bebop default 100 deg/s)."""
    tau_horizontal_s: float = 0.5
    tau_vertical_s: float = 0.3
    tau_yaw_s: float = 0.15
    takeoff_altitude: float = 1.0
    takeoff_climb_speed: float = 0.6
    landing_speed: float = 0.5
    battery_drain_per_s: float = 100.0 / 1500.0
    """Percent per second with the motors running (about 25 min of flight)."""
    move_by_speed: float = 1.0
    move_by_yaw_rate_deg: float = 90.0
    move_by_tolerance_m: float = 0.05
    move_by_tolerance_deg: float = 2.0
    substep_s: float = 0.01
    gravity: float = 9.81


@dataclass(frozen=True)
class SimEvent:
    """Something the drone reports: ``flying_state`` (detail: state) or ``move_by_end``
    (detail: dx, dy, dz, dpsi, error)."""

    t: float
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


def wrap_angle(a: float) -> float:
    """Angle in (-pi, pi]."""
    return math.atan2(math.sin(a), math.cos(a))


def _approach(v: float, target: float, tau: float, a_max: float, h: float) -> float:
    """One step of a first-order lag towards ``target`` with acceleration bounded by ``a_max``."""
    accel = (target - v) / max(tau, h)
    accel = max(-a_max, min(a_max, accel))
    nxt = v + accel * h
    # never overshoot the target in one step
    if (target - v) * (target - nxt) < 0:
        nxt = target
    return nxt


class DroneSim:
    """The simulated quadcopter. All times are data time in seconds.

    Parameters
    ----------
    params : physical parameters.
    t0 : data time the simulation starts at.
    battery : starting charge (percent).
    """

    def __init__(self, params: SimParams | None = None, t0: float = 0.0, battery: float = 100.0) -> None:
        self.params = params or SimParams()
        self.t = float(t0)  # sets the integration grid (see the ``t`` property)
        self.x = self.y = self.z = 0.0
        self.yaw = 0.0
        self.vx = self.vy = self.vz = 0.0
        self.yaw_rate = 0.0
        self.roll = self.pitch = 0.0
        self.battery = float(battery)
        self.flying_state = "landed"
        self.link = "connected"
        self._pcmd = (0, 0, 0, 0, 0)  # flag, roll, pitch, yaw, gaz
        self._move: dict[str, float] | None = None
        self._events: list[SimEvent] = []

    # ------------------------------------------------------------------ ARSDK-like commands
    def takeoff(self) -> None:
        """TakeOff: only from ``landed``; climbs to the hover altitude."""
        if self.flying_state != "landed":
            log.debug("takeoff ignored in state %s", self.flying_state)
            return
        if self.battery <= 0.0:
            log.warning("takeoff refused: battery empty")
            return
        self._pcmd = (0, 0, 0, 0, 0)
        self._set_state("takingoff")

    def land(self) -> None:
        """Landing: descends at the landing speed, then the motors stop."""
        if self.flying_state in ("takingoff", "hovering", "flying"):
            self._end_move("interrupted")
            self._set_state("landing")

    def emergency(self) -> None:
        """Emergency: motors cut at once, whatever the state."""
        self._end_move("interrupted")
        self._pcmd = (0, 0, 0, 0, 0)
        if self.flying_state == "landed":
            return
        self._set_state("emergency")

    def set_pcmd(self, flag: int, roll: int, pitch: int, yaw: int, gaz: int) -> None:
        """PCMD: percent setpoints held until changed; roll/pitch only count with ``flag`` = 1.

        A PCMD with ``flag`` = 1 or any non-zero value takes over from a running moveBy
        (which ends ``interrupted``); an all-zero PCMD with ``flag`` = 1 means "hover now".
        """

        def clip(v: int) -> int:
            return int(max(-100, min(100, int(v))))

        self._pcmd = (1 if flag else 0, clip(roll), clip(pitch), clip(yaw), clip(gaz))
        if self._move is not None and (flag or yaw or gaz):
            self._end_move("interrupted")

    def move_by(self, dx: float, dy: float, dz: float, dpsi: float) -> bool:
        """moveBy in the body frame (dx forward, dy right, dz down, dpsi clockwise).

        Returns False (and records a ``move_by_end`` with error ``notAvailable``) when the
        drone is not hovering or flying. A new move interrupts a running one.
        """
        if self.flying_state not in ("hovering", "flying"):
            self._events.append(
                SimEvent(self.t, "move_by_end", {"dx": dx, "dy": dy, "dz": dz, "dpsi": dpsi, "error": "notAvailable"})
            )
            return False
        self._end_move("interrupted")
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        self._move = {
            "dx": float(dx),
            "dy": float(dy),
            "dz": float(dz),
            "dpsi": float(dpsi),
            "tx": self.x + dx * c + dy * s,
            "ty": self.y + dx * s - dy * c,
            "tz": max(0.0, self.z - dz),
            "tyaw": wrap_angle(self.yaw - dpsi),
        }
        self._pcmd = (0, 0, 0, 0, 0)
        return True

    @property
    def moving_by(self) -> bool:
        return self._move is not None

    # ------------------------------------------------------------------ telemetry
    def state(self) -> DroneState:
        return DroneState(
            t=self.t,
            x=self.x,
            y=self.y,
            z=self.z,
            yaw=self.yaw,
            vx=self.vx,
            vy=self.vy,
            vz=self.vz,
            flying_state=self.flying_state,
            battery=self.battery,
            link=self.link,
            roll=self.roll,
            pitch=self.pitch,
        )

    def pop_events(self) -> list[SimEvent]:
        """Events since the last call (flying-state changes, moveBy completions)."""
        out, self._events = self._events, []
        return out

    # ------------------------------------------------------------------ dynamics
    # The dynamics integrate on a fixed grid t0 + k * substep_s, so the result depends only on
    # the commands and the data times they were given at, never on how the caller cut time into
    # steps. ``t`` is the time of the last grid point reached (at most one substep behind the
    # time asked for).
    @property
    def t(self) -> float:
        return self._t0 + self._k * self.params.substep_s

    @t.setter
    def t(self, value: float) -> None:
        """Restart the time grid at ``value`` (the state is kept)."""
        self._t0 = float(value)
        self._k = 0
        self._t_req = float(value)

    @property
    def t_requested(self) -> float:
        """The latest data time the simulation was asked to reach."""
        return self._t_req

    def step(self, dt: float) -> None:
        """Advance the simulation by ``dt`` seconds of data time."""
        if dt < 0:
            raise ValueError(f"cannot step back in time (dt={dt})")
        self.step_to(self._t_req + dt)

    def step_to(self, t: float) -> None:
        """Advance to data time ``t`` (no-op if ``t`` is not ahead)."""
        if t <= self._t_req:
            return
        self._t_req = float(t)
        h = self.params.substep_s
        while self._t0 + (self._k + 1) * h <= t + 1e-9:
            self._substep(h)

    def _substep(self, h: float) -> None:
        p = self.params
        g = p.gravity
        a_max = g * math.tan(math.radians(p.max_tilt_deg))
        state = self.flying_state
        vx_cmd = vy_cmd = vz_cmd = yaw_rate_cmd = 0.0
        if state == "landed":
            self.vx = self.vy = self.vz = self.yaw_rate = 0.0
            self.roll = self.pitch = 0.0
            self._k += 1
            return
        if state == "emergency":
            self.vz -= g * h
            self.x += self.vx * h
            self.y += self.vy * h
            self.z += self.vz * h
            self.yaw_rate = 0.0
            if self.z <= 0.0:
                self.z = 0.0
                self.vx = self.vy = self.vz = 0.0
                self.roll = self.pitch = 0.0
                self._k += 1
                self._set_state("landed")
                return
            self._k += 1
            return
        if state == "takingoff":
            vz_cmd = min(p.takeoff_climb_speed, 2.0 * (p.takeoff_altitude - self.z))
        elif state == "landing":
            vz_cmd = -p.landing_speed
        elif self._move is not None:
            vx_cmd, vy_cmd, vz_cmd, yaw_rate_cmd = self._move_command()
        else:
            flag, roll, pitch, yaw, gaz = self._pcmd
            fwd = pitch / 100.0 * p.max_horizontal_speed if flag else 0.0
            right = roll / 100.0 * p.max_horizontal_speed if flag else 0.0
            c, s = math.cos(self.yaw), math.sin(self.yaw)
            vx_cmd = fwd * c + right * s
            vy_cmd = fwd * s - right * c
            vz_cmd = gaz / 100.0 * p.max_vertical_speed
            yaw_rate_cmd = -yaw / 100.0 * math.radians(p.max_yaw_rate_deg)

        # horizontal: the acceleration vector is bounded by the tilt, not each axis alone
        ax = (vx_cmd - self.vx) / max(p.tau_horizontal_s, h)
        ay = (vy_cmd - self.vy) / max(p.tau_horizontal_s, h)
        a_norm = math.hypot(ax, ay)
        if a_norm > a_max:
            ax, ay = ax * a_max / a_norm, ay * a_max / a_norm
        self.vx += ax * h
        self.vy += ay * h
        self.vz = _approach(self.vz, vz_cmd, p.tau_vertical_s, 2.0 * g, h)
        yaw_acc_max = math.radians(p.max_yaw_rate_deg) / max(p.tau_yaw_s, h) * 2.0
        self.yaw_rate = _approach(self.yaw_rate, yaw_rate_cmd, p.tau_yaw_s, yaw_acc_max, h)

        self.x += self.vx * h
        self.y += self.vy * h
        self.z += self.vz * h
        self.yaw = wrap_angle(self.yaw + self.yaw_rate * h)
        self._k += 1

        # attitude from acceleration in the body frame (drag term keeps tilt while cruising)
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        drag = a_max * 0.5 / max(p.max_horizontal_speed, 1e-6)
        a_fwd = ax * c + ay * s + drag * (self.vx * c + self.vy * s)
        a_right = ax * s - ay * c + drag * (self.vx * s - self.vy * c)
        tilt = math.radians(p.max_tilt_deg)
        self.pitch = max(-tilt, min(tilt, math.atan2(a_fwd, g)))
        self.roll = max(-tilt, min(tilt, math.atan2(a_right, g)))

        self.battery = max(0.0, self.battery - p.battery_drain_per_s * h)

        if self.z <= 0.0 and state != "takingoff":
            self.z = 0.0
            self.vz = max(0.0, self.vz)
            if state == "landing":
                self.vx = self.vy = self.vz = self.yaw_rate = 0.0
                self.roll = self.pitch = 0.0
                self._set_state("landed")
                return
        if state == "takingoff" and self.z >= p.takeoff_altitude - 0.05 and abs(self.vz) < 0.2:
            self._set_state("hovering")
        elif state in ("hovering", "flying"):
            if self._move is not None:
                self._check_move_done()
            flag, roll, pitch, yaw, gaz = self._pcmd
            active = self._move is not None or bool(flag and (roll or pitch)) or bool(yaw or gaz)
            moving = math.hypot(self.vx, self.vy) > 0.25 or abs(self.vz) > 0.25 or abs(self.yaw_rate) > 0.25
            self._set_state("flying" if active or moving else "hovering")
        if self.battery <= 0.0 and self.flying_state in ("hovering", "flying"):
            log.warning("simulated battery empty: landing")
            self.land()

    def _move_command(self) -> tuple[float, float, float, float]:
        assert self._move is not None
        p = self.params
        ex, ey, ez = self._move["tx"] - self.x, self._move["ty"] - self.y, self._move["tz"] - self.z
        gain = 1.0
        vx, vy = gain * ex, gain * ey
        n = math.hypot(vx, vy)
        if n > p.move_by_speed:
            vx, vy = vx * p.move_by_speed / n, vy * p.move_by_speed / n
        vz = max(-p.max_vertical_speed, min(p.max_vertical_speed, gain * ez))
        eyaw = wrap_angle(self._move["tyaw"] - self.yaw)
        r_max = math.radians(p.move_by_yaw_rate_deg)
        yaw_rate = max(-r_max, min(r_max, 3.0 * eyaw))
        return vx, vy, vz, yaw_rate

    def _check_move_done(self) -> None:
        assert self._move is not None
        p = self.params
        m = self._move
        err = math.dist((m["tx"], m["ty"], m["tz"]), (self.x, self.y, self.z))
        eyaw = abs(wrap_angle(m["tyaw"] - self.yaw))
        speed = math.hypot(self.vx, self.vy, self.vz)
        settled = speed < 0.1 and abs(self.yaw_rate) < 0.05
        if err < p.move_by_tolerance_m and eyaw < math.radians(p.move_by_tolerance_deg) and settled:
            self._end_move("ok")

    def _end_move(self, error: str) -> None:
        if self._move is None:
            return
        m = self._move
        self._move = None
        detail = {"dx": m["dx"], "dy": m["dy"], "dz": m["dz"], "dpsi": m["dpsi"], "error": error}
        self._events.append(SimEvent(self.t, "move_by_end", detail))

    def _set_state(self, new: str) -> None:
        if new != self.flying_state:
            self.flying_state = new
            self._events.append(SimEvent(self.t, "flying_state", {"state": new}))


class SimBackend:
    """:class:`~emgpilot.drone.backend.DroneBackend` over a :class:`DroneSim` and a hoop course.

    Parameters
    ----------
    course : the hoop course scored during the flight (None: no course).
    params : simulator parameters.
    battery : starting charge (percent).
    """

    name = "sim"

    def __init__(self, course: Course | None = None, params: SimParams | None = None, battery: float = 100.0) -> None:
        self.sim = DroneSim(params, battery=battery)
        self.sim.link = "disconnected"
        # Commands may come from another thread (the GUI's emergency button) while the pilot's
        # thread steps the simulation: every access holds this lock, and stepping releases it
        # every 20 ms of data time so a command never waits long.
        self._lock = threading.Lock()
        self.course = course
        self._started = False
        self.events: list[SimEvent] = []
        """Every event the simulated drone reported, in order (for tests and recordings)."""

    # ------------------------------------------------------------------ link
    def connect(self) -> bool:
        self.sim.link = "connected"
        return True

    def disconnect(self) -> None:
        self.sim.link = "disconnected"

    def inject_link_loss(self) -> None:
        """Fault injection: the link drops; the drone hovers on its own (like a Bebop)."""
        with self._lock:
            self.sim.link = "lost"
            self.sim.set_pcmd(0, 0, 0, 0, 0)

    def _reachable(self, what: str) -> bool:
        if self.sim.link != "connected":
            log.warning("sim: %s not delivered, link is %s", what, self.sim.link)
            return False
        return True

    # ------------------------------------------------------------------ commands
    def takeoff(self) -> None:
        with self._lock:
            if self._reachable("takeoff"):
                self.sim.takeoff()

    def land(self) -> None:
        with self._lock:
            if self._reachable("land"):
                self.sim.land()

    def emergency(self) -> None:
        with self._lock:
            if self._reachable("emergency"):
                self.sim.emergency()

    def pcmd(self, roll: int, pitch: int, yaw: int, gaz: int) -> None:
        # flag 1 always: an all-zero setpoint from the pilot means "hover now" and must
        # also end a running move_by
        with self._lock:
            if self._reachable("pcmd"):
                self.sim.set_pcmd(1, roll, pitch, yaw, gaz)

    def move_by(self, dx: float, dy: float, dz: float, dpsi: float) -> None:
        with self._lock:
            if self._reachable("move_by"):
                self.sim.move_by(dx, dy, dz, dpsi)

    # ------------------------------------------------------------------ time and state
    def state(self) -> DroneState:
        with self._lock:
            return self.sim.state()

    def step(self, t: float) -> None:
        """Advance the simulation to data time ``t``; the first call sets the clock."""
        if not self._started:
            with self._lock:
                self._started = True
                self.sim.t = float(t)
                if self.course is not None:
                    self.course.reset(self.sim.state())
            return
        h = 0.02  # course checks at 50 Hz: a hoop is never skipped at these speeds
        now = self.sim.t_requested
        while now < t:
            now = min(t, now + h)
            with self._lock:
                before = self.sim.state()
                self.sim.step_to(now)
                after = self.sim.state()
                if self.course is not None and (
                    before.airborne or after.airborne or before.flying_state == "emergency"
                ):
                    self.course.update(before, after)
        with self._lock:
            self.events.extend(self.sim.pop_events())

    @property
    def airborne(self) -> bool:
        return self.sim.flying_state in AIRBORNE_STATES

    def close(self) -> None:
        self.disconnect()
