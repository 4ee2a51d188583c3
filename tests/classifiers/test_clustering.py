"""OnlineMixture: cold start, two clusters, drift, long rest, spill-over split, gating, state."""

from __future__ import annotations

import copy
import math

import numpy as np

from emgpilot.classifiers.clustering import MixtureConfig, OnlineMixture


def _feed(mix: OnlineMixture, values: np.ndarray, block: int = 7) -> None:
    for i in range(0, len(values), block):
        if mix.due:
            mix.refit()
        mix.add(values[i : i + block])
    if mix.due:
        mix.refit()


def _rest_and_gestures(rng: np.random.Generator, n: int, rest: float = 1.0, active: float = 3.0) -> np.ndarray:
    x = rng.normal(rest, 0.1, n)
    on = (np.arange(n) % 100) >= 80  # 20 % of the windows are gestures
    x[on] = rng.normal(active, 0.3, on.sum())
    return x


def test_cold_start_uses_prior_threshold_relative_to_rest():
    cfg = MixtureConfig()
    mix = OnlineMixture(cfg)
    assert not mix.armed and math.isinf(mix.thr_on)
    _feed(mix, np.random.default_rng(0).normal(1.0, 0.05, cfg.min_history - 1))
    assert not mix.armed
    _feed(mix, np.random.default_rng(1).normal(1.0, 0.05, 200))
    assert mix.armed and not mix.ever_valid
    # No gesture seen yet: threshold = rest level + the prior lift.
    assert abs(mix.thr_on - (1.0 + cfg.prior_lift)) < 0.1
    assert mix.thr_off < mix.thr_on


def test_two_clusters_give_threshold_between_them():
    mix = OnlineMixture(MixtureConfig())
    _feed(mix, _rest_and_gestures(np.random.default_rng(2), 1500))
    assert mix.valid
    assert abs(mix.rest_mean - 1.0) < 0.05 and abs(mix.active_mean - 3.0) < 0.15
    assert 1.5 < mix.thr_on < 2.7
    assert 1.0 < mix.thr_off < mix.thr_on
    post = mix.posterior(np.array([1.0, 3.0]))
    assert post[0] < 0.01 and post[1] > 0.99


def test_fatigue_drift_is_followed():
    mix = OnlineMixture(MixtureConfig())
    rng = np.random.default_rng(3)
    _feed(mix, _rest_and_gestures(rng, 1500, active=3.0))
    thr_fresh = mix.thr_on
    _feed(mix, _rest_and_gestures(rng, 2500, active=2.2))  # weaker contractions (fatigue)
    assert abs(mix.active_mean - 2.2) < 0.15
    assert mix.thr_on < thr_fresh and mix.thr_on < 2.2


def test_long_rest_keeps_remembered_gesture_cluster():
    mix = OnlineMixture(MixtureConfig())
    rng = np.random.default_rng(4)
    _feed(mix, _rest_and_gestures(rng, 1500))
    thr_active = mix.thr_on
    _feed(mix, rng.normal(1.0, 0.1, 3000))  # five minutes of rest fill the whole history
    assert not mix.valid and mix.ever_valid
    # The threshold neither collapses into the noise nor jumps to the cold-start prior.
    assert abs(mix.thr_on - thr_active) < 0.3
    assert mix.thr_on > mix.rest_mean + mix.cfg.min_lift - 1e-9
    # The first gesture after the rest is still far above the threshold.
    assert 3.0 > mix.thr_on + 0.5


def test_rest_level_shift_moves_threshold():
    """Electrode shift: the rest level rises; the threshold follows it."""
    mix = OnlineMixture(MixtureConfig())
    rng = np.random.default_rng(5)
    _feed(mix, _rest_and_gestures(rng, 1500, rest=1.0, active=3.0))
    _feed(mix, _rest_and_gestures(rng, 2500, rest=1.6, active=3.4))
    assert abs(mix.rest_mean - 1.6) < 0.1
    assert 2.1 < mix.thr_on < 3.1


def test_split_puts_threshold_above_spill_over():
    rng = np.random.default_rng(6)
    n = 3000
    x = rng.normal(0.0, 0.08, n)
    k = np.arange(n) % 200
    x[(k >= 100) & (k < 125)] = rng.normal(1.3, 0.15, 25 * (n // 200))  # fist spill-over
    x[(k >= 150) & (k < 165)] = rng.normal(2.9, 0.2, 15 * (n // 200))  # the real gesture
    plain = OnlineMixture(MixtureConfig(history=3000))
    _feed(plain, x)
    assert plain.thr_on < 1.3
    split = OnlineMixture(MixtureConfig(history=3000, split_upper=True))
    _feed(split, x)
    assert split.split
    assert 1.6 < split.thr_on < 2.6


def test_history_floor_keeps_only_moving_windows():
    cfg = MixtureConfig(history_floor=2.0, cold_threshold=4.0, min_separation=0.3, prior_lift=0.0, min_rest_z=1.0)
    mix = OnlineMixture(cfg)
    _feed(mix, np.random.default_rng(7).normal(1.0, 0.1, 500))
    assert mix.armed and len(mix.history()) == 0
    assert mix.thr_on >= 4.0  # cold threshold until something moved


def test_state_round_trip_and_chunking():
    x = _rest_and_gestures(np.random.default_rng(8), 2100)
    a = OnlineMixture(MixtureConfig())
    _feed(a, x[:1000], block=1)
    b = OnlineMixture(MixtureConfig())
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    _feed(a, x[1000:], block=13)
    _feed(b, x[1000:], block=13)
    assert a.state_dict()["params"].tolist() == b.state_dict()["params"].tolist()
    np.testing.assert_array_equal(a.history(), b.history())


def test_rest_as_a_small_minority_still_found():
    """Back-to-back cued gestures: rest is only ~8 % of the history."""
    rng = np.random.default_rng(9)
    n = 1200
    x = rng.normal(2.7, 0.3, n)
    x[500:596] = rng.normal(0.6, 0.07, 96)
    mix = OnlineMixture(MixtureConfig())
    _feed(mix, x)
    assert mix.valid and abs(mix.rest_mean - 0.6) < 0.1 and abs(mix.active_mean - 2.7) < 0.1
