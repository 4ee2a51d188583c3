"""Gesture events to drone commands, as configured in a TOML mapping (``mapping.toml``).

The mapper is pure: a :class:`~emgpilot.signals.streams.GestureEvent` in, a
:class:`~emgpilot.signals.streams.CommandEvent` (or nothing) out. It never decides about
safety, and it can never produce take-off, landing or emergency (those are user actions).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from emgpilot.config import load_toml
from emgpilot.drone.commands import MOVE_DIRECTION, NO_COMMAND, PCMD_DIRECTION, STOP, TURNS
from emgpilot.signals.streams import CommandEvent, GestureEvent

log = logging.getLogger(__name__)

DEFAULT_MAPPING_PATH = Path(__file__).with_name("mapping.toml")

CommandName = Literal["none", "stop", "forward", "backward", "left", "right", "up", "down", "turn_left", "turn_right"]


@dataclass
class GestureMap:
    """Which command each gesture of the vocabulary triggers (``"none"``: ignore it)."""

    stiffen: CommandName = "stop"
    fist: CommandName = "forward"
    wave_up: CommandName = "up"
    wave_down: CommandName = "down"
    wave_left: CommandName = "left"
    wave_right: CommandName = "right"
    rotate_ccw: CommandName = "turn_left"
    rotate_cw: CommandName = "turn_right"


@dataclass
class CommandSpec:
    """How one motion command moves the drone.

    ``mode = "move"``: a relative move of ``distance_m`` (translations) or ``angle_deg`` (turns).
    ``mode = "pulse"``: fly at ``speed_percent`` of the maximum speed for ``duration_s``, then hover.
    """

    mode: Literal["move", "pulse"] = "move"
    distance_m: float = 1.0
    angle_deg: float = 45.0
    speed_percent: int = 40
    duration_s: float = 1.0

    def __post_init__(self) -> None:
        if not (self.distance_m > 0 and self.angle_deg > 0 and self.duration_s > 0):
            raise ValueError("distance_m, angle_deg and duration_s must be positive")
        if not 0 < self.speed_percent <= 100:
            raise ValueError(f"speed_percent must be in 1..100, not {self.speed_percent}")


@dataclass
class CommandTable:
    forward: CommandSpec = field(default_factory=lambda: CommandSpec(distance_m=1.0))
    backward: CommandSpec = field(default_factory=lambda: CommandSpec(distance_m=1.0))
    left: CommandSpec = field(default_factory=lambda: CommandSpec(distance_m=0.5))
    right: CommandSpec = field(default_factory=lambda: CommandSpec(distance_m=0.5))
    up: CommandSpec = field(default_factory=lambda: CommandSpec(distance_m=0.5))
    down: CommandSpec = field(default_factory=lambda: CommandSpec(distance_m=0.5))
    turn_left: CommandSpec = field(default_factory=lambda: CommandSpec(angle_deg=45.0))
    turn_right: CommandSpec = field(default_factory=lambda: CommandSpec(angle_deg=45.0))


@dataclass
class MappingConfig:
    """The whole mapping: gesture -> command, and each command's size."""

    min_confidence: float = 0.0
    """Gestures recognised with a lower confidence are ignored."""
    gestures: GestureMap = field(default_factory=GestureMap)
    commands: CommandTable = field(default_factory=CommandTable)


def load_mapping(path: str | Path | None = None) -> MappingConfig:
    """Read a mapping TOML strictly (unknown keys and bad values are errors, naming the file).

    ``None`` reads the shipped ``mapping.toml`` (identical to the built-in defaults).
    """
    return load_toml(MappingConfig, DEFAULT_MAPPING_PATH if path is None else path)


class Mapper:
    """Turns gesture events into command events per a :class:`MappingConfig`."""

    def __init__(self, cfg: MappingConfig | None = None) -> None:
        self.cfg = cfg or MappingConfig()

    def command_for(self, gesture: str) -> str:
        """The command name a gesture maps to (``"none"`` if ignored)."""
        if not hasattr(self.cfg.gestures, gesture):
            return NO_COMMAND
        return str(getattr(self.cfg.gestures, gesture))

    def command_args(self, command: str) -> dict[str, float]:
        """Arguments of a motion command (see :mod:`emgpilot.drone.commands`)."""
        if command == STOP:
            return {}
        spec: CommandSpec = getattr(self.cfg.commands, command)
        if spec.mode == "move":
            size = math.radians(spec.angle_deg) if command in TURNS else spec.distance_m
            dx, dy, dz, dpsi = (size * d for d in MOVE_DIRECTION[command])
            return {"dx": dx, "dy": dy, "dz": dz, "dpsi": dpsi}
        roll, pitch, yaw, gaz = (float(spec.speed_percent * d) for d in PCMD_DIRECTION[command])
        return {"roll": roll, "pitch": pitch, "yaw": yaw, "gaz": gaz, "duration_s": spec.duration_s}

    def map(self, event: GestureEvent) -> CommandEvent | None:
        """The command for a gesture, or None if the gesture is ignored."""
        command = self.command_for(event.gesture)
        if command == NO_COMMAND:
            log.debug("gesture %r maps to no command", event.gesture)
            return None
        if event.confidence < self.cfg.min_confidence:
            log.debug(
                "gesture %r ignored: confidence %.2f < %.2f", event.gesture, event.confidence, self.cfg.min_confidence
            )
            return None
        return CommandEvent(
            t=event.t, command=command, args=self.command_args(command), source=f"gesture:{event.gesture}"
        )
