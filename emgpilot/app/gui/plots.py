"""Live plot widgets: signals, detectors, decision timeline, event log.

Every widget has ``refresh(store, x0, x1)`` called by the window's frame timer; nothing here
redraws when a sample arrives. Curves get at most a few thousand points per frame from the
:class:`~emgpilot.app.gui.ring.RingBuffer` pyramid, whatever the history length.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pyqtgraph as pg
from PyQt6 import QtCore, QtGui, QtWidgets

from emgpilot.app.gui.ring import RingBuffer
from emgpilot.signals.streams import (
    Chunk,
    CommandEvent,
    CueEvent,
    Event,
    GapEvent,
    GestureEvent,
    SafetyEvent,
    StatusEvent,
)
from emgpilot.signals.vocabulary import DECISION_CLASSES

COLORS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324")
CACHE = QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache
MAX_POINTS = 1200  # about two points per horizontal pixel of a plot


SHOWN_STREAMS = frozenset(
    {
        "forearm_emg",
        "forearm_emg.envelope",
        "upper_emg.filtered",
        "upper_emg.envelope",
        "forearm_imu",
        "decision",
        "wrist",
        "wrist.rotation",
        "drone_telemetry",
    }
)
"""Regular streams the window draws (plus every ``detector.*``); others are counted, not kept."""


def shown(name: str) -> bool:
    return name in SHOWN_STREAMS or name.startswith("detector.")


# Short names so the wrist network's seven bars stay readable side by side.
_WRIST_LABELS = {
    "wrist_flexion": "flexion",
    "wrist_extension": "extension",
    "radial_deviation": "radial",
    "ulnar_deviation": "ulnar",
    "hand_open": "open",
}


@dataclass
class StreamStore:
    """Ring buffers per shown regular stream plus recent events; filled by the window's frame timer."""

    history_s: float = 3600.0
    raw_history_s: float = 600.0
    """Raw samples are kept this long; older history lives on as min/max blocks."""
    buffers: dict[str, RingBuffer] = field(default_factory=dict)
    events: deque[Event] = field(default_factory=lambda: deque(maxlen=5000))
    recorded_events: list[Event] = field(default_factory=list)
    recorded_buffers: dict[str, RingBuffer] = field(default_factory=dict)
    samples: dict[str, int] = field(default_factory=dict)
    t_latest: float = float("-inf")
    new_events: list[Event] = field(default_factory=list)

    version: int = 0
    """Changes whenever messages are added (panels redraw when it does)."""

    def add(self, msgs: list, recorded: bool = False) -> None:
        if msgs:
            self.version += 1
        bufs = self.recorded_buffers if recorded else self.buffers
        for m in msgs:
            if isinstance(m, Chunk):
                if not len(m):
                    continue
                name = m.info.name
                if not recorded:
                    self.samples[name] = self.samples.get(name, 0) + len(m)
                    if name != "drone_telemetry":
                        self.t_latest = max(self.t_latest, m.t_end)
                if not shown(name):
                    continue
                buf = bufs.get(name)
                if buf is None:
                    rate = m.info.rate_hz or 10.0
                    buf = RingBuffer(
                        int(self.history_s * rate) + 16,
                        m.info.n_channels,
                        raw_capacity=int(min(self.history_s, self.raw_history_s) * rate) + 16,
                    )
                    bufs[name] = buf
                buf.append(m.t, m.data)
            elif isinstance(m, Event):
                if recorded:
                    self.recorded_events.append(m)
                else:
                    self.events.append(m)
                    self.new_events.append(m)

    @property
    def nbytes(self) -> int:
        """Memory held by the ring buffers (both mirror halves and the pyramid)."""
        rings = [r for b in [*self.buffers.values(), *self.recorded_buffers.values()] for r in (b.raw, *b.levels)]
        return sum(r.t.nbytes + r.x.nbytes for r in rings)

    def clear(self) -> None:
        self.buffers.clear()
        self.events.clear()
        self.recorded_events.clear()
        self.recorded_buffers.clear()
        self.samples.clear()
        self.new_events.clear()
        self.t_latest = float("-inf")
        self.version += 1


def _curve(plot: pg.PlotItem, color: str, style: QtCore.Qt.PenStyle | None = None) -> LineItem:
    """A live curve: 1-pixel cosmetic pen (wider pens cost several times more to paint)."""
    pen = pg.mkPen(color, width=1)
    if style is not None:
        pen.setStyle(style)
    c = LineItem(pen)
    plot.addItem(c)
    return c


class LineItem(QtWidgets.QGraphicsItem):
    """A polyline for live plots, in place of pyqtgraph's ``PlotCurveItem``.

    ``PlotCurveItem`` does a lot of Python work per item and frame that a scrolling plot with a
    fixed y range does not need (bounds padded by the pixel size through the device transform,
    change signals, a ``QPainterPath`` per paint). This item keeps ``QPolygonF``s filled straight
    from numpy and draws them with ``drawPolyline``: the same pixels, measured 2.5-3 ms less
    GUI-thread time per frame for the window's ~40 curves. Points are joined within runs of finite
    values (and, with ``connect``, where ``connect[i]`` joins point ``i`` to ``i + 1``).
    """

    def __init__(self, pen: QtGui.QPen) -> None:
        super().__init__()
        # what a legend's ItemSample reads
        self.opts: dict[str, object] = {"pen": pen, "antialias": False, "fillLevel": None, "symbol": None}
        self._pen = pen
        self._polylines: list[QtGui.QPolygonF] = []
        self._rect = QtCore.QRectF()
        self.xData: np.ndarray = np.zeros(0)
        self.yData: np.ndarray = np.zeros(0)

    def setData(self, x: np.ndarray | list, y: np.ndarray | list, connect: np.ndarray | None = None) -> None:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if x.shape != y.shape or x.ndim != 1:
            raise ValueError(f"x and y must be 1-d and of one length, got {x.shape} and {y.shape}")
        self.prepareGeometryChange()
        self.xData, self.yData = x, y
        self._polylines = [self._polyline(x[a:b], y[a:b]) for a, b in self._runs(x, y, connect)]
        self._rect = self._bounds(x, y)
        self.update()

    @staticmethod
    def _runs(x: np.ndarray, y: np.ndarray, connect: np.ndarray | None) -> list[tuple[int, int]]:
        """``[start, stop)`` of the runs of joined points (two points at least)."""
        n = x.shape[0]
        if n < 2:
            return []
        finite = np.isfinite(y) & np.isfinite(x)
        if connect is None and finite.all():
            return [(0, n)]
        link = finite[:-1] & finite[1:]
        if connect is not None:
            link &= np.asarray(connect[: n - 1], dtype=bool)
        # a run starts after every broken link and ends before the next one
        edges = np.flatnonzero(np.diff(np.concatenate([[False], link, [False]]).astype(np.int8)))
        return [(int(a), int(b) + 1) for a, b in zip(edges[0::2], edges[1::2], strict=True)]

    @staticmethod
    def _polyline(x: np.ndarray, y: np.ndarray) -> QtGui.QPolygonF:
        poly = pg.functions.create_qpolygonf(x.shape[0])
        xy = pg.functions.ndarray_from_qpolygonf(poly)
        xy[:, 0] = x
        xy[:, 1] = y
        return poly

    @staticmethod
    def _bounds(x: np.ndarray, y: np.ndarray) -> QtCore.QRectF:
        if x.shape[0] == 0:
            return QtCore.QRectF()
        x0, x1 = float(np.fmin.reduce(x)), float(np.fmax.reduce(x))
        y0, y1 = float(np.fmin.reduce(y)), float(np.fmax.reduce(y))
        if not all(math.isfinite(v) for v in (x0, x1, y0, y1)):
            return QtCore.QRectF()
        # never empty (a flat line still has to be drawn); the half pixel a 1-px pen reaches beyond
        # the data is covered by the 2-px margin QGraphicsView adds to every update
        pad_x = 1e-6 * (abs(x0) + abs(x1) + 1.0)
        pad_y = 1e-6 * (abs(y0) + abs(y1) + 1.0)
        return QtCore.QRectF(x0 - pad_x, y0 - pad_y, x1 - x0 + 2 * pad_x, y1 - y0 + 2 * pad_y)

    def boundingRect(self) -> QtCore.QRectF:
        return self._rect

    def paint(self, p: QtGui.QPainter, opt: object, widget: object = None) -> None:
        p.setPen(self._pen)
        for poly in self._polylines:
            p.drawPolyline(poly)


def cache_axes(plot: pg.PlotItem) -> None:
    """Static axes are painted once and blitted from a pixmap afterwards (they dominate frame time otherwise)."""
    for name in ("left", "right", "top"):
        plot.getAxis(name).setCacheMode(CACHE)
    for name in ("left", "right", "top", "bottom"):
        # With automatic SI prefixes every range change (every frame of a scrolling plot)
        # re-renders the axis label as HTML; the labels here carry their units already.
        plot.getAxis(name).enableAutoSIPrefix(False)
    plot.titleLabel.setCacheMode(CACHE)  # text is costly to rasterise on every frame
    plot.vb.disableAutoRange()


def time_axis(plot: pg.PlotItem) -> None:
    """A scrolling time axis is re-laid out on every frame: labelled ticks and one level of minor
    ticks, without pyqtgraph's finest level (measured: 2.2 -> 1.3 ms per axis and frame)."""
    plot.getAxis("bottom").setStyle(maxTickLevel=1)


def settle(view: pg.GraphicsView) -> None:
    """Apply this frame's range changes before Qt paints, so the view is painted once per frame.

    pyqtgraph defers a ViewBox's transform update to the start of the paint; items moved then
    schedule a second full repaint of every scrolled plot (measured: each signal plot painted
    twice per frame, ~40 % of the frame time).
    """
    view.scene().prepareForPaint()


class SignalPlots(pg.GraphicsLayoutWidget):
    """Forearm EMG with envelopes, upper-arm EMG with envelopes, accelerometer, gyroscope, decisions."""

    EMG_STEP = 160.0  # vertical spacing of stacked forearm channels (int8 counts)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.plots: dict[str, pg.PlotItem] = {}
        # (curve, stream, channels, scale, offset per channel)
        self.curves: list[tuple[LineItem, str, tuple[int, ...], float, tuple[float, ...]]] = []
        specs = [
            ("forearm", "Forearm EMG (8 ch) + envelopes", 3),
            ("upper", "Upper-arm EMG (biceps, triceps)", 2),
            ("accel", "Accelerometer (g)", 1),
            ("gyro", "Gyroscope (deg/s)", 1),
            ("decision", "Decision class (recomputed; recorded dashed)", 2),
        ]
        first = None
        for row, (key, title, stretch) in enumerate(specs):
            p = self.addPlot(row=row, col=0, title=title)
            p.showGrid(x=False, y=True, alpha=0.2)  # an x grid would repaint with every scroll
            p.setMenuEnabled(False)
            p.getAxis("left").setWidth(48)
            p.setClipToView(True)
            cache_axes(p)
            self.ci.layout.setRowStretchFactor(row, stretch)
            if first is None:
                first = p
            else:
                p.setXLink(first)
            if key != "decision":
                p.hideAxis("bottom")
            self.plots[key] = p
        self.plots["decision"].setLabel("bottom", "data time (s)")
        time_axis(self.plots["decision"])
        fp = self.plots["forearm"]
        offsets = tuple((7 - ch) * self.EMG_STEP for ch in range(8))
        # the raw channels share one grey curve (fewer items to paint); envelopes keep their colours
        self.curves.append((_curve(fp, "#b0b0b0"), "forearm_emg", tuple(range(8)), 1.0, offsets))
        for ch in range(8):
            self.curves.append((_curve(fp, COLORS[ch]), "forearm_emg.envelope", (ch,), 2.0, (offsets[ch],)))
        fp.setYRange(-self.EMG_STEP, 8 * self.EMG_STEP, padding=0)
        fp.getAxis("left").setTicks([[((7 - i) * self.EMG_STEP, f"ch{i}") for i in range(8)]])
        up = self.plots["upper"]
        self.curves.append((_curve(up, "#b0b0b0"), "upper_emg.filtered", (0, 1), 1.0, (300.0, 0.0)))
        for ch in range(2):
            off = (1 - ch) * 300.0
            self.curves.append((_curve(up, COLORS[ch + 2]), "upper_emg.envelope", (ch,), 2.0, (off,)))
        up.setYRange(-250, 550, padding=0)
        up.getAxis("left").setTicks([[(300.0, "bic"), (0.0, "tri")]])
        for key, first_ch in (("accel", 4), ("gyro", 7)):
            p = self.plots[key]
            legend = p.addLegend(offset=(-5, 5), labelTextSize="7pt", colCount=3)
            legend.setCacheMode(CACHE)
            for k, axis in enumerate("xyz"):
                c = _curve(p, COLORS[k])
                legend.addItem(c, axis)
                self.curves.append((c, "forearm_imu", (first_ch + k,), 1.0, (0.0,)))
        self.plots["accel"].setYRange(-2, 2)
        self.plots["gyro"].setYRange(-300, 300)
        dp = self.plots["decision"]
        self.curves.append((_curve(dp, "#202020"), "decision", (0,), 1.0, (0.0,)))
        self.recorded_decision = _curve(dp, "#e6194b", QtCore.Qt.PenStyle.DashLine)
        dp.setYRange(-1.5, len(DECISION_CLASSES) - 0.5, padding=0)
        short = {"wrist_flexion": "flex", "wrist_extension": "ext", "rotate_cw": "cw", "rotate_ccw": "ccw"}
        dp.getAxis("left").setTicks([[(-1, "rej"), *((i, short.get(c, c)) for i, c in enumerate(DECISION_CLASSES))]])
        for p in self.plots.values():
            p.vb.sigRangeChangedManually.connect(self._user_moved)
        self.follow = True

    def _user_moved(self, *_: object) -> None:
        self.follow = False

    def set_x_range(self, x0: float, x1: float) -> None:
        self.plots["forearm"].setXRange(x0, x1, padding=0)

    def view_range(self) -> tuple[float, float]:
        (x0, x1), _ = self.plots["forearm"].vb.viewRange()
        return float(x0), float(x1)

    def refresh(self, store: StreamStore, x0: float, x1: float) -> int:
        """Redraw every curve for ``[x0, x1]``; returns the number of points drawn."""
        points = 0
        cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for curve, stream, chans, scale, offs in self.curves:
            buf = store.buffers.get(stream)
            if buf is None:
                continue
            if stream not in cache:
                cache[stream] = buf.window(x0, x1, MAX_POINTS)
            t, y = cache[stream]
            n = t.shape[0]
            if n == 0:
                curve.setData([], [])
                continue
            if len(chans) == 1:
                col = y[:, chans[0]]
                if scale != 1.0 or offs[0] != 0.0:
                    col = col * scale + offs[0]
                curve.setData(t, col)
            else:  # several channels in one item, not joined across channels
                ys = (y[:, list(chans)] * scale + np.asarray(offs, dtype=np.float32)).T.ravel()
                connect = np.ones(n * len(chans), dtype=bool)
                connect[n - 1 :: n] = False
                curve.setData(np.tile(t, len(chans)), ys, connect=connect)
            points += n * len(chans)
        rec = store.recorded_buffers.get("decision")
        if rec is not None:
            t, y = rec.window(x0, x1, MAX_POINTS)
            self.recorded_decision.setData(t, y[:, 0] + 0.1)
        elif len(self.recorded_decision.xData):
            self.recorded_decision.setData([], [])
        settle(self)
        return points


class DetectorPanel(pg.GraphicsLayoutWidget):
    """One small plot per detector: value vs adaptive threshold, release and cluster levels;
    the title shows armed/cold-start and active. Last row: the wrist network's class probabilities."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setBackground("w")
        self.rows: dict[str, tuple[pg.PlotItem, dict[str, LineItem]]] = {}
        self.wrist_plot: pg.PlotItem | None = None
        self.wrist_bars: pg.BarGraphItem | None = None
        self.wrist_classes: tuple[str, ...] = ()
        self._wrist_height = np.zeros(0, dtype=np.float32)
        self._rotation_text = ""
        self.calibration_note = ""
        """Shown in the wrist plot's title (e.g. "calibrated for ana") while the session uses a calibration."""
        self._titles: dict[str, str] = {}
        self._yranges: dict[str, tuple[float, float]] = {}

    def _row(self, name: str) -> tuple[pg.PlotItem, dict[str, LineItem]]:
        row = self.rows.get(name)
        if row is None:
            p = self.addPlot(row=len(self.rows), col=0, title=name)
            p.setMenuEnabled(False)
            p.hideAxis("bottom")
            p.getAxis("left").setWidth(36)
            p.setMouseEnabled(x=False, y=False)
            cache_axes(p)
            curves = {
                "rest_mean": _curve(p, "#3cb44b", QtCore.Qt.PenStyle.DotLine),
                "active_mean": _curve(p, "#f58231", QtCore.Qt.PenStyle.DotLine),
                "release": _curve(p, "#911eb4", QtCore.Qt.PenStyle.DashLine),
                "threshold": _curve(p, "#e6194b"),
                "value": _curve(p, "#202020"),
            }
            row = (p, curves)
            self.rows[name] = row
            self._titles[name] = ""
            self._yranges[name] = (0.0, 0.0)
        return row

    def refresh(self, store: StreamStore, x0: float, x1: float, channels: dict[str, tuple[str, ...]]) -> None:
        for name in sorted(n for n in channels if n.startswith("detector.") and n in store.buffers):
            buf = store.buffers[name]
            chans = channels.get(name, ())
            p, curves = self._row(name)
            t, y = buf.window(x0, x1, 600)
            cols = [chans.index(k) for k in curves if k in chans]
            for key, curve in curves.items():
                if key in chans and t.shape[0]:
                    curve.setData(t, y[:, chans.index(key)])
            p.setXRange(x0, x1, padding=0)
            if t.shape[0] and cols:
                shown = y[:, cols]
                finite = shown[np.isfinite(shown)]
                if finite.size:
                    lo, hi = float(finite.min()), float(finite.max())
                    old_lo, old_hi = self._yranges[name]
                    span = max(hi - lo, 1e-6)
                    # change the range only when the data leaves it or uses much less of it (axes stay cached)
                    if lo < old_lo or hi > old_hi or (hi - lo) < 0.5 * (old_hi - old_lo):
                        new = (lo - 0.1 * span, hi + 0.1 * span)
                        self._yranges[name] = new
                        p.setYRange(*new, padding=0)
            last = buf.latest()
            if last is not None and "armed" in chans:
                row = last[1]
                armed = row[chans.index("armed")] > 0.5
                active = row[chans.index("active")] > 0.5
                state = ("ACTIVE" if active else "armed") if armed else "cold start"
                color = "#e6194b" if active else ("#3cb44b" if armed else "#808080")
                title = f"{name[len('detector.') :]}: {state}"
                if title != self._titles[name]:  # setTitle re-lays out HTML: only on change
                    self._titles[name] = title
                    p.setTitle(title, color=color, size="9pt")
        wrist = store.buffers.get("wrist")
        if wrist is not None and channels.get("wrist"):
            self._wrist(wrist, channels["wrist"])
            rotation = store.buffers.get("wrist.rotation")
            if rotation is not None and self.wrist_plot is not None:
                self._rotation_title(rotation)
        settle(self)

    def _rotation_title(self, buf: RingBuffer) -> None:
        """The wrist plot's title names the armband rotation in use, and warns when the wearer's
        evidence points outside the bound (a band worn further round than the standard placement)."""
        _, y = buf.raw.last(40)
        finite = np.isfinite(y).all(axis=1)
        if not finite.any():
            return
        last = y[np.flatnonzero(finite)[-1]]
        # Recordings made before the companion's column carry two columns.
        title = rotation_title(
            int(last[0]), int(last[1]), float(last[2]) if len(last) > 2 else 0.0, self.calibration_note
        )
        if title != self._rotation_text:
            self._rotation_text = title
            color = "#e6194b" if "check" in title else "#000000"
            self.wrist_plot.setTitle(title, color=color, size="9pt")  # type: ignore[union-attr]

    def _wrist(self, buf: RingBuffer, classes: tuple[str, ...]) -> None:
        if self.wrist_plot is None:
            self.wrist_classes = classes
            self.wrist_plot = self.addPlot(row=100, col=0, title="wrist network (last active window)")
            self.wrist_plot.setMenuEnabled(False)
            self.wrist_plot.setMouseEnabled(x=False, y=False)
            self.wrist_plot.setYRange(0, 1)
            self.wrist_plot.getAxis("bottom").setTicks([[(i, _WRIST_LABELS.get(c, c)) for i, c in enumerate(classes)]])
            self.wrist_bars = pg.BarGraphItem(
                x=np.arange(len(classes)), height=np.zeros(len(classes)), width=0.6, brush="#4363d8"
            )
            self.wrist_plot.addItem(self.wrist_bars)
        _, y = buf.raw.last(40)
        finite = np.isfinite(y).all(axis=1)
        if finite.any() and self.wrist_bars is not None:
            height = y[np.flatnonzero(finite)[-1]]
            if not np.array_equal(height, self._wrist_height):  # the bars only change after an active window
                self._wrist_height = height.copy()
                self.wrist_bars.setOpts(height=height)


def rotation_title(shift: int, evidence_shift: int, companion: float = 0.0, note: str = "") -> str:
    """Title of the wrist plot: the rotation in use, the rotation-free network's share while the
    estimate is still learning, ``note`` (the wearer's calibration), and a warning when the evidence
    disagrees with the bound."""
    from emgpilot.classifiers.wrist import signed_shift

    used, seen = signed_shift(shift), signed_shift(evidence_shift)
    title = f"wrist network (last active window), armband {used:+d} electrode{'s' if abs(used) != 1 else ''}"
    if companion > 0:
        title += f" (still learning: rotation-free network {companion:.0%})"
    if note:
        title += f", {note}"
    if seen != used:
        title += f"; evidence says {seen:+d}: check the armband or set wrist_max_rotation = -1"
    return title


ROWS = ("cue", "gesture", "recorded", "command", "safety")
ROW_COLORS = {"cue": "#808080", "gesture": "#4363d8", "recorded": "#e6194b", "command": "#3cb44b", "safety": "#f58231"}


def gesture_detail(ev: GestureEvent) -> str:
    """Confidence, and how much the wearer's own fist level moved a fist-vs-flexion decision."""
    detail = f"confidence {ev.confidence:.2f}"
    nats = ev.evidence.get("fist_level_nats", 0.0)
    if nats:
        detail += f"; own fist level {nats:+.1f} nats towards {'fist' if nats > 0 else 'flexion'}"
    return detail


def event_row(ev: Event, recorded: bool = False) -> tuple[str, str, str] | None:
    """(timeline row, short text, detail) of an event; None for events not shown.

    Of a recording's own derived events only the gestures are shown (the *recorded* row)."""
    if recorded:
        return ("recorded", ev.gesture, gesture_detail(ev)) if isinstance(ev, GestureEvent) else None
    if isinstance(ev, CueEvent):
        return "cue", ev.label, ""
    if isinstance(ev, GestureEvent):
        return "gesture", ev.gesture, gesture_detail(ev)
    if isinstance(ev, CommandEvent):
        if not ev.source.startswith(("safety", "user", "mapper")):
            return None
        if ev.source.startswith("mapper"):
            return None  # what the mapper asked; the safety row says what was sent or refused
        return "command", ev.command, ev.source
    if isinstance(ev, SafetyEvent):
        return "safety", ev.action, ev.reason
    if isinstance(ev, StatusEvent):
        return "safety", f"{ev.device} {ev.status}", ev.detail
    if isinstance(ev, GapEvent):
        return "safety", f"gap {ev.source_stream}", ev.reason
    return None


class Timeline(pg.PlotWidget):
    """Rows of markers with labels: cues, gestures (recomputed and recorded), commands, safety."""

    MAX_LABELS = 300
    LABELS_UP_TO_S = 120.0

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        self.setMenuEnabled(False)
        self.setMouseEnabled(x=False, y=False)
        self.getAxis("left").setWidth(72)
        self.getAxis("left").setTicks([[(-i, r) for i, r in enumerate(ROWS)]])
        self.setYRange(-len(ROWS) + 0.5, 0.7, padding=0)
        cache_axes(self.getPlotItem())
        time_axis(self.getPlotItem())
        self.scatter = pg.ScatterPlotItem(size=9, pen=None)
        self.addItem(self.scatter)
        self._points: deque[dict] = deque(maxlen=5000)
        self._labels: deque[pg.TextItem] = deque()
        self.count: dict[str, int] = dict.fromkeys(ROWS, 0)
        self._dirty = False
        self._labels_shown = True

    def add(self, events: list[Event], recorded: bool = False) -> None:
        for ev in events:
            info = event_row(ev, recorded)
            if info is None:
                continue
            row, text, _ = info
            y = -ROWS.index(row)
            self.count[row] += 1
            self._points.append({"pos": (ev.t, y), "brush": ROW_COLORS[row]})
            label = pg.TextItem(text, color=ROW_COLORS[row], anchor=(0, 1))
            label.setCacheMode(CACHE)
            label.setVisible(self._labels_shown)
            label.setPos(ev.t, y)
            self.addItem(label)
            self._labels.append(label)
            if len(self._labels) > self.MAX_LABELS:
                self.removeItem(self._labels.popleft())
            self._dirty = True

    def clear_events(self) -> None:
        for label in self._labels:
            self.removeItem(label)
        self._labels.clear()
        self._points.clear()
        self.count = dict.fromkeys(ROWS, 0)
        self.scatter.clear()

    def refresh(self, x0: float, x1: float) -> None:
        shown = x1 - x0 <= self.LABELS_UP_TO_S  # zoomed far out, labels would only pile up
        if shown != self._labels_shown:
            self._labels_shown = shown
            for label in self._labels:
                label.setVisible(shown)
        if self._dirty:
            self.scatter.setData(list(self._points))
            self._dirty = False
        self.setXRange(x0, x1, padding=0)
        settle(self)


class EventLog(QtWidgets.QTableWidget):
    """The newest events first: time, kind, what, why."""

    MAX_ROWS = 300

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(0, 4, parent)
        self.setHorizontalHeaderLabels(["t (s)", "kind", "what", "detail / reason"])
        self.horizontalHeader().setStretchLastSection(True)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setColumnWidth(0, 60)
        self.setColumnWidth(1, 70)
        self.setColumnWidth(2, 110)

    def add(self, events: list[Event]) -> None:
        rows = [(ev, event_row(ev)) for ev in events]
        rows = [(ev, info) for ev, info in rows if info is not None][-self.MAX_ROWS :]
        if not rows:
            return
        for ev, (kind, text, detail) in rows:
            self.insertRow(0)
            for col, value in enumerate((f"{ev.t:.2f}" if math.isfinite(ev.t) else "-", kind, text, detail)):
                item = QtWidgets.QTableWidgetItem(value)
                self.setItem(0, col, item)
        while self.rowCount() > self.MAX_ROWS:
            self.removeRow(self.rowCount() - 1)
