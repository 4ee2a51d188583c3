"""Ring buffers and the min/max pyramid behind the live plots, and the GUI's non-Qt helpers
(cue plans and sequencing, pausable replay, settings)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emgpilot.app.gui.cues import CuePlan, CueSequencer, score_table
from emgpilot.app.gui.ring import RingBuffer
from emgpilot.app.gui.settings import GuiSettings
from emgpilot.signals.streams import CueEvent, GestureEvent


def fill(buf: RingBuffer, n: int, rate: float, seed: int = 0, chunk_max: int = 700) -> tuple[np.ndarray, np.ndarray]:
    """Append ``n`` samples in random chunk sizes; returns everything appended."""
    rng = np.random.default_rng(seed)
    t_all = np.arange(n) / rate
    x_all = rng.normal(size=(n, buf.n_channels)).astype(np.float32)
    i = 0
    while i < n:
        m = int(rng.integers(1, chunk_max))
        buf.append(t_all[i : i + m], x_all[i : i + m])
        i += m
    return t_all, x_all


def test_short_window_is_the_raw_samples_without_copy():
    buf = RingBuffer(1000, 3)
    t, x = fill(buf, 2500, 100.0)
    wt, wx = buf.window(20.0, 24.0, max_points=2000)
    lo, hi = np.searchsorted(t, [20.0, 24.0])
    np.testing.assert_array_equal(wt, t[lo - 1 : hi + 1])
    np.testing.assert_array_equal(wx, x[lo - 1 : hi + 1])
    assert np.shares_memory(wx, buf.raw.x)  # a view into the ring, not a copy


def test_ring_keeps_only_the_newest_capacity():
    buf = RingBuffer(1000, 2)
    t, x = fill(buf, 3456, 200.0)
    assert len(buf) == 1000 and buf.count == 3456
    vt, vx = buf.raw.view()
    np.testing.assert_array_equal(vt, t[-1000:])
    np.testing.assert_array_equal(vx, x[-1000:])


def test_one_huge_append_larger_than_capacity():
    buf = RingBuffer(500, 1)
    t = np.arange(2000) / 10.0
    x = np.arange(2000, dtype=np.float32)[:, None]
    buf.append(t, x)
    vt, vx = buf.raw.view()
    np.testing.assert_array_equal(vx[:, 0], x[-500:, 0])
    wt, wy = buf.window(vt[0], vt[-1], max_points=50)
    assert wt.shape[0] <= 2 * 50 + 2 * 4 * 7 and wy[:, 0].max() == x[-1, 0]


@pytest.mark.parametrize("max_points", [100, 600, 2000])
def test_reduced_window_keeps_every_extreme(max_points):
    """Min/max decimation: the reduced curve spans exactly the data's extremes, newest sample included."""
    buf = RingBuffer(200_000, 2)
    t, x = fill(buf, 150_000, 1000.0, seed=4)
    wt, wy = buf.window(0.0, t[-1], max_points=max_points)
    assert wt.shape[0] <= 2 * max_points + 2 * 4 * 7  # blocks plus the not-yet-complete tails
    np.testing.assert_array_equal(wy.min(axis=0), x.min(axis=0))
    np.testing.assert_array_equal(wy.max(axis=0), x.max(axis=0))
    # blocks are stamped at their first sample: the last point is within one block of the newest sample
    assert t[-1] - 0.064 < wt[-1] <= t[-1] and np.all(np.diff(wt) >= 0)
    # a sub-range: extremes of the samples inside it (blocks overlapping the edges may add a few)
    a, b = 40.0, 90.0
    wt, wy = buf.window(a, b, max_points=max_points)
    inside = (t >= a) & (t <= b)
    assert wy.max(axis=0).tolist() >= x[inside].max(axis=0).tolist()
    assert wt[0] <= a + 1.0 and wt[-1] >= b - 1.0


def test_an_hour_of_history_reduces_to_a_few_thousand_points():
    rate = 1000.0
    buf = RingBuffer(int(3600 * rate), 1)
    step = 50_000
    for i in range(0, int(3600 * rate), step):
        t = (i + np.arange(step)) / rate
        buf.append(t, np.sin(t)[:, None])
    wt, _ = buf.window(0.0, 3600.0, max_points=1200)
    assert 300 <= wt.shape[0] <= 1200 + 2 * 4 * 7


def test_clear_forgets_everything():
    buf = RingBuffer(100, 1)
    fill(buf, 250, 10.0)
    buf.clear()
    assert len(buf) == 0 and buf.latest() is None and buf.window(0, 100)[0].shape[0] == 0


# --------------------------------------------------------------------------- cues


def test_cue_plan_order_and_duration():
    plan = CuePlan(gestures=("fist", "stiffen"), repetitions=3, cue_s=2.0, rest_s=1.0, lead_in_s=2.0, seed=1)
    order = plan.order()
    assert sorted(order) == sorted(["fist", "stiffen"] * 3)
    assert plan.duration_s == 2.0 + 6 * 3.0
    assert CuePlan(gestures=("fist", "stiffen"), repetitions=2, random_order=False).order() == [
        "fist",
        "stiffen",
        "fist",
        "stiffen",
    ]
    with pytest.raises(ValueError, match="unknown gestures"):
        CuePlan(gestures=("jump",))
    with pytest.raises(ValueError, match="at least one"):
        CuePlan(gestures=())


class FakeArm:
    def __init__(self) -> None:
        self.performed: list[tuple[str, float]] = []

    def perform(self, label: str, duration_s: float | None = None) -> float:
        self.performed.append((label, float(duration_s or 0.0)))
        return 0.0


def test_sequencer_emits_cues_in_data_time_and_scores():
    plan = CuePlan(
        gestures=("fist", "wave_up"), repetitions=1, cue_s=2.0, rest_s=2.0, lead_in_s=1.0, random_order=False
    )
    seq = CueSequencer(plan)
    arm = FakeArm()
    emitted: list[CueEvent] = []
    t = 10.0
    state = None
    while not seq.finished(t):
        emitted += seq.update(t, arm)
        if t == 12.0:
            state = seq.state(t)
        t = round(t + 0.02, 6)
    labels = [(round(c.t, 2), c.label) for c in emitted]
    assert labels == [(10.0, "rest"), (11.0, "fist"), (13.0, "rest"), (15.0, "wave_up"), (17.0, "rest")]
    assert [a[0] for a in arm.performed] == ["fist", "wave_up"]
    assert (
        state is not None
        and state.label == "fist"
        and state.index == 1
        and state.total == 2
        and state.remaining_s == pytest.approx(1.0)
    )
    seq.observe([GestureEvent(t=11.6, gesture="fist", primitive="fist"), GestureEvent(t=15.5, gesture="wave_down")])
    score = seq.score(has_imu=True)
    assert (score.cued, score.correct, score.wrong) == (2, 1, 1)
    rows = score_table(score)
    assert rows[-1] == ("all", 2, 1, 1, 0, "50.0")


# --------------------------------------------------------------------------- replay


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def short_recording(tmp_path_factory):
    from emgpilot.signals.recording import RecordingWriter
    from emgpilot.signals.synthetic import Schedule, SyntheticArm

    path = tmp_path_factory.mktemp("replay") / "r.mcap"
    arm = SyntheticArm(seed=0, speed=math.inf, schedule=Schedule.idle(), duration_s=3.0)
    with RecordingWriter(path, arm.streams(), background_flush=False) as w:
        arm.start()
        while not arm.finished:
            w.write(arm.read(0.0))
    return path


def test_replay_source_pause_speed_and_start_offset(short_recording):
    from emgpilot.app.gui.replay import ReplaySource

    clock = FakeClock()
    dev = ReplaySource(short_recording, speed=1.0, clock=clock)
    dev.start()
    assert dev.read(0.0)  # the first message is due at once
    clock.now = 0.5
    dev.read(0.0)
    assert 0.45 <= dev.position - dev.t_first <= 0.5
    dev.set_paused(True)
    clock.now = 2.0
    assert dev.read(0.0) == []  # paused: nothing, however much wall time passes
    dev.set_paused(False)
    clock.now = 2.25
    dev.read(0.0)
    assert 0.7 <= dev.position - dev.t_first <= 0.75  # resumed where it paused
    dev.set_speed(4.0)
    clock.now = 2.5
    dev.read(0.0)
    assert 1.7 <= dev.position - dev.t_first <= 1.75  # 0.25 s wall at 4x
    # start offset: everything before it at once (the pipeline fast-forwards), then paced
    late = ReplaySource(short_recording, speed=1.0, start_at=2.0, clock=clock)
    late.start()
    while late.position < late.t_first + 2.0 - 0.05:
        assert late.read(0.0)
    late.read(0.0)  # the first paced read anchors playback at this wall time
    clock.now += 0.5
    late.read(0.0)
    assert 2.4 <= late.position - late.t_first <= 2.5


# --------------------------------------------------------------------------- settings


def test_settings_round_trip_and_bad_files(tmp_path, caplog):
    path = tmp_path / "sub" / "gui.toml"
    s = GuiSettings(
        source="recording", drone="bebop", ip="10.1.1.1", mapping='C:\\maps\\"x".toml', cue_gestures=["fist"]
    )
    s.save(path)
    assert GuiSettings.load(path) == s
    path.write_text('source = 3\nunknown = "x"\nwindow_s = 30\n', encoding="utf-8")
    loaded = GuiSettings.load(path)
    assert loaded.source == "synthetic" and loaded.window_s == 30.0
    assert "unknown key 'unknown'" in caplog.text and "source should be str" in caplog.text
    path.write_text("not toml [", encoding="utf-8")
    assert GuiSettings.load(path) == GuiSettings()


def test_device_counters_sum_the_parts_of_a_composite_device():
    from emgpilot.app.gui.session import Session

    class Fake:
        def __init__(self, stats):
            self._stats = stats

        def stats(self):
            return self._stats

    class Holder:
        pass

    holder = Holder()
    holder.device = Holder()
    holder.device.inner = Fake(
        {"myo": {"status": "streaming", "dropped": 3, "battery": 80}, "myoware": {"status": "streaming", "dropped": 2}}
    )
    out = Session.device_counters(holder)
    assert out == {"dropped": 5, "status": "streaming/streaming", "battery": 80}
    holder.device.inner = Fake({"status": "searching", "dropped": 0})
    assert Session.device_counters(holder) == {"dropped": 0, "status": "searching"}
    holder.device.inner = object()
    assert Session.device_counters(holder) == {}


def test_history_beyond_the_raw_ring_lives_on_in_the_pyramid():
    """Raw samples for 100 s, blocks for 1000 s: a zoomed-out window still spans all of it."""
    rate = 100.0
    buf = RingBuffer(int(1000 * rate), 2, raw_capacity=int(100 * rate), min_level_rows=64)
    t, x = fill(buf, int(1000 * rate), rate, seed=7)
    assert len(buf) == int(100 * rate)
    wt, wy = buf.window(0.0, t[-1], max_points=1000)
    assert wt[0] <= 1.0 and wt[-1] > t[-1] - 1.0 and wt.shape[0] <= 1000 + 2 * 4 * 7
    np.testing.assert_array_equal(wy.min(axis=0), x.min(axis=0))
    np.testing.assert_array_equal(wy.max(axis=0), x.max(axis=0))
    # a short window inside the raw part is raw; one before it comes from blocks
    _, rx = buf.window(950.0, 955.0, max_points=1000)
    assert np.shares_memory(rx, buf.raw.x)
    bt, _ = buf.window(300.0, 305.0, max_points=1000)
    # only the levels that still cover t = 300 s can answer: coarser blocks (64 rows kept here)
    assert bt.shape[0] > 0 and bt[0] <= 300.0 < bt[0] + 4**6 / rate
    memory = sum(r.t.nbytes + r.x.nbytes for r in (buf.raw, *buf.levels))
    full = RingBuffer(int(1000 * rate), 2, min_level_rows=64)
    assert memory < 0.3 * sum(r.t.nbytes + r.x.nbytes for r in (full.raw, *full.levels))
