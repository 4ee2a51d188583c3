"""The evaluation driver: live-order feeding, scoring, baseline, summary keys, bad inputs.

A small stand-in recogniser (an RMS threshold on the forearm EMG) replaces the real recognition
stages so these tests pin the driver, not the detectors.
"""

import json
import math

import numpy as np
import pytest

from emgpilot.classifiers.evaluation import (
    EvaluationError,
    InputSpec,
    Session,
    SessionResult,
    evaluate_inputs,
    evaluate_session,
    path_inputs,
    sessions_from_path,
    summarize,
)
from emgpilot.classifiers.metrics import json_safe
from emgpilot.signals.pipeline import Pipeline, Stage
from emgpilot.signals.streams import DECISION, FOREARM_EMG, Chunk, CueEvent, GestureEvent, StreamInfo
from emgpilot.signals.vocabulary import DECISION_CLASSES

FIST = DECISION_CLASSES.index("fist")
FS = 200.0


class ThresholdRecogniser(Stage):
    """Every 50 ms: RMS of the last 200 ms > threshold -> fist. Emits a fist event on each onset."""

    name = "stand_in"
    inputs = (FOREARM_EMG.name,)
    outputs = (DECISION, StreamInfo("gesture", "event", 0.0))

    def __init__(self, threshold: float = 10.0) -> None:
        self.threshold = threshold
        self.reset()

    def reset(self) -> None:
        self.buf = np.zeros((0, 8))
        self.t_last = -math.inf
        self.n = 0
        self.active = False

    def process(self, msg):
        assert float(msg.t[0]) > self.t_last, "data arrived out of order"
        self.t_last = msg.t_end
        out = []
        for i in range(len(msg)):
            self.buf = np.vstack([self.buf[-39:], msg.data[i : i + 1].astype(float)])
            self.n += 1
            if self.n % 10 == 0 and len(self.buf) == 40:
                on = float(np.sqrt(np.mean(self.buf**2))) > self.threshold
                t = float(msg.t[i])
                out.append(Chunk(DECISION, np.array([t]), np.array([[FIST if on else 0, 1.0]])))
                if on and not self.active:
                    out.append(GestureEvent(t=t, gesture="fist", primitive="fist", confidence=1.0))
                self.active = on
        return out


def stand_in_factory(sources, cfg):
    return Pipeline([ThresholdRecogniser()], sources=[s.name for s in sources])


def cued_session(n_reps: int = 4, seed: int = 0, chunk: int = 50, rest_burst_at: float | None = None) -> Session:
    """rest 5 s / fist 5 s cycles; the EMG bursts 0.3 s after each fist cue."""
    rng = np.random.default_rng(seed)
    period = 10.0
    n = int(n_reps * period * FS) + int(5 * FS)
    t = np.arange(n) / FS
    amp = np.full(n, 2.0)
    cues = []
    for r in range(n_reps):
        onset = 5.0 + r * period
        cues += [CueEvent(t=onset - 5.0, label="rest"), CueEvent(t=onset, label="fist")]
        amp[(t >= onset + 0.3) & (t < onset + 5.0)] = 30.0
    cues.append(CueEvent(t=n_reps * period, label="rest"))
    if rest_burst_at is not None:
        amp[(t >= rest_burst_at) & (t < rest_burst_at + 0.5)] = 30.0
    x = rng.normal(0, 1, (n, 8)) * amp[:, None]
    chunks = [Chunk(FOREARM_EMG, t[i : i + chunk], x[i : i + chunk]) for i in range(0, n, chunk)]
    # Stored stream by stream (all EMG, then all cues), as a recording may: the driver must merge by time.
    return Session("fake", [FOREARM_EMG, StreamInfo("cue", "event", 0.0)], [*chunks, *cues], source="fake.mcap")


def test_scores_a_cued_session_with_the_stand_in():
    res = evaluate_session(cued_session(), pipeline_factory=stand_in_factory, keep_timeline=True)
    assert res.ok, res.error
    assert (res.events.cued, res.events.correct, res.events.false_events) == (4, 4, 0)
    lat = res.events.latency_ms()
    assert 300 <= lat["median"] <= 500
    assert res.windows.CA > 0.9
    assert res.windows.n == pytest.approx((40.0 + 5.0 - 0.2) / 0.05, abs=2)
    assert res.baseline is not None and res.baseline.ca > 0.9
    assert res.baseline.n_test > 0 and res.windows_on_baseline_test.n > 0
    assert res.duration_s == pytest.approx(45.0 - 1 / FS)
    assert res.timeline is not None and len(res.timeline.events) == 4


def test_chunk_size_does_not_change_the_result():
    a = evaluate_session(cued_session(chunk=2), pipeline_factory=stand_in_factory)
    b = evaluate_session(cued_session(chunk=400), pipeline_factory=stand_in_factory)
    assert a.events.to_dict() == b.events.to_dict()
    assert a.windows.to_dict() == b.windows.to_dict()


def test_false_event_during_rest():
    res = evaluate_session(cued_session(rest_burst_at=22.0), pipeline_factory=stand_in_factory)
    assert res.events.false_events == 1
    assert res.events.correct == 4


def test_session_without_cues_is_an_error_not_a_crash():
    s = cued_session()
    s.messages = [m for m in s.messages if not isinstance(m, CueEvent)]
    res = evaluate_session(s, pipeline_factory=stand_in_factory)
    assert not res.ok and "no cue stream" in res.error


def test_an_armband_the_wrist_network_cannot_read_is_an_error_for_that_input_only():
    # A 10-electrode armband (the 3DC set): the default pipeline's wrist network needs a Myo's 8.
    channels = tuple(f"ch{i}" for i in range(10))
    ten = StreamInfo(FOREARM_EMG.name, FOREARM_EMG.kind, FOREARM_EMG.rate_hz, channels, FOREARM_EMG.units[:1] * 10)
    s = cued_session(n_reps=1)
    s.messages = [
        Chunk(ten, m.t, np.tile(m.data[:, :1], (1, 10))) if isinstance(m, Chunk) else m for m in s.messages
    ]
    s.streams = [ten, *s.streams[1:]]
    res = evaluate_session(s)
    assert not res.ok and "needs 8 forearm electrodes" in res.error and "has 10" in res.error


# The JSON keys issue #5 promises `emgpilot evaluate --json` users.
PROMISED_KEYS = (
    "files",
    "duration_s",
    "event_accuracy",
    "events",
    "false_events_per_min",
    "latency_ms",
    "per_gesture",
    "confusion",
    "window",
    "baseline_window_CA",
    "other_motion_event_rate",
    "realtime_factor",
    "per_file",
)


def test_summary_has_the_promised_keys():
    ok = evaluate_session(cued_session(), pipeline_factory=stand_in_factory)
    bad = evaluate_session(Session("empty", [FOREARM_EMG], [], source="empty.mcap"))
    summary = json_safe(summarize([ok, bad]))
    for key in PROMISED_KEYS:
        assert key in summary, key
    assert set(summary["events"]) >= {"cued", "correct", "wrong", "missed"}
    assert set(summary["latency_ms"]) == {"median", "p90"}
    assert set(summary["window"]) >= {"CA", "AER", "INS", "REJ"}
    assert summary["per_gesture"]["fist"]["cued"] == 4
    assert set(summary["confusion"]) == {"labels", "matrix"}
    assert list(summary["per_source"]) == ["fake.mcap"]
    assert summary["files"] == 1 and len(summary["per_file"]) == 2 and len(summary["failed"]) == 1
    assert summary["other_motion_event_rate"] is None  # no out-of-vocabulary cue: no rate, not 0
    json.dumps(summary, allow_nan=False)


def test_bad_paths_give_clear_errors_and_others_continue(tmp_path):
    with pytest.raises(EvaluationError, match="no such file"):
        sessions_from_path(tmp_path / "missing.mcap")
    junk = tmp_path / "junk.mcap"
    junk.write_text("not a recording")
    with pytest.raises(EvaluationError, match=r"junk\.mcap"):
        sessions_from_path(junk)
    results = evaluate_inputs(path_inputs([tmp_path / "missing.mcap", junk]), progress=False)
    assert [r.ok for r in results] == [False, False]
    assert all("mcap" in r.error for r in results)


def test_decisions_inside_data_gaps_are_not_scored():
    from emgpilot.signals.streams import GapEvent

    s = cued_session()
    full = evaluate_session(s, pipeline_factory=stand_in_factory)
    # Declare the data between 20 s and 22 s missing (the chunks stay: the gap only marks it).
    s.messages.append(GapEvent(t=20.0, source_stream=FOREARM_EMG.name, t_resume=22.0, reason="test"))
    gapped = evaluate_session(s, pipeline_factory=stand_in_factory)
    assert full.windows.n - gapped.windows.n in (39, 40)  # 20 s < t < 22 s every 50 ms, give or take rounding


def test_a_returning_wearer_starts_each_session_from_the_rotation_the_last_one_learnt(monkeypatch):
    from emgpilot.classifiers import evaluation

    learnt = {"s1": 1, "s2": None, "s3": 2, "other": 5}
    calls = []

    def fake(session, cfg=None, rotation_prior=None, **kwargs):
        calls.append((session.name, rotation_prior))
        return SessionResult(name=session.name, source="", learnt_rotation=learnt[session.name])

    monkeypatch.setattr(evaluation, "evaluate_session", fake)
    person = InputSpec("person.npz", lambda: [Session(n, [], []) for n in ("s1", "s2", "s3")])
    other = InputSpec("other.npz", lambda: [Session("other", [], [])])
    evaluate_inputs([person, other], progress=False, returning=True)
    # s2 learnt nothing (too few gestures): s3 still starts from s1's rotation; every file starts fresh.
    assert calls == [("s1", None), ("s2", 1), ("s3", 1), ("other", None)]
    calls.clear()
    evaluate_inputs([person, other], progress=False)
    assert [prior for _, prior in calls] == [None] * 4


def test_the_rotation_prior_reaches_the_pipeline_configuration():
    seen = []

    def factory(sources, cfg):
        seen.append(cfg.recognition.wrist_rotation_prior)
        return stand_in_factory(sources, cfg)

    res = evaluate_session(cued_session(n_reps=1), pipeline_factory=factory, baseline=False, rotation_prior=3)
    assert seen == [3] and res.rotation_prior == 3 and res.to_dict()["rotation_prior"] == 3
    assert res.learnt_rotation is None  # the stand-in has no rotation estimate


def test_calibrate_first_uses_a_calibration_session_and_needs_two_sessions_of_a_file():
    from emgpilot.classifiers.evaluation import evaluate_inputs, path_inputs, synthetic_inputs
    from emgpilot.recordings import sample_path

    (res,) = evaluate_inputs(
        synthetic_inputs(1, 40.0, first_seed=2), calibrate_first=True, baseline=False, progress=False
    )
    assert res.ok and res.calibrated_from == "synthetic:seed=2:calibration"
    assert res.rotation_prior is not None and res.to_dict()["calibrated_from"] == res.calibrated_from
    (res,) = evaluate_inputs(path_inputs([sample_path()]), calibrate_first=True, baseline=False, progress=False)
    assert not res.ok and "two or more sessions" in res.error
