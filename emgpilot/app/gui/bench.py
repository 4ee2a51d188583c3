"""GUI frame benchmark: 30 fps with every plot live and an hour of history?

The window is filled with one hour of data for every stream the demo shows (forearm EMG and
envelopes, upper-arm EMG and envelopes, IMU, the four detector streams with their armed/active
states, wrist probabilities, decisions, 10 Hz drone telemetry of a looping flight, events). The
samples are white noise: the most ink a curve can need. Then a 30 fps timer paced like the
window's (:class:`~emgpilot.app.gui.pacing.FramePacer`) runs while each frame appends 1/30 s of
new data (what a live session adds), in three views: the default 10 s window, the whole hour as
the window's timer draws it (panels redrawn when they moved half a pixel or have new data at
most 0.1 s old), and the whole hour with every panel redrawn on every frame (the worst case).
Then a real demo session (runner thread at speed 1). Reported per scenario: frames per second
achieved, signal-plot redraws per second, and the GUI-thread time per frame (ring-buffer appends
+ curve updates + painting), wall and CPU, median and 95th percentile. One unmeasured second of
frames precedes each scenario.
Run: ``emgpilot gui --bench`` (offscreen if there is no display).
"""

from __future__ import annotations

import gc
import json
import math
import os
import statistics
import time
from typing import Any

import numpy as np

from emgpilot.app.gui.pacing import FPS, FramePacer
from emgpilot.classifiers.detectors import STATE_CHANNELS
from emgpilot.drone.backend import DRONE_TELEMETRY
from emgpilot.signals.streams import (
    DECISION,
    FOREARM_EMG,
    FOREARM_IMU,
    UPPER_EMG,
    Chunk,
    CommandEvent,
    GestureEvent,
    SafetyEvent,
    StreamInfo,
)


def _streams() -> list[StreamInfo]:
    env_f = StreamInfo("forearm_emg.envelope", "envelope", 100.0, FOREARM_EMG.channels)
    filt_u = StreamInfo("upper_emg.filtered", "filtered", 1000.0, UPPER_EMG.channels)
    env_u = StreamInfo("upper_emg.envelope", "envelope", 100.0, UPPER_EMG.channels)
    dets = [
        StreamInfo(f"detector.{n}", "detector", 20.0, STATE_CHANNELS + extra)
        for n, extra in (
            ("activation", ()),
            ("fist", ()),
            ("stiffen", ("biceps_level", "triceps_level")),
            ("rotation", ("rate",)),
        )
    ]
    wrist = StreamInfo("wrist", "probabilities", 20.0, ("rest", "fist", "wrist_flexion", "wrist_extension"))
    return [FOREARM_EMG, env_f, UPPER_EMG, filt_u, env_u, FOREARM_IMU, *dets, wrist, DECISION, DRONE_TELEMETRY]


def _chunks(t0: float, t1: float, rng: np.random.Generator) -> list[Any]:
    out: list[Any] = []
    for info in _streams():
        # sample k at k / rate: consecutive chunks neither overlap nor leave holes
        k0, k1 = math.ceil(t0 * info.rate_hz - 1e-9), math.ceil(t1 * info.rate_hz - 1e-9)
        if k1 <= k0:
            continue
        t = np.arange(k0, k1) / info.rate_hz
        data = rng.normal(0.0, 20.0, size=(k1 - k0, info.n_channels)).astype(np.float32)
        if info.name == "drone_telemetry":
            # a drone flying slow loops over the course (a 5 min trail stays on the map)
            a = 2.0 * math.pi * t / 60.0
            data[:, :4] = np.stack([3.0 + 3.0 * np.sin(a), 2.0 * np.sin(2 * a), 1.5 + 0.3 * np.sin(a), a], axis=1)
            data[:, 4:9] = 0.0
            data[:, 9] = 100.0 - t / 60.0
            data[:, 10] = 3.0  # flying
            data[:, 11] = 2.0  # connected
        elif info.name.startswith("detector."):
            # states as a detector has them: armed after its cold start, active around each gesture
            data[:, info.channels.index("armed")] = t >= 10.0
            data[:, info.channels.index("active")] = (t >= 10.0) & (np.abs(t - 5.0 * np.round(t / 5.0)) < 0.4)
        out.append(Chunk(info, t, data))
    k = int(t0 // 5)
    if int(t1 // 5) > k:  # a gesture, a command and a safety decision every 5 s
        te = (k + 1) * 5.0
        out += [
            GestureEvent(t=te, gesture="fist", primitive="fist", confidence=0.9),
            CommandEvent(t=te, command="forward", source="safety"),
            SafetyEvent(t=te, action="allow", reason="bench"),
        ]
    return out


def run_bench(frames: int = 150, history_s: float = 3600.0) -> int:
    """Print the benchmark's JSON; returns 0."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt6 import QtCore, QtWidgets

    from emgpilot.app.gui.main_window import MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    import tempfile
    from pathlib import Path

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        win = MainWindow(None, settings_path=Path(tmp) / "gui.toml", history_s=history_s, autostart=False)
        win.channels = {s.name: s.channels for s in _streams()}
        win.resize(1600, 1000)
        win.show()
        rng = np.random.default_rng(0)
        fill0 = time.perf_counter()
        step = 10.0
        t = 0.0
        while t < history_s:
            win.store.add(_chunks(t, t + step, rng))
            t += step
        fill_s = time.perf_counter() - fill0
        win.store.new_events = []
        results |= {
            "history_s": history_s,
            "samples_held": int(sum(len(b) for b in win.store.buffers.values())),
            "ring_buffer_mb": round(win.store.nbytes / 1e6, 1),
            "fill_s": round(fill_s, 2),
            "platform": QtWidgets.QApplication.platformName(),
            "load_average_1min": round(os.getloadavg()[0], 2),
            "cpus": os.cpu_count(),
        }
        state = {"t": t}

        def measure(work: Any, prepare: Any = None) -> dict[str, Any]:
            """Run ``work`` on a 30 fps timer for ``frames`` frames; its GUI-thread wall and CPU time.

            ``prepare`` runs before each frame, outside the measured time (the device's work).
            One second of frames runs first, unmeasured (the view settles, caches fill)."""
            for _ in range(int(FPS)):
                if prepare is not None:
                    prepare()
                work()
                app.processEvents()
            gc.collect()  # the fill's garbage is not the frames' cost
            times: list[float] = []
            cpu: list[float] = []
            starts: list[float] = []
            loop = QtCore.QEventLoop()

            def tick() -> None:
                timer.start(pacer.frame_started())  # the window's own pacing (see pacing.py)
                starts.append(time.perf_counter())
                if prepare is not None:
                    prepare()
                w0 = time.perf_counter()
                c0 = time.thread_time()
                work()
                app.processEvents()  # paint now, so the painting is inside the measured time
                times.append((time.perf_counter() - w0) * 1000.0)
                cpu.append((time.thread_time() - c0) * 1000.0)
                if len(times) >= frames:
                    loop.quit()

            pacer = FramePacer(FPS)
            timer = QtCore.QTimer()
            timer.setSingleShot(True)
            timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
            timer.timeout.connect(tick)
            redraws0 = win.frame_stats.signal_redraws
            timer.start(0)
            loop.exec()
            timer.stop()
            fps = (len(starts) - 1) / (starts[-1] - starts[0])  # n frame starts span n - 1 periods
            return {
                "fps": round(fps, 1),
                "signal_plot_redraws_per_s": round((win.frame_stats.signal_redraws - redraws0) / len(starts) * fps, 1),
                "gui_ms_median": round(statistics.median(times), 2),
                "gui_ms_p95": round(float(np.percentile(times, 95)), 2),
                "gui_cpu_ms_median": round(statistics.median(cpu), 2),
                "gui_cpu_ms_p95": round(float(np.percentile(cpu, 95)), 2),
            }

        pending: list[Any] = []

        def next_data() -> None:  # the device's data: not GUI work
            pending[:] = _chunks(state["t"], state["t"] + 1.0 / FPS, rng)
            state["t"] += 1.0 / FPS

        def history_frame() -> None:
            win.store.add(pending)
            win.frame(every_panel=False)  # what the window's timer does

        def history_frame_every_panel() -> None:
            win.store.add(pending)
            win.frame(every_panel=True)

        scenarios = (
            ("10 s window", 10.0, history_frame),
            ("1 h window", history_s, history_frame),
            # the worst case: every panel redrawn on every frame, even when nothing moved by a pixel
            ("1 h window, every panel redrawn every frame", history_s, history_frame_every_panel),
        )
        for name, window_s, work in scenarios:
            win.window_s = window_s
            win.signals.follow = True
            results[name] = measure(work, next_data) | {"points_drawn": win.frame_stats.points}
        # a real demo session: synthetic arm at speed 1, pipeline and simulator on the runner thread
        # (competing for the interpreter), frames drawn by the same timer
        from emgpilot.app.gui.main_window import demo_spec

        win.window_s = 10.0
        win.open_session(demo_spec(seed=0, speed=1.0))
        live = measure(lambda: win.frame(every_panel=False))
        lat = sorted(win.session.latency_ms) if win.session is not None else []
        results["live demo session"] = live | {
            "data_s": round(win.store.t_latest, 2),
            "processing_latency_ms_median": round(statistics.median(lat), 2) if lat else None,
        }
        win.shutdown()
        win.close()
        win.deleteLater()
        app.processEvents()
    print(json.dumps(results, indent=2))
    return 0
