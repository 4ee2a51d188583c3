"""The drone command vocabulary and how a command's arguments reach a backend.

Two families of commands exist:

* motion commands, produced by the mapper from gestures: :data:`MOTION_COMMANDS`;
* user actions, only ever issued by an explicit user action in the GUI or CLI, never by a
  gesture: :data:`USER_ACTIONS` (take-off, landing, emergency).

A motion command's :class:`~emgpilot.signals.streams.CommandEvent` carries its arguments in
one of two shapes, chosen by the mapping (see ``mapping.toml``):

* a relative move: ``{"dx", "dy", "dz", "dpsi"}`` in the Bebop's body frame (m, m, m DOWN,
  rad clockwise), sent with ``move_by``;
* a pulse: ``{"roll", "pitch", "yaw", "gaz", "duration_s"}``: a PCMD setpoint in percent held
  for ``duration_s`` seconds, then zeros.

``stop`` has no arguments: zero velocity at once (it also ends a running move).
"""

from __future__ import annotations

STOP = "stop"

MOTION_COMMANDS: tuple[str, ...] = (
    STOP,
    "forward",
    "backward",
    "left",
    "right",
    "up",
    "down",
    "turn_left",
    "turn_right",
)

USER_ACTIONS: tuple[str, ...] = ("takeoff", "land", "emergency")

NO_COMMAND = "none"
"""Mapping value for a gesture that should do nothing."""

MOVE_KEYS = ("dx", "dy", "dz", "dpsi")
PULSE_KEYS = ("roll", "pitch", "yaw", "gaz", "duration_s")

# Unit direction of each motion command: body-frame move (dx fwd, dy right, dz down, dpsi cw)
# and the PCMD axis (roll, pitch, yaw, gaz) it drives.
MOVE_DIRECTION: dict[str, tuple[float, float, float, float]] = {
    "forward": (1.0, 0.0, 0.0, 0.0),
    "backward": (-1.0, 0.0, 0.0, 0.0),
    "left": (0.0, -1.0, 0.0, 0.0),
    "right": (0.0, 1.0, 0.0, 0.0),
    "up": (0.0, 0.0, -1.0, 0.0),
    "down": (0.0, 0.0, 1.0, 0.0),
    "turn_left": (0.0, 0.0, 0.0, -1.0),
    "turn_right": (0.0, 0.0, 0.0, 1.0),
}

PCMD_DIRECTION: dict[str, tuple[int, int, int, int]] = {
    "forward": (0, 1, 0, 0),
    "backward": (0, -1, 0, 0),
    "left": (-1, 0, 0, 0),
    "right": (1, 0, 0, 0),
    "up": (0, 0, 0, 1),
    "down": (0, 0, 0, -1),
    "turn_left": (0, 0, -1, 0),
    "turn_right": (0, 0, 1, 0),
}

TURNS = frozenset({"turn_left", "turn_right"})


def is_move(args: dict[str, float]) -> bool:
    return all(k in args for k in MOVE_KEYS)


def is_pulse(args: dict[str, float]) -> bool:
    return all(k in args for k in PULSE_KEYS)
