"""Wrist network: shipped weights, numpy/torch agreement, reproducible training, real windows."""

from __future__ import annotations

import pickle
from dataclasses import replace

import numpy as np
import pytest
from scipy import signal

from emgpilot.classifiers import wrist_train as wt
from emgpilot.classifiers.wrist import (
    CLASSES,
    N_FEATURES,
    OTHER_CLASSES,
    RotationEstimator,
    benchmark_latency,
    best_shift,
    conditioning_sos,
    load_wrist_model,
    shift_log_likelihood,
    window_features,
)
from emgpilot.signals.preprocess import EMGConditioner, EMGFilterConfig
from emgpilot.signals.streams import FOREARM_EMG, Chunk


@pytest.fixture(scope="module")
def model():
    return load_wrist_model()


def test_shipped_model_declares_interface(model):
    assert CLASSES == ("rest", "fist", "wrist_flexion", "wrist_extension")
    # The vocabulary first, then the motions outside it the network learnt so fusion can reject them.
    assert model.classes == CLASSES + OTHER_CLASSES
    assert model.channels == 8
    assert 20 <= model.window <= 80
    assert model.meta["input_stream"] == "forearm_emg.filtered"
    assert not set(model.meta["training_subjects"]) & {f"eval_{n}" for n in ("Female0", "Male0", "Male1")}
    assert not set(model.meta["training_subjects"]) & set(wt.SAME_PERSON_AS_EVAL_FEMALE0)


def test_predict_proba_shape_and_probabilities(model):
    rng = np.random.default_rng(0)
    x = rng.normal(0, 15, size=(5, model.window, 8)).astype(np.float32)
    p = model.predict_proba(x)
    assert p.shape == (5, len(model.classes))
    assert p.dtype == np.float32
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_predict_proba_rejects_wrong_shapes(model):
    with pytest.raises(ValueError, match="samples"):
        model.predict_proba(np.zeros((1, model.window + 1, 8), np.float32))
    with pytest.raises(ValueError, match="batch"):
        model.predict_proba(np.zeros((model.window, 8), np.float32))


def test_loading_never_unpickles(monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise AssertionError("pickle used while loading wrist weights")

    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    m = load_wrist_model()
    assert m.predict_proba(np.zeros((1, m.window, 8), np.float32)).shape == (1, len(m.classes))
    bad = tmp_path / "wrist.pt"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="safetensors"):
        load_wrist_model(bad)


def test_loading_reports_corrupt_file(tmp_path):
    (tmp_path / "w.safetensors").write_bytes(b"garbage")
    (tmp_path / "w.json").write_text("{}")
    with pytest.raises(ValueError, match=r"w\.safetensors"):
        load_wrist_model(tmp_path / "w.safetensors")


def test_training_features_match_live_conditioning():
    """The causal filter used for training is exactly what EMGConditioner emits live."""
    rng = np.random.default_rng(1)
    raw = rng.integers(-60, 60, size=(400, 8)).astype(np.float64)
    stage = EMGConditioner(FOREARM_EMG, EMGFilterConfig())
    live = np.concatenate(
        [
            stage.process(Chunk(FOREARM_EMG, np.arange(a, a + 100) / 200.0, raw[a : a + 100]))[0].data
            for a in (0, 100, 200, 300)
        ]
    )
    offline = signal.sosfilt(conditioning_sos(), raw, axis=0)
    # Live filtering starts in the steady state of the first sample, training from zero and drops
    # its start-up: past that, the two are the same filter.
    settled = 300  # the notches (Q 30) ring for about a second
    np.testing.assert_allclose(live[settled:], offline[settled:], rtol=1e-3, atol=2e-2)
    steady = signal.sosfilt(
        conditioning_sos(), raw, axis=0, zi=signal.sosfilt_zi(conditioning_sos())[:, :, None] * raw[0]
    )[0]
    np.testing.assert_allclose(live, steady, rtol=1e-4, atol=1e-3)


def _synthetic_subjects(n_subjects: int = 3, n: int = 200) -> list[wt.SubjectData]:
    rng = np.random.default_rng(7)
    out = []
    for i in range(n_subjects):
        y = rng.integers(0, 4, size=n)
        f = rng.normal(size=(n, N_FEATURES, 8)).astype(np.float32)
        f[np.arange(n), 0, y * 2] += 3.0  # each class lights one electrode
        out.append(wt.SubjectData(f"synthetic{i}", f, y, np.zeros(n, np.int64)))
    return out


def test_training_is_reproducible_with_a_seed():
    cfg = replace(wt.TrainConfig(), epochs=3, batch=64, conv=(4,), dense=(8,))
    subjects = _synthetic_subjects()
    a = wt.train(subjects, cfg)
    b = wt.train(subjects, cfg)
    c = wt.train(subjects, replace(cfg, seed=cfg.seed + 1))
    assert a.tensors.keys() == b.tensors.keys()
    for k in a.tensors:
        np.testing.assert_array_equal(a.tensors[k], b.tensors[k])
    assert any(not np.array_equal(a.tensors[k], c.tensors[k]) for k in a.tensors if "weight" in k)


def test_numpy_forward_matches_torch():
    import torch

    cfg = replace(wt.TrainConfig(), epochs=1, batch=64, conv=(4, 5), dense=(6,))
    torch.manual_seed(0)
    net = wt.build_net(cfg)
    mean = np.zeros((N_FEATURES, 1), np.float32)
    std = np.ones((N_FEATURES, 1), np.float32)
    m = wt.export(net, cfg, mean, std, [])
    f = np.random.default_rng(2).normal(size=(7, N_FEATURES, 8)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(f)).numpy()
    np.testing.assert_allclose(m.logits_from_features(f, rotation=0), want, rtol=1e-4, atol=1e-5)
    # A shift of k electrodes in the model equals rolling the input the same way.
    with torch.no_grad():
        rolled = net(torch.from_numpy(np.roll(f, -3, axis=2).copy())).numpy()
    np.testing.assert_allclose(m.logits_from_features(f, rotation=3), rolled, rtol=1e-4, atol=1e-5)


def test_save_and_load_round_trip(tmp_path):
    cfg = replace(wt.TrainConfig(), epochs=1, batch=64, conv=(4,), dense=(8,))
    m = wt.train(_synthetic_subjects(2, 100), cfg)
    path = wt.save_model(m, tmp_path)
    back = load_wrist_model(path)
    f = window_features(np.random.default_rng(3).normal(0, 10, size=(4, back.window, 8)))
    np.testing.assert_array_equal(back.logits_from_features(f), m.logits_from_features(f))


def test_benchmark_runs(model):
    out = benchmark_latency(model, n_calls=5)
    assert set(out) == {"median_us", "p99_us", "mean_us"}
    assert out["median_us"] > 0


@pytest.mark.data
def test_real_windows_of_an_unseen_person_beat_chance(shared_data, model):
    """eval_Male1 is a person the shipped model never saw; 4 classes, chance is 0.25."""
    cfg = wt.TrainConfig(window=model.window)
    subject = wt.load_subject(shared_data / "cote_allard_myo" / "eval_Male1.npz", cfg.window, 20, cfg.warmup, True)
    p = model.predict_proba(subject.extra["windows"])[:, : len(CLASSES)]
    ca = float(np.mean(p.argmax(axis=1) == subject.labels))
    assert ca > 0.6, ca
    assert set(np.unique(subject.labels)) == {0, 1, 2, 3}


def test_shift_scores_follow_a_rotated_armband(model):
    """Rotating the electrodes by R moves every window's shift likelihood by R (equivariance)."""
    rng = np.random.default_rng(4)
    f = window_features(rng.normal(0, 20, size=(6, model.window, 8)) * rng.uniform(0.2, 3, size=(1, 1, 8)))
    ll = shift_log_likelihood(model, f)
    np.testing.assert_allclose(np.exp(ll).sum(axis=1), 1.0, rtol=1e-4)
    for r in (1, 3, 6):
        rolled = shift_log_likelihood(model, np.roll(f, r, axis=2))
        np.testing.assert_allclose(rolled, np.roll(ll, r, axis=1), rtol=1e-4, atol=1e-4)


def test_rotation_estimator_starts_at_standard_placement_and_round_trips(model):
    est = RotationEstimator(model)
    assert est.shift == 0
    x = np.random.default_rng(5).normal(0, 20, size=(10, model.window, 8)).astype(np.float32)
    est.update(x)
    state = est.state_dict()
    other = RotationEstimator(model)
    other.load_state_dict(state)
    np.testing.assert_array_equal(other.scores, est.scores)
    assert other.n_windows == 10
    with pytest.raises(ValueError, match="shape"):
        other.load_state_dict({"scores": np.zeros(3), "n_windows": 0})


@pytest.mark.data
def test_rotation_estimator_finds_a_rotated_armband_on_an_unseen_person(shared_data, model):
    cfg = wt.TrainConfig(window=model.window)
    subject = wt.load_subject(shared_data / "cote_allard_myo" / "eval_Male1.npz", cfg.window, 20, cfg.warmup, True)
    windows = np.roll(subject.extra["windows"], 3, axis=2)  # armband 3 electrodes further round
    est = RotationEstimator(model)
    est.update(windows)
    assert est.shift == 3
    p = model.predict_proba(windows, rotation=est.shift)[:, : len(CLASSES)]
    assert float(np.mean(p.argmax(axis=1) == subject.labels)) > 0.6


def test_cued_windows_skip_the_settling_time_after_a_cue():
    n = 600
    emg = np.random.default_rng(6).integers(-20, 20, size=(n, 8)).astype(np.int8)
    labels = np.zeros(n, np.int64)
    labels[300:] = 1  # file's class 1 = our "fist"
    table = np.array([0, 1])
    _, y, _ = wt.segment_windows(emg, labels, np.zeros(n, np.int64), table, 40, 10, 0, settle=0)
    _, y_settled, _ = wt.segment_windows(emg, labels, np.zeros(n, np.int64), table, 40, 10, 0, settle=100)
    assert set(y) == set(y_settled) == {0, 1}
    # Windows ending at 310..430 start before the cue at 300 or less than 100 samples after it.
    assert len(y) - len(y_settled) == 13


def test_shipped_weights_record_the_default_training_config(model):
    """``emgpilot train-wrist`` with defaults must be the recipe of the shipped weights."""
    recorded = {k: tuple(v) if isinstance(v, list) else v for k, v in model.meta["train_config"].items()}
    assert wt.TrainConfig(**recorded) == wt.TrainConfig()


def test_weights_must_declare_the_vocabulary_classes_first(model, tmp_path):
    meta = dict(model.meta, classes=["fist", "rest", "wrist_flexion", "wrist_extension"])
    with pytest.raises(ValueError, match="classes"):
        type(model)(tensors=model.tensors, meta=meta)


def test_out_of_vocabulary_labels_are_learnt_as_extra_classes():
    names = ["rest", "radial_deviation", "wrist_flexion", "pronation", "fist"]
    classes = wt.model_classes(wt.TrainConfig())
    assert classes[:4] == CLASSES
    table = wt.class_map(names, classes)
    assert table.tolist() == [0, classes.index("radial_deviation"), 2, -1, 1]
    # Without extra classes only the vocabulary is learnt.
    assert wt.class_map(names).tolist() == [0, -1, 2, -1, 1]
    assert wt.model_classes(wt.TrainConfig(other_classes=())) == CLASSES


def test_rotation_estimate_can_be_held_near_the_standard_placement(model):
    scores = np.array([0.0, 5.0, 1.0, 2.0, 3.0, 9.0, 4.0, 6.0])
    assert best_shift(scores) == 5
    assert best_shift(scores, max_shift=1) == 7  # shifts 7, 0, 1 allowed
    assert best_shift(scores, max_shift=2) == 7
    est = RotationEstimator(model, max_shift=1)
    est.scores = scores.copy()
    assert est.shift == 7


def test_electrode_gain_augmentation_matches_what_a_gain_does_to_the_features():
    """Training shifts log MAV / log WL by a per-electrode log gain and the relative level by its
    deviation from the electrode mean: exactly what scaling each electrode's signal does."""
    rng = np.random.default_rng(8)
    x = rng.normal(0, 20, size=(5, 40, 8)).astype(np.float32)
    g = rng.normal(0, 0.25, size=8)
    base, scaled = window_features(x), window_features(x * np.exp(g).astype(np.float32))
    names = list(wt.FEATURE_NAMES)

    # _EPS inside the logs makes the shift approximate for tiny amplitudes; these are large.
    def shift(f: str) -> np.ndarray:
        return scaled[:, names.index(f)] - base[:, names.index(f)]

    for f in ("log_mav", "log_wl"):
        np.testing.assert_allclose(shift(f), np.broadcast_to(g, (5, 8)), atol=6e-3)
    np.testing.assert_allclose(shift("rel_log_mav"), np.broadcast_to(g - g.mean(), (5, 8)), atol=6e-3)
    for f in ("zc", "ssc", "log_wl_over_mav"):
        np.testing.assert_allclose(shift(f), 0.0, atol=6e-3)


def test_several_networks_average_their_log_probabilities(tmp_path):
    cfg = replace(wt.TrainConfig(), epochs=1, batch=64, conv=(4,), dense=(8,), members=2)
    subjects = _synthetic_subjects(2, 100)
    both = wt.train_members(subjects, cfg)
    a, b = (wt.train(subjects, replace(cfg, seed=cfg.seed + i)) for i in range(2))
    assert both.n_members == 2 and both.meta["members"] == 2
    f = window_features(np.random.default_rng(9).normal(0, 10, size=(5, both.window, 8)))

    def log_softmax(z: np.ndarray) -> np.ndarray:
        z = z - z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    want = (log_softmax(a.logits_from_features(f, 2)) + log_softmax(b.logits_from_features(f, 2))) / 2
    np.testing.assert_allclose(both.logits_from_features(f, 2), want, rtol=1e-5, atol=1e-5)
    joint = [m.logits_all_shifts(f).reshape(5, -1) for m in (a, b)]
    want_all = ((log_softmax(joint[0]) + log_softmax(joint[1])) / 2).reshape(5, 8, -1)
    np.testing.assert_allclose(both.logits_all_shifts(f), want_all, rtol=1e-5, atol=1e-5)
    back = load_wrist_model(wt.save_model(both, tmp_path))
    np.testing.assert_array_equal(back.logits_all_shifts(f), both.logits_all_shifts(f))
    broken = {k: v for k, v in both.tensors.items() if k != "member1.dense0.bias"}
    with pytest.raises(ValueError, match="network 1"):
        type(both)(tensors=broken, meta=both.meta)


def test_a_band_clearly_worn_further_round_escapes_the_bound(model):
    est = RotationEstimator(model, max_shift=1, escape_nats=0.5, escape_min_windows=200)
    scores = np.zeros(8)
    scores[4] = 150.0  # three electrodes beyond the bound
    assert est.choose(scores, 100) == 0  # too few windows yet
    assert est.choose(scores, 400) == 0  # 150 nats over 400 windows: not clear enough
    assert est.choose(scores, 250) == 4  # 0.6 nats per window
    assert RotationEstimator(model, max_shift=1).choose(scores, 10_000) == 0  # no escape configured


def test_a_returning_wearer_starts_from_their_last_rotation(model):
    """The prior (and the bound) sit on ``prior_shift``: a wearer whose band sat one electrode round
    last time is classified at that shift from the first window, and can still move from it."""
    est = RotationEstimator(model, max_shift=1, prior_shift=1)
    assert est.shift == 1 and est.scores[1] == est.prior_nats
    scores = np.array([0.0, 5.0, 9.0, 1.0, 2.0, 3.0, 4.0, 6.0])
    assert est.choose(scores, 10) == 2  # shifts 0, 1, 2 allowed around 1
    assert RotationEstimator(model, max_shift=1).choose(scores, 10) == 7  # 7, 0, 1 around 0
    est.update_features(np.zeros((0, 6, 8), np.float32))
    est.reset()
    np.testing.assert_array_equal(est.scores, est.prior())
    assert RotationEstimator(model, prior_shift=-1).prior_shift == 7


def test_shipped_companion_is_the_same_recipe_with_random_rotations():
    from emgpilot.classifiers.wrist import INVARIANT_NAME

    companion = load_wrist_model(None, shipped_name=INVARIANT_NAME)
    recorded = {k: tuple(v) if isinstance(v, list) else v for k, v in companion.meta["train_config"].items()}
    assert wt.TrainConfig(**recorded) == replace(wt.TrainConfig(), joint_rotation=False, full_rotation=True)
    assert companion.classes == load_wrist_model().classes
