"""Top-down drone map (hoop course, drone position, heading, trail), altitude and status.

Screen frame: the take-off heading points up; world ``x`` (forward) is screen up and world
``y`` (left) is screen left, so the map reads like the pilot's view from behind the drone.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtWidgets

from emgpilot.app.gui.ring import RingBuffer
from emgpilot.drone.backend import DroneState, state_from_row
from emgpilot.drone.course import HoopConfig


def to_screen(x: np.ndarray | float, y: np.ndarray | float) -> tuple[np.ndarray | float, np.ndarray | float]:
    """World (x forward, y left) -> screen (right, up)."""
    return -y, x


class DroneView(QtWidgets.QWidget):
    """The map plus altitude bar and status labels; ``refresh(telemetry_buffer)`` each frame."""

    def __init__(self, hoops: tuple[HoopConfig, ...] = (), parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.map = pg.PlotWidget(background="w", title="Drone (top-down)")
        self.map.setAspectLocked(True)
        self.map.showGrid(x=True, y=True, alpha=0.2)
        self.map.setMenuEnabled(False)
        self.map.setLabel("left", "forward x (m)")
        self.map.setLabel("bottom", "left  <- y (m) ->  right")
        for name in ("left", "bottom"):  # axes and grid change only with zoom: blit them from a pixmap
            self.map.getAxis(name).setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
        layout.addWidget(self.map, 1)
        side = QtWidgets.QVBoxLayout()
        self.altitude = QtWidgets.QProgressBar()
        self.altitude.setOrientation(QtCore.Qt.Orientation.Vertical)
        self.altitude.setRange(0, 300)  # cm
        self.altitude.setFormat("")
        self.altitude.setTextVisible(False)
        self.altitude_label = QtWidgets.QLabel("alt\n0.00 m")
        self.altitude_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        side.addWidget(self.altitude_label)
        side.addWidget(self.altitude, 1, QtCore.Qt.AlignmentFlag.AlignHCenter)
        layout.addLayout(side)
        self.status = QtWidgets.QLabel("no drone")
        self.status.setWordWrap(True)
        self.hoop_items: list[pg.PlotDataItem] = []
        self.set_hoops(hoops)
        self.trail = pg.PlotCurveItem(pen=pg.mkPen("#4363d8", width=1))
        self.map.addItem(self.trail)
        self.body = pg.PlotCurveItem(pen=pg.mkPen("#202020", width=2), brush=pg.mkBrush("#f58231"), fillLevel=None)
        self.map.addItem(self.body)
        self.state: DroneState | None = None
        self.fit_course(hoops)

    def fit_course(self, hoops: tuple[HoopConfig, ...]) -> None:
        """Show the take-off point and every hoop."""
        xs = [0.0, *(h.x for h in hoops)]
        ys = [0.0, *(h.y for h in hoops)]
        sx, sy = to_screen(np.array(xs), np.array(ys))
        self.map.setRange(
            xRange=(float(np.min(sx)) - 1.5, float(np.max(sx)) + 1.5),
            yRange=(float(np.min(sy)) - 1.0, float(np.max(sy)) + 1.5),
        )

    def set_hoops(self, hoops: tuple[HoopConfig, ...]) -> None:
        for item in self.hoop_items:
            self.map.removeItem(item)
        self.hoop_items = []
        for i, h in enumerate(hoops):
            # a vertical ring seen from above: a segment across the flying direction
            hd = math.radians(h.heading_deg)
            px, py = -math.sin(hd) * h.radius, math.cos(hd) * h.radius
            sx, sy = to_screen(np.array([h.x - px, h.x + px]), np.array([h.y - py, h.y + py]))
            item = self.map.plot(sx, sy, pen=pg.mkPen("#e6194b", width=4))
            self.hoop_items.append(item)
            label = pg.TextItem(f"{i + 1} ({h.z:.1f} m)", color="#e6194b", anchor=(0.5, 1.2))
            cx, cy = to_screen(h.x, h.y)
            label.setPos(cx, cy)
            self.map.addItem(label)
            self.hoop_items.append(label)

    def refresh(
        self, telemetry: RingBuffer | None, course_text: str = "", link_text: str = "", until: float | None = None
    ) -> None:
        """Draw the newest telemetry (or, with ``until``, the telemetry up to that data time: replays)."""
        if telemetry is None or not len(telemetry):
            self.status.setText(link_text or "no drone telemetry")
            return
        if until is None:
            t, rows = telemetry.raw.last(3000)  # 5 min of trail at 10 Hz
        else:
            t_all, rows_all = telemetry.raw.view()
            end = int(np.searchsorted(t_all, until, side="right"))
            if end == 0:
                self.status.setText(link_text or "no drone telemetry yet")
                return
            t, rows = t_all[max(0, end - 3000) : end], rows_all[max(0, end - 3000) : end]
        sx, sy = to_screen(rows[:, 0], rows[:, 1])
        self.trail.setData(np.asarray(sx), np.asarray(sy))
        s = state_from_row(float(t[-1]), rows[-1])
        self.state = s
        # a triangle pointing along the heading
        size = 0.35
        pts = []
        for ang, r in ((0.0, size), (2.5, size * 0.7), (-2.5, size * 0.7), (0.0, size)):
            a = s.yaw + ang
            pts.append((s.x + r * math.cos(a), s.y + r * math.sin(a)))
        arr = np.array(pts)
        bx, by = to_screen(arr[:, 0], arr[:, 1])
        self.body.setData(np.asarray(bx), np.asarray(by))
        self.altitude.setValue(int(max(0.0, min(3.0, s.z)) * 100))
        self.altitude_label.setText(f"alt\n{s.z:.2f} m")
        color = {"emergency": "#e6194b", "landed": "#808080"}.get(s.flying_state, "#3cb44b")
        self.status.setText(
            f"<b style='color:{color}'>{s.flying_state}</b> &nbsp; battery {s.battery:.0f} % &nbsp; "
            f"link {s.link} &nbsp; heading {math.degrees(s.yaw):.0f}\u00b0 &nbsp; "
            f"x {s.x:.2f} y {s.y:.2f} m {course_text} {link_text}"
        )


def state_of(telemetry: RingBuffer | None) -> DroneState | None:
    if telemetry is None or not len(telemetry):
        return None
    last = telemetry.latest()
    assert last is not None
    return state_from_row(last[0], last[1])
