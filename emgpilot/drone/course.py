"""A hoop course for the simulator: hoops in order, pass detection, collisions, score.

A hoop is a vertical ring with a centre, a radius and the heading the drone must fly through it
with. The drone is a sphere of ``body_radius``: it passes a hoop when it crosses the hoop's plane
in the right direction with its whole body inside the ring, and collides with the rim when it
crosses the plane with the body overlapping the rim. Only the next hoop in order scores.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

from emgpilot.config import load_toml
from emgpilot.drone.backend import DroneState

log = logging.getLogger(__name__)


@dataclass
class HoopConfig:
    """One hoop: centre (m, world frame), heading to fly through it (deg, CCW from +x), radius."""

    x: float = 0.0
    y: float = 0.0
    z: float = 1.0
    heading_deg: float = 0.0
    radius: float = 0.6


def _default_hoops() -> tuple[HoopConfig, ...]:
    # Exercises every command: forward, up, turn left, down, strafe right, turn right.
    return (
        HoopConfig(x=3.0, y=0.0, z=1.0, heading_deg=0.0),
        HoopConfig(x=6.0, y=0.0, z=1.5, heading_deg=0.0),
        HoopConfig(x=8.0, y=2.5, z=1.5, heading_deg=90.0),
        HoopConfig(x=8.0, y=5.5, z=1.0, heading_deg=90.0),
        HoopConfig(x=7.0, y=8.5, z=1.0, heading_deg=90.0),
        HoopConfig(x=9.5, y=10.0, z=1.0, heading_deg=0.0),
    )


@dataclass
class CourseConfig:
    """A course: its hoops in flying order and the drone's body radius for contact tests."""

    hoops: tuple[HoopConfig, ...] = field(default_factory=_default_hoops)
    body_radius: float = 0.15


def load_course(path: str | Path | None = None) -> CourseConfig:
    """The default course, or one read strictly from a TOML file (``[[hoops]]`` tables)."""
    return CourseConfig() if path is None else load_toml(CourseConfig, path)


@dataclass(frozen=True)
class HoopPass:
    index: int
    t: float


@dataclass(frozen=True)
class Collision:
    index: int
    t: float
    what: str


class Course:
    """Scores one flight through a :class:`CourseConfig`.

    Call :meth:`reset` with the starting state, then :meth:`update` with consecutive states
    (the simulator backend does it every 20 ms of data time).
    """

    def __init__(self, cfg: CourseConfig | None = None) -> None:
        self.cfg = cfg or CourseConfig()
        self.reset()

    @property
    def hoops(self) -> tuple[HoopConfig, ...]:
        return self.cfg.hoops

    def reset(self, start: DroneState | None = None) -> None:
        self.next_hoop = 0
        self.passes: list[HoopPass] = []
        self.collisions: list[Collision] = []
        self.t_start: float | None = None
        self.t_finish: float | None = None

    @property
    def finished(self) -> bool:
        return self.next_hoop >= len(self.cfg.hoops)

    def update(self, before: DroneState, after: DroneState) -> None:
        """Check the segment flown between two states against every hoop."""
        if self.t_start is None and after.airborne:
            self.t_start = after.t
        p0 = (before.x, before.y, before.z)
        p1 = (after.x, after.y, after.z)
        for i, hoop in enumerate(self.cfg.hoops):
            self._check(i, hoop, p0, p1, after.t)

    def _check(self, i: int, hoop: HoopConfig, p0: tuple, p1: tuple, t: float) -> None:
        h = math.radians(hoop.heading_deg)
        n = (math.cos(h), math.sin(h), 0.0)
        c = (hoop.x, hoop.y, hoop.z)
        d0 = sum((a - b) * k for a, b, k in zip(p0, c, n, strict=True))
        d1 = sum((a - b) * k for a, b, k in zip(p1, c, n, strict=True))
        if (d0 < 0.0) == (d1 < 0.0):
            return
        frac = d0 / (d0 - d1)
        hit = tuple(a + (b - a) * frac for a, b in zip(p0, p1, strict=True))
        r = math.dist(hit, c)
        body = self.cfg.body_radius
        forward = d0 < 0.0 <= d1
        if r <= hoop.radius - body:
            if forward and i == self.next_hoop:
                self.passes.append(HoopPass(i, t))
                self.next_hoop += 1
                log.info("hoop %d passed at t=%.2f s", i, t)
                if self.finished:
                    self.t_finish = t
        elif r <= hoop.radius + body:
            self.collisions.append(Collision(i, t, "rim"))
            log.info("hoop %d: rim hit at t=%.2f s (%.2f m from centre)", i, t, r)

    def score(self) -> dict:
        """Hoops passed, total, collisions and the course time (take-off to last hoop)."""
        time_s = None
        if self.t_finish is not None and self.t_start is not None:
            time_s = round(self.t_finish - self.t_start, 3)
        return {
            "hoops_passed": len(self.passes),
            "hoops_total": len(self.cfg.hoops),
            "collisions": len(self.collisions),
            "course_time_s": time_s,
            "finished": self.finished,
        }
