"""Metric definitions on small hand-built cue/event sequences with known answers."""

import math

import numpy as np
import pytest

from emgpilot.classifiers.metrics import (
    REJECTED,
    UNLABELLED,
    EventScore,
    WindowScore,
    cue_windows,
    json_safe,
    score_events,
    score_windows,
    window_truth,
)
from emgpilot.signals.streams import CueEvent, GestureEvent
from emgpilot.signals.vocabulary import DECISION_CLASSES, PRIMITIVE_OF


def cues(*pairs):
    return [CueEvent(t=float(t), label=label) for t, label in pairs]


def ev(t, gesture, primitive=None):
    return GestureEvent(t=float(t), gesture=gesture, primitive=primitive or PRIMITIVE_OF.get(gesture, gesture))


# Four cued gestures, each 5 s, separated by 5 s of rest; data ends at 45 s.
CUED = cues(
    (0, "rest"),
    (5, "fist"),
    (10, "rest"),
    (15, "stiffen"),
    (20, "rest"),
    (25, "wave_up"),
    (30, "rest"),
    (35, "rotate_cw"),
    (40, "rest"),
)


def test_cue_windows_merge_repeats_and_close_at_end():
    w = cue_windows(cues((0, "rest"), (1, "fist"), (2, "fist"), (3, "rest")), t_end=4.0)
    assert [(x.onset, x.offset, x.label) for x in w] == [(0, 1, "rest"), (1, 3, "fist"), (3, 4, "rest")]
    assert w[1].target == "fist"


def test_correct_wrong_missed_and_latency():
    events = [ev(5.3, "fist"), ev(16.0, "fist"), ev(26.0, "wave_up"), ev(36.5, "rotate_cw")]
    s = score_events(CUED, events, t_end=45.0, has_imu=True)
    assert (s.cued, s.correct, s.wrong, s.missed) == (4, 3, 1, 0)
    assert s.accuracy == pytest.approx(0.75)
    assert sorted(s.latencies_s) == pytest.approx([0.3, 1.0, 1.5])
    lat = s.latency_ms()
    assert lat["median"] == pytest.approx(1000.0)
    assert lat["p90"] == pytest.approx(np.percentile([300, 1000, 1500], 90))
    assert s.per_gesture["stiffen"] == {"cued": 1, "correct": 0, "wrong": 1, "missed": 0}
    assert s.confusion["stiffen"] == {"fist": 1}
    assert s.false_events == 0


def test_only_the_first_event_counts_and_missed_when_none():
    # fist cue answered first by a wrong gesture, then the right one: wrong. stiffen: nothing -> missed.
    events = [ev(6.0, "wave_up"), ev(7.0, "fist"), ev(26.0, "wave_up"), ev(36.0, "rotate_cw")]
    s = score_events(CUED, events, t_end=45.0, has_imu=True)
    assert (s.correct, s.wrong, s.missed, s.extra) == (2, 1, 1, 1)
    assert s.confusion["stiffen"] == {"none": 1}


def test_grace_period_after_offset():
    # 10.9 s is 0.9 s after the fist cue ended: still answers it, and is not a false event.
    s = score_events(CUED, [ev(10.9, "fist")], t_end=45.0, has_imu=True)
    assert s.per_gesture["fist"]["correct"] == 1 and s.false_events == 0
    # 11.1 s is past the 1 s grace: the cue is missed and the event is a false one during rest.
    s = score_events(CUED, [ev(11.1, "fist")], t_end=45.0, has_imu=True)
    assert s.per_gesture["fist"]["missed"] == 1 and s.false_events == 1


def test_false_events_per_minute_of_rest():
    # Rest: 0-5 (5 s), then 10-15, 20-25, 30-35, 40-45 each minus 1 s grace = 4 s: 5 + 4 * 4 = 21 s.
    events = [ev(2.0, "fist"), ev(12.0, "stiffen"), ev(44.0, "rotate_ccw")]
    s = score_events(CUED, events, t_end=45.0, has_imu=True)
    assert s.rest_s == pytest.approx(21.0)
    assert s.false_events == 3
    assert s.false_per_min == pytest.approx(3 / (21.0 / 60.0))
    assert s.missed == 4


def test_other_motion_rate_and_no_false_events_during_it():
    c = cues((0, "rest"), (5, "radial_deviation"), (10, "rest"), (15, "hand_open"), (20, "rest"), (25, "other:B"))
    s = score_events(c, [ev(6.0, "fist"), ev(7.0, "fist")], t_end=30.0, has_imu=True)
    assert s.other_windows == 3 and s.other_with_event == 1
    assert s.other_motion_rate == pytest.approx(1 / 3)
    assert s.cued == 0 and s.false_events == 0
    assert math.isnan(s.accuracy)


def test_without_imu_waves_score_by_primitive_and_rotations_are_not_scored():
    # wave_up is wrist extension; an event saying wave_right (also extension) is right without an IMU.
    events = [ev(5.5, "fist"), ev(16.0, "stiffen"), ev(26.0, "wave_right"), ev(36.0, "rotate_cw")]
    s = score_events(CUED, events, t_end=45.0, has_imu=False)
    assert (s.cued, s.correct, s.unscored_windows) == (3, 3, 1)
    assert set(s.per_gesture) == {"fist", "stiffen", "wrist_extension"}
    # With an IMU the same event is the wrong wave.
    s = score_events(CUED, events, t_end=45.0, has_imu=True)
    assert s.per_gesture["wave_up"]["wrong"] == 1


def test_primitive_cues_of_public_datasets():
    c = cues((0, "rest"), (5, "wrist_flexion"), (10, "rest"), (15, "wrist_extension"), (20, "rest"))
    events = [ev(6.0, "wave_down"), ev(16.0, "wave_down")]
    s = score_events(c, events, t_end=25.0, has_imu=False)
    assert s.per_gesture["wrist_flexion"]["correct"] == 1
    assert s.per_gesture["wrist_extension"]["wrong"] == 1


def test_back_to_back_cues_do_not_share_an_event():
    c = cues((0, "fist"), (2, "stiffen"), (4, "rest"))
    s = score_events(c, [ev(2.5, "stiffen")], t_end=8.0, has_imu=True)
    assert s.per_gesture["fist"]["missed"] == 1 and s.per_gesture["stiffen"]["correct"] == 1


def test_event_scores_pool_by_summing():
    a = score_events(CUED, [ev(5.3, "fist")], t_end=45.0, has_imu=True)
    b = score_events(CUED, [ev(2.0, "fist"), ev(16.0, "stiffen")], t_end=45.0, has_imu=True)
    p = EventScore.pooled([a, b])
    assert (p.cued, p.correct, p.missed, p.false_events) == (8, 2, 6, 1)
    assert p.rest_s == pytest.approx(a.rest_s + b.rest_s)
    assert p.per_gesture["fist"] == {"cued": 2, "correct": 1, "wrong": 0, "missed": 1}
    assert len(p.latencies_s) == 2


# --------------------------------------------------------------------------- window level
def libemg_reference(y_true, y_pred, null):
    """LibEMG 2.0 OfflineMetrics, re-implemented literally from its documentation (for cross-checking)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    rej = np.mean(y_pred == -1)
    keep = y_pred != -1
    t, p = y_true[keep], y_pred[keep]
    ca = np.mean(t == p)
    active = p != null
    aer = 1 - np.mean(t[active] == p[active])
    ins = max(0.0, (np.count_nonzero(p[1:] != p[:-1]) - np.count_nonzero(t[1:] != t[:-1])) / len(p))
    return ca, aer, ins, rej


def test_window_metrics_libemg_demo_sequence():
    # LibEMG's own demo sequence (null class 2 there); class indices are ours: rest = 0.
    y_true = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3])
    y_pred = np.array([1, 0, 0, 0, 0, 2, 1, 1, 1, 1, 1, 1, 1, 2, 3, 3, 3, 3, 1, 1, 2, 3, 3, 3])
    s = score_windows(y_true, y_pred)
    # Right: 4 rest, 6 of class 1, 1 of class 2, 3 of class 3 = 14 of 24.
    assert s.CA == pytest.approx(14 / 24)
    # 20 windows predicted active (not rest); all 10 errors are among them.
    assert s.AER == pytest.approx(10 / 20)
    # prediction changes: 1-0, 0-2, 2-1, 1-2, 2-3, 3-1, 1-2, 2-3 = 8; truth changes 3 -> (8 - 3) / 24.
    assert s.INS == pytest.approx(5 / 24)
    assert s.REJ == 0.0
    ref = libemg_reference(y_true, y_pred, null=0)
    assert (s.CA, s.AER, s.INS, s.REJ) == pytest.approx(ref)


def test_window_metrics_rejection_and_unlabelled():
    y_true = np.array([0, 0, 1, 1, 1, 2, UNLABELLED, UNLABELLED])
    y_pred = np.array([0, REJECTED, 1, REJECTED, 2, 2, 1, 1])
    s = score_windows(y_true, y_pred)
    assert s.n == 6 and s.rejected == 2
    assert s.REJ == pytest.approx(2 / 6)
    assert s.CA == pytest.approx(3 / 4)  # rejected windows are left out of CA
    assert s.AER == pytest.approx(1 / 3)  # active predictions 1, 2, 2: one wrong
    assert s.INS == pytest.approx(0.0)
    assert (s.CA, s.AER, s.INS, s.REJ) == pytest.approx(libemg_reference(y_true[:6], y_pred[:6], 0))
    conf = s.confusion_dict()
    assert conf["labels"] == list(DECISION_CLASSES[:3])
    assert conf["matrix"] == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


def test_window_scores_pool_and_truth_lookup():
    c = cues((1.0, "rest"), (2.0, "fist"), (3.0, "radial_deviation"), (4.0, "rest"))
    times = np.array([0.5, 1.0, 1.95, 2.0, 2.5, 3.5, 4.5])
    truth = window_truth(c, times, t_end=5.0, has_imu=False)
    fist = DECISION_CLASSES.index("fist")
    assert truth.tolist() == [UNLABELLED, 0, 0, fist, fist, UNLABELLED, 0]
    a = score_windows([0, 0, fist], [0, fist, fist])
    b = score_windows([fist, fist], [fist, 0])
    p = WindowScore.pooled([a, b])
    assert p.n == 5 and p.CA == pytest.approx(3 / 5)
    assert p.confusion.sum() == 5


def test_rotation_windows_unlabelled_without_imu():
    c = cues((0.0, "rest"), (1.0, "rotate_cw"), (2.0, "rest"))
    truth = window_truth(c, np.array([0.5, 1.5]), 3.0, has_imu=False)
    assert truth.tolist() == [0, UNLABELLED]
    truth = window_truth(c, np.array([0.5, 1.5]), 3.0, has_imu=True)
    assert truth.tolist() == [0, DECISION_CLASSES.index("rotate_cw")]


def test_json_safe_replaces_nan():
    assert json_safe({"a": math.nan, "b": [np.float64(1.5), math.inf], "c": np.int64(3)}) == {
        "a": None,
        "b": [1.5, None],
        "c": 3,
    }


def test_gaps_split_runs_of_one_label():
    # Three 2 s sign-language samples back to back, separated by data gaps resuming at 3 and 6.
    c = cues((0, "sign_letter"))
    w = cue_windows(c, t_end=8.0, breaks=[3.0, 6.0])
    assert [(x.onset, x.offset) for x in w] == [(0, 3), (3, 6), (6, 8)]
    s = score_events(c, [ev(1.0, "fist"), ev(3.5, "fist")], t_end=8.0, has_imu=True, breaks=[3.0, 6.0])
    assert (s.other_windows, s.other_with_event) == (3, 2)
