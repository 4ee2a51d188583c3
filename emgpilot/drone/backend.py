"""What a drone backend is, and the telemetry every backend reports.

Conventions shared by every backend (simulator, Olympe, virtual Bebop 2):

* World frame of :class:`DroneState`: ``x`` = forward at take-off, ``y`` = left, ``z`` = up
  (metres, origin at the take-off point on the ground); ``yaw`` in radians, counter-clockwise
  seen from above (0 = the take-off heading).
* Commands follow the Bebop's ARSDK conventions so that the Olympe backend passes them through
  unchanged: ``pcmd`` values are percent in [-100, 100] of the configured maxima and are held
  until changed (roll > 0 = right, pitch > 0 = forward, yaw > 0 = clockwise, gaz > 0 = up);
  ``move_by(dx, dy, dz, dpsi)`` is relative to the drone's body at the time of the call with
  ``dx`` forward, ``dy`` right, ``dz`` DOWN (metres) and ``dpsi`` clockwise (radians).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from emgpilot.signals.streams import Chunk, StreamInfo

FLYING_STATES: tuple[str, ...] = ("landed", "takingoff", "hovering", "flying", "landing", "emergency")
"""ARSDK ``FlyingStateChanged`` values, in their enum order (landed = 0 ... emergency = 5)."""

LINK_STATES: tuple[str, ...] = ("disconnected", "connecting", "connected", "lost")

AIRBORNE_STATES = frozenset({"takingoff", "hovering", "flying", "landing"})


@dataclass(frozen=True)
class DroneState:
    """One telemetry sample of a drone (see the module docstring for the frame).

    Parameters
    ----------
    t : data time of the sample (s).
    x, y, z : position (m); z up, 0 = ground.
    yaw : heading (rad), counter-clockwise from the take-off heading.
    vx, vy, vz : world-frame velocity (m/s).
    flying_state : one of :data:`FLYING_STATES`.
    battery : percent remaining.
    link : one of :data:`LINK_STATES`.
    roll, pitch : attitude (rad), roll > 0 = right side down, pitch > 0 = nose down (forward).
    """

    t: float = 0.0
    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    yaw: float = 0.0
    vx: float = 0.0
    vy: float = 0.0
    vz: float = 0.0
    flying_state: str = "landed"
    battery: float = 100.0
    link: str = "disconnected"
    roll: float = 0.0
    pitch: float = 0.0

    @property
    def airborne(self) -> bool:
        return self.flying_state in AIRBORNE_STATES

    @property
    def horizontal_speed(self) -> float:
        return float(np.hypot(self.vx, self.vy))

    @property
    def distance_from_home(self) -> float:
        """Horizontal distance from the take-off point (m)."""
        return float(np.hypot(self.x, self.y))


TELEMETRY_CHANNELS: tuple[str, ...] = (
    "x",
    "y",
    "z",
    "yaw",
    "vx",
    "vy",
    "vz",
    "roll",
    "pitch",
    "battery",
    "flying_state",
    "link",
)
TELEMETRY_UNITS: tuple[str, ...] = ("m", "m", "m", "rad", "m/s", "m/s", "m/s", "rad", "rad", "%", "index", "index")

DRONE_TELEMETRY = StreamInfo("drone_telemetry", "telemetry", 10.0, TELEMETRY_CHANNELS, TELEMETRY_UNITS)
"""Drone telemetry as recorded: nominally 10 Hz; ``flying_state`` indexes :data:`FLYING_STATES`,
``link`` indexes :data:`LINK_STATES`."""


def telemetry_row(s: DroneState) -> list[float]:
    """One row of :data:`DRONE_TELEMETRY` for a state."""
    return [
        s.x,
        s.y,
        s.z,
        s.yaw,
        s.vx,
        s.vy,
        s.vz,
        s.roll,
        s.pitch,
        s.battery,
        float(FLYING_STATES.index(s.flying_state)),
        float(LINK_STATES.index(s.link)),
    ]


def telemetry_chunk(states: list[DroneState]) -> Chunk:
    """A :class:`Chunk` of :data:`DRONE_TELEMETRY` holding ``states`` in order."""
    t = np.array([s.t for s in states], dtype=np.float64)
    data = np.array([telemetry_row(s) for s in states], dtype=np.float64).reshape(len(states), len(TELEMETRY_CHANNELS))
    return Chunk(DRONE_TELEMETRY, t, data)


def state_from_row(t: float, row: np.ndarray) -> DroneState:
    """Inverse of :func:`telemetry_row` (for replays and plots)."""
    v = [float(a) for a in row]
    return DroneState(
        t=float(t),
        x=v[0],
        y=v[1],
        z=v[2],
        yaw=v[3],
        vx=v[4],
        vy=v[5],
        vz=v[6],
        roll=v[7],
        pitch=v[8],
        battery=v[9],
        flying_state=FLYING_STATES[int(v[10])],
        link=LINK_STATES[int(v[11])],
    )


@runtime_checkable
class DroneBackend(Protocol):
    """A drone the pilot can fly. Only the safety supervisor calls these methods.

    Every method returns quickly (no blocking network I/O on the caller's thread except
    ``connect``/``disconnect``, which callers run off the GUI thread).
    """

    name: str

    def connect(self) -> bool:
        """Open the link; True once the drone answers."""
        ...

    def disconnect(self) -> None: ...

    def takeoff(self) -> None: ...

    def land(self) -> None: ...

    def emergency(self) -> None:
        """Cut the motors at once (the drone falls). Must always reach the drone."""
        ...

    def pcmd(self, roll: int, pitch: int, yaw: int, gaz: int) -> None:
        """Piloting setpoint in percent [-100, 100], held until changed.

        All zeros means "hover now": it also ends a running :meth:`move_by`.
        """
        ...

    def move_by(self, dx: float, dy: float, dz: float, dpsi: float) -> None:
        """Relative move in the body frame (dx forward, dy right, dz down, dpsi clockwise)."""
        ...

    def state(self) -> DroneState:
        """Latest telemetry."""
        ...

    def step(self, t: float) -> None:
        """Advance to data time ``t`` (the simulator integrates; real backends may poll)."""
        ...

    def close(self) -> None:
        """Release everything (threads, sockets). Safe to call twice."""
        ...
