"""Detector stages on synthetic signals: detection, cold start, minimum duration, drift, long rest."""

from __future__ import annotations

import numpy as np
import pytest

from emgpilot.classifiers.detectors import (
    COL,
    ActivationDetector,
    DetectorConfig,
    FistDetector,
    RotationDetector,
    StiffenDetector,
    TimingConfig,
)
from emgpilot.classifiers.recognition import RecognitionConfig
from emgpilot.signals.streams import Chunk

from ._synth import FILTERED, IMU, UPPER_ENV, FakeWrist, bursts, cut, forearm, imu, upper


def _states(stage, chunk: Chunk, size: int = 50) -> tuple[np.ndarray, np.ndarray]:
    rows = [m for c in cut(chunk, size) for m in stage.process(c) if m.stream == stage.outputs[0].name]
    return np.concatenate([r.t for r in rows]), np.concatenate([r.data for r in rows])


def _onsets(active: np.ndarray) -> np.ndarray:
    return np.flatnonzero(np.diff(np.r_[0, active]) > 0)


def test_activation_detects_every_burst_and_nothing_in_rest():
    data = forearm(60.0)
    t, s = _states(ActivationDetector(FILTERED, DetectorConfig()), data)
    assert np.allclose(np.diff(t), 0.05)
    truth = bursts(60.0, 20.0)[: len(t) + 3][3:]  # window j ends at sample 10 j - 1
    active = s[:, COL["active"]] > 0
    onsets = _onsets(active)
    assert len(onsets) == int(np.sum(np.diff(np.r_[0, truth.astype(int)]) > 0))
    # Every onset lies inside a burst, within 0.25 s of its start (minimum duration + window).
    assert truth[onsets].all()
    assert not active[~truth & (np.roll(truth, 6) == 0)].any()  # rest (away from burst tails)


def test_cold_start_is_unarmed_then_conservative():
    cfg = DetectorConfig()
    _, s = _states(FistDetector(FILTERED, cfg), forearm(10.0))
    armed = s[:, COL["armed"]] > 0
    n_unarmed = int((~armed).sum())
    assert n_unarmed == cfg.mixture.min_history
    assert not (s[~armed, COL["active"]] > 0).any()
    # Before any gesture the threshold sits the prior lift above the rest level.
    first = np.flatnonzero(armed)[0]
    assert s[first, COL["threshold"]] >= s[first, COL["rest_mean"]] + cfg.mixture.prior_lift - 1e-6


def test_minimum_duration_and_refractory():
    # A 50 ms spike touches 4-5 overlapping 200 ms windows; min_on=6 must reject it.
    cfg = DetectorConfig(timing=TimingConfig(min_on=6, min_off=2, refractory=10))
    det = ActivationDetector(FILTERED, cfg)
    rng = np.random.default_rng(3)
    n = 200 * 20
    x = rng.normal(0, 2.0, (n, 8))
    x[2000:2010] *= 20.0  # a 50 ms spike: shorter than the minimum duration
    x[3000:3300] *= 15.0  # a real 1.5 s contraction
    x[3340:3600] *= 15.0  # resumes after a 0.2 s dip: still one gesture (hysteresis, refractory)
    _, s = _states(det, Chunk(FILTERED, np.arange(n) / 200.0, x.astype(np.float32)))
    active = s[:, COL["active"]] > 0
    onsets = _onsets(active)
    assert len(onsets) == 1 and 300 <= onsets[0] <= 308


def test_long_rest_then_gesture_is_detected():
    rng = np.random.default_rng(4)
    n = 200 * 400  # 30 s of gestures, ~6 minutes of rest, then one gesture
    x = rng.normal(0, 2.0, (n, 8))
    for start in range(600, 6000, 1000):
        x[start : start + 300] *= 12.0
    x[n - 600 : n - 300] *= 12.0
    det = FistDetector(FILTERED, DetectorConfig())
    t, s = _states(det, Chunk(FILTERED, np.arange(n) / 200.0, x.astype(np.float32)), size=4000)
    active = s[:, COL["active"]] > 0
    late = t >= (n - 600) / 200.0
    assert active[late].any()
    assert not active[(t > 35.0) & (t < (n - 600) / 200.0)].any()


def test_electrode_shift_drift_is_tracked():
    """The wearer's level halves mid-session (electrode shift): gestures are still found."""
    rng = np.random.default_rng(5)
    n = 200 * 180
    x = rng.normal(0, 2.0, (n, 8))
    gain = np.where(np.arange(n) < n // 2, 1.0, 0.5)
    on = bursts(180.0, 200.0)
    x[on] *= 12.0
    x *= gain[:, None]
    t, s = _states(ActivationDetector(FILTERED, DetectorConfig()), Chunk(FILTERED, np.arange(n) / 200.0, x))
    active = s[:, COL["active"]] > 0
    late_truth = bursts(180.0, 20.0)[3 : len(t) + 3]
    late = t > 121.5
    assert len(_onsets(active[late])) == len(_onsets(late_truth[late].astype(int)))


def test_stiffen_fires_on_co_contraction_not_on_elbow_flexion():
    _, s = _states(StiffenDetector(UPPER_ENV, DetectorConfig()), upper(60.0, co_contract=True))
    assert len(_onsets(s[:, COL["active"]] > 0)) >= 10
    _, s = _states(StiffenDetector(UPPER_ENV, DetectorConfig()), upper(60.0, co_contract=False))
    assert not (s[:, COL["active"]] > 0).any()


def test_rotation_direction_and_posture_turns():
    cfg = RecognitionConfig().rotation
    _, s = _states(RotationDetector(IMU, cfg), imu(30.0))
    active = s[:, COL["active"]] > 0
    onsets = _onsets(active)
    assert len(onsets) == 6  # bursts at 2.5, 7.5, ... alternating sign
    rate = s[:, len(COL)]
    assert [int(np.sign(rate[i])) for i in onsets] == [1, -1, 1, -1, 1, -1]
    # A slow posture turn (90 deg/s for 1 s) is not a rotation.
    n = 50 * 30
    x = np.zeros((n, 10), dtype=np.float32)
    x[:, 0] = 1.0
    x[:, 6] = 1.0
    x[500:550, 7] = 90.0
    x[1000:1050, 7] = -90.0
    _, s = _states(RotationDetector(IMU, cfg), Chunk(IMU, np.arange(n) / 50.0, x))
    assert not (s[:, COL["active"]] > 0).any()


def test_activation_publishes_wrist_probabilities_when_active():
    det = ActivationDetector(FILTERED, DetectorConfig(), FakeWrist())
    out = [m for c in cut(forearm(30.0), 100) for m in det.process(c)]
    wrist = [m for m in out if m.stream == "wrist"]
    state = [m for m in out if m.stream == "detector.activation"]
    p = np.concatenate([m.data for m in wrist])
    s = np.concatenate([m.data for m in state])
    assert p.shape == (len(s), 4)
    active = s[:, COL["active"]] > 0
    assert not np.isnan(p[active]).any()
    np.testing.assert_allclose(p[active].sum(axis=1), 1.0, rtol=1e-5)
    quiet = (s[:, COL["value"]] < s[:, COL["release"]]) & (s[:, COL["armed"]] > 0) & ~active
    assert np.isnan(p[quiet]).all()


def test_a_gap_in_the_data_ends_the_gesture():
    """Two held gestures recorded back to back with 1 s of data missing between them: two onsets."""
    rng = np.random.default_rng(6)
    x = rng.normal(0, 2.0, (200 * 20, 8))
    x[2000:3000] *= 12.0
    x[3000:4000] *= 12.0
    t = np.arange(len(x)) / 200.0
    t[3000:] += 1.0  # the recording jumps over one second here
    for size in (50, 4000):
        _, s = _states(ActivationDetector(FILTERED, DetectorConfig()), Chunk(FILTERED, t, x), size=size)
        assert len(_onsets(s[:, COL["active"]] > 0)) == 2


def test_left_arm_mirrors_the_electrode_ring_for_the_wrist_network():
    """A left arm's ring runs the other way round: with ``mirror`` the detector undoes that exactly
    (same wrist probabilities, same rotation estimate, as the unmirrored signal without it)."""
    from emgpilot.classifiers.recognition import recognition_stages
    from emgpilot.classifiers.wrist import load_wrist_model

    model = load_wrist_model()
    right = forearm(30.0)
    left = Chunk(FILTERED, right.t, np.ascontiguousarray(right.data[:, ::-1]))

    def wrist_out(det: ActivationDetector, chunk: Chunk) -> np.ndarray:
        return np.concatenate([m.data for c in cut(chunk, 100) for m in det.process(c) if m.stream == "wrist"])

    p_right = wrist_out(ActivationDetector(FILTERED, DetectorConfig(), model), right)
    mirrored = ActivationDetector(FILTERED, DetectorConfig(), model, mirror=True)
    p_left = wrist_out(mirrored, left)
    assert np.isfinite(p_right).any()
    np.testing.assert_array_equal(p_left, p_right)
    p_unmirrored = wrist_out(ActivationDetector(FILTERED, DetectorConfig(), model), left)
    assert not np.array_equal(np.nan_to_num(p_unmirrored), np.nan_to_num(p_right))

    cfg = RecognitionConfig()
    cfg.fusion.arm = "left"
    streams = {FILTERED.name: FILTERED}
    (activation,) = [s for s in recognition_stages(cfg, streams, wrist=model) if isinstance(s, ActivationDetector)]
    assert activation.mirror
    cfg.fusion.arm = "auto"
    (activation,) = [s for s in recognition_stages(cfg, streams, wrist=model) if isinstance(s, ActivationDetector)]
    assert not activation.mirror


def test_bounded_rotation_estimate_stays_near_the_standard_placement():
    from emgpilot.classifiers.recognition import RecognitionConfig, recognition_stages
    from emgpilot.classifiers.wrist import load_wrist_model

    model = load_wrist_model()
    src = forearm(30.0)
    rotated = Chunk(FILTERED, src.t, np.ascontiguousarray(np.roll(src.data, 3, axis=1)))
    seen = set()
    det = ActivationDetector(FILTERED, DetectorConfig(), model, max_shift=1)
    published = []
    for c in cut(rotated, 100):
        published += [m.data for m in det.process(c) if m.stream == "wrist.rotation"]
        seen.add(det.electrode_shift)
    assert seen <= {7, 0, 1}
    # The published rotation: the bounded shift each classified window used, and the shift the
    # evidence favours without the bound (NaN for windows the network did not classify).
    rot = np.concatenate(published)
    used, evidence, companion = rot[np.isfinite(rot[:, 0])].T
    assert (companion == 0).all()  # no rotation-invariant companion given to this detector
    assert set(used.astype(int)) <= {7, 0, 1}
    assert evidence[-1] == det._estimator.scores.argmax()
    streams = {FILTERED.name: FILTERED}
    bounded = recognition_stages(RecognitionConfig(), streams, wrist=model)[0]
    free = recognition_stages(RecognitionConfig(wrist_max_rotation=-1), streams, wrist=model)[0]
    assert (bounded.max_shift, free.max_shift) == (1, None)
    assert bounded._estimator.escape_nats == 0.5
    strict = recognition_stages(RecognitionConfig(wrist_rotation_escape=-1), streams, wrist=model)[0]
    assert strict._estimator.escape_nats is None


def test_the_rotation_invariant_network_classifies_until_the_estimate_has_enough_windows():
    """The companion's answer is blended in with a weight falling from 1 to 0 over the first
    ``invariant_windows`` taught windows; afterwards the output is the main network's alone."""
    from emgpilot.classifiers.recognition import RecognitionConfig, recognition_stages
    from emgpilot.classifiers.wrist import INVARIANT_NAME, load_wrist_model

    model, invariant = load_wrist_model(), load_wrist_model(None, shipped_name=INVARIANT_NAME)
    data = forearm(60.0)

    def run(det: ActivationDetector) -> tuple[np.ndarray, list[int]]:
        probs, taught = [], []
        for c in cut(data, 100):
            for m in det.process(c):
                if m.stream == "wrist":
                    probs.append(m.data)
                    taught += [det.rotation_windows] * len(m)
        return np.concatenate(probs), taught

    plain, taught = run(ActivationDetector(FILTERED, DetectorConfig(), model))
    with_companion = ActivationDetector(FILTERED, DetectorConfig(), model, invariant=invariant, invariant_windows=10)
    assert with_companion.rotation_info.channels == ("shift", "evidence_shift", "companion")
    blended, _ = run(with_companion)
    classified = np.isfinite(plain[:, 0])
    taught = np.asarray(taught)
    early = classified & (taught < 10)
    late = classified & (taught >= 14)  # read after each chunk, which teaches at most ~3 windows
    assert early.any() and late.any()
    assert not np.allclose(blended[early], plain[early])
    np.testing.assert_array_equal(blended[late], plain[late])
    np.testing.assert_allclose(blended[classified].sum(axis=1), 1.0, rtol=1e-5)
    off, _ = run(ActivationDetector(FILTERED, DetectorConfig(), model, invariant=invariant, invariant_windows=0))
    np.testing.assert_array_equal(off, plain)
    # Wired from the configuration: on by default, off with 0 windows or no model.
    streams = {FILTERED.name: FILTERED}
    assert recognition_stages(RecognitionConfig(), streams, wrist=model)[0].invariant is not None
    assert recognition_stages(RecognitionConfig(wrist_invariant_windows=0), streams, wrist=model)[0].invariant is None
    assert recognition_stages(RecognitionConfig(wrist_invariant_model=""), streams, wrist=model)[0].invariant is None


def test_a_companion_with_other_classes_is_left_out_not_an_error(caplog):
    """A custom wrist network (say, trained without the out-of-vocabulary classes) still builds: the
    shipped companion answers other classes, so it is not used."""
    from dataclasses import replace as dc_replace

    from emgpilot.classifiers.recognition import RecognitionConfig, recognition_stages
    from emgpilot.classifiers.wrist import CLASSES, load_wrist_model

    model = load_wrist_model()
    four = dc_replace(model, meta={**model.meta, "classes": list(CLASSES)})
    with caplog.at_level("WARNING"):
        (activation, *_) = recognition_stages(RecognitionConfig(), {FILTERED.name: FILTERED}, wrist=four)
    assert activation.invariant is None and "not used" in caplog.text
    with pytest.raises(ValueError, match="classes"):
        ActivationDetector(FILTERED, DetectorConfig(), four, invariant=model, invariant_windows=50)


def test_a_wearer_calibration_sees_the_wearers_own_electrode_order_even_on_a_left_arm():
    from ._synth import fake_calibration

    cal = fake_calibration()
    chunk = forearm(10.0)
    windows = np.stack([chunk.data[i : i + 40] for i in range(600, 1400, 40)]).astype(np.float32)
    flat = np.full((len(windows), 4), 0.25, dtype=np.float32)
    want = cal.blend(flat, FakeWrist().features(windows), FakeWrist.classes)
    left = ActivationDetector(FILTERED, DetectorConfig(), FakeWrist(), mirror=True, calibration=cal)
    # the detector hands the network mirrored windows; the calibration must see them unmirrored
    got = left._blend_calibration(flat, np.ascontiguousarray(windows[:, :, ::-1]), None, np.zeros(len(windows), bool))
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert not np.allclose(want, flat)


def test_a_calibration_changes_the_published_wrist_probabilities():
    from ._synth import fake_calibration

    def wrist(det: ActivationDetector) -> np.ndarray:
        return np.concatenate([m.data for c in cut(forearm(30.0), 100) for m in det.process(c) if m.stream == "wrist"])

    plain = wrist(ActivationDetector(FILTERED, DetectorConfig(), FakeWrist()))
    calibrated = wrist(ActivationDetector(FILTERED, DetectorConfig(), FakeWrist(), calibration=fake_calibration()))
    shown = np.isfinite(plain[:, 0])
    np.testing.assert_array_equal(shown, np.isfinite(calibrated[:, 0]))
    np.testing.assert_allclose(calibrated[shown].sum(axis=1), 1.0, rtol=1e-5)
    assert np.abs(calibrated[shown] - plain[shown]).max() > 0.1
