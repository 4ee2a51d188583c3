"""The window's frame pacing, on a fake clock: a fixed 30 fps schedule that absorbs a late frame
and drops (never bursts) the slots it cannot make; the gate that redraws a scrolling panel only
when it has something new to show."""

from __future__ import annotations

import itertools

import pytest

from emgpilot.app.gui.pacing import FramePacer, RedrawGate


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run(pacer: FramePacer, clock: FakeClock, frame_costs_s: list[float]) -> list[float]:
    """Simulate the one-shot timer: each frame starts when the previous one's delay has passed
    (or when the frame itself ended, if that is later). Returns the frames' start times."""
    starts = []
    for cost in frame_costs_s:
        starts.append(clock.now)
        delay_s = pacer.frame_started() / 1000.0
        fire = clock.now + delay_s
        clock.now += cost  # the frame's work and painting
        clock.now = max(clock.now, fire)
    return starts


def test_cheap_frames_keep_exactly_30_per_second():
    clock = FakeClock()
    starts = run(FramePacer(30.0, clock), clock, [0.010] * 301)
    assert starts[-1] - starts[0] == pytest.approx(10.0, abs=0.002)  # 300 periods in 10 s, no drift


def test_a_late_frame_is_absorbed_by_the_next_ones():
    clock = FakeClock()
    costs = [0.010] * 10 + [0.050] + [0.010] * 20  # one frame 17 ms over the 33 ms budget
    starts = run(FramePacer(30.0, clock), clock, costs)
    assert starts[11] - starts[10] == pytest.approx(0.050)  # the next frame starts at once
    # ... and the schedule is back on its 30 fps grid: frame k at t0 + k / 30
    assert starts[-1] - starts[0] == pytest.approx(30 / 30.0, abs=0.002)


def test_slots_that_cannot_be_made_are_dropped_not_burst():
    clock = FakeClock()
    costs = [0.010] * 5 + [0.200] + [0.010] * 30  # a 200 ms stall: five slots missed
    starts = run(FramePacer(30.0, clock), clock, costs)
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert gaps[5] == pytest.approx(0.200)  # the stalled frame
    # then straight back on the 30 fps grid: no catching up with frames drawn back to back
    assert all(g == pytest.approx(1 / 30.0, abs=0.001) for g in gaps[6:])
    frames_in_first_second = sum(1 for s in starts if s < starts[0] + 1.0 - 1e-6)
    assert frames_in_first_second == 30 - 5  # the stall cost its missed slots, nothing more


def test_slow_frames_run_back_to_back_at_their_own_rate():
    clock = FakeClock()
    starts = run(FramePacer(30.0, clock), clock, [0.050] * 21)
    assert starts[-1] - starts[0] == pytest.approx(20 * 0.050)  # 20 fps, never two frames at once


def test_after_a_long_pause_the_schedule_restarts_without_catching_up():
    clock = FakeClock()
    pacer = FramePacer(30.0, clock)
    assert pacer.frame_started() == 33
    clock.now += 5.0  # e.g. a modal dialog held the event loop
    assert 0 < pacer.frame_started() <= 34  # the next slot on the grid, not 150 frames at once


def test_bad_rate_is_refused():
    with pytest.raises(ValueError, match="frames per second"):
        FramePacer(0.0)


def test_redraw_gate_redraws_a_scrolling_view_on_every_pixel_it_moves():
    clock = FakeClock()
    gate = RedrawGate(clock=clock)
    width_px, window_s = 750.0, 10.0  # 10 s over 750 px: 1/30 s of data is 2.5 px
    drawn = 0
    for k in range(30):
        clock.now += 1 / 30
        t1 = 100.0 + k / 30
        drawn += gate.due("signals", t1 - window_s, t1, width_px, data_version=k)
    assert drawn == 30


def test_redraw_gate_refreshes_an_hour_view_ten_times_a_second_not_thirty():
    clock = FakeClock()
    gate = RedrawGate(clock=clock)
    width_px, window_s = 750.0, 3600.0  # 4.8 s per pixel: 30 frames move it 0.2 px
    drawn = []
    for k in range(30):
        clock.now += 1 / 30
        t1 = 5000.0 + k / 30
        drawn.append(gate.due("signals", t1 - window_s, t1, width_px, data_version=k))
    # the first frame draws, then every third frame: new data shown within 0.1 s
    assert drawn[0] and sum(drawn) == 10
    assert all(sum(drawn[i : i + 3]) >= 1 for i in range(0, 30, 3))


def test_redraw_gate_skips_a_still_view_without_new_data_and_redraws_what_was_hidden():
    clock = FakeClock()
    gate = RedrawGate(clock=clock)
    assert gate.due("detectors", 0.0, 10.0, 500.0, data_version=1)
    clock.now += 5.0
    assert not gate.due("detectors", 0.0, 10.0, 500.0, data_version=1)  # paused replay: nothing new
    assert gate.due("detectors", 0.0, 10.0, 500.0, data_version=2)  # new data (5 s since the last redraw)
    assert gate.due("detectors", 0.02, 10.02, 500.0, data_version=2)  # the user panned by a pixel
    gate.forget("detectors")  # hidden behind another tab
    assert gate.due("detectors", 0.02, 10.02, 500.0, data_version=2)  # shown again: drawn at once
