"""The synthetic arm: determinism, chunk independence, ground truth, physiology and pacing."""

from __future__ import annotations

import itertools
import json
import math
import threading

import numpy as np
import pytest

from emgpilot.signals import synthetic_levels
from emgpilot.signals.device import Device
from emgpilot.signals.streams import EVENT_STREAMS, FOREARM_EMG, FOREARM_IMU, UPPER_EMG, Chunk, CueEvent
from emgpilot.signals.synthetic import Schedule, SyntheticArm, Wearer, generate, orientation_and_rate, sensor_kinematics
from emgpilot.signals.vocabulary import CUE_TO_TARGET, GESTURES

EVERY_LABEL = ["fist", "wrist_flexion", "wrist_extension", "stiffen", "elbow_flexion", "rotate_cw", "rotate_ccw"]


def read_all(arm: SyntheticArm) -> tuple[dict[str, Chunk], list[CueEvent]]:
    parts: dict[str, list[Chunk]] = {}
    cues: list[CueEvent] = []
    arm.start()
    while not arm.finished:
        for m in arm.read():
            if isinstance(m, Chunk):
                parts.setdefault(m.info.name, []).append(m)
            else:
                assert isinstance(m, CueEvent)
                cues.append(m)
    arm.stop()
    joined = {
        k: Chunk(v[0].info, np.concatenate([c.t for c in v]), np.concatenate([c.data for c in v]))
        for k, v in parts.items()
    }
    return joined, cues


def rms_between(chunk: Chunk, t0: float, t1: float) -> np.ndarray:
    m = (chunk.t >= t0) & (chunk.t < t1)
    x = chunk.data[m].astype(np.float64)
    x = x - x.mean(axis=0)
    return np.sqrt((x**2).mean(axis=0))


def window_rms(chunk: Chunk, t0: float, t1: float, win: int = 40) -> np.ndarray:
    """Per-channel RMS of consecutive 200 ms windows (40 samples at 200 Hz): ``[n_windows, 8]``."""
    m = (chunk.t >= t0) & (chunk.t < t1)
    x = chunk.data[m].astype(np.float64)
    n = len(x) // win
    return np.sqrt((x[: n * win].reshape(n, win, -1) ** 2).mean(axis=1))


# --------------------------------------------------------------------------- device contract


def test_satisfies_device_protocol_and_declares_streams():
    arm = SyntheticArm(seed=1, speed=math.inf, duration_s=1.0)
    assert isinstance(arm, Device)
    assert arm.streams() == [FOREARM_EMG, FOREARM_IMU, UPPER_EMG, EVENT_STREAMS["cue"]]
    info = json.loads(json.dumps(arm.info()))  # goes into recording metadata as JSON
    assert info["seed"] == 1 and info["wearer"]["arm"] == info["arm"] in ("left", "right")
    scripted = SyntheticArm(schedule=Schedule.scripted([(1.0, 1.0, "fist")]), speed=math.inf)
    assert json.loads(json.dumps(scripted.info()))["schedule"]["items"] == [[1.0, 1.0, "fist"]]
    only = SyntheticArm(seed=1, speed=math.inf, duration_s=1.0, streams=("forearm_imu",))
    assert only.streams() == [FOREARM_IMU, EVENT_STREAMS["cue"]]
    with pytest.raises(ValueError, match="unknown streams"):
        SyntheticArm(streams=("eeg",))


def test_time_starts_at_zero_and_advances_exactly():
    data, cues = read_all(SyntheticArm(seed=2, speed=math.inf, duration_s=3.0, chunk_s=0.02))
    for info in (FOREARM_EMG, FOREARM_IMU, UPPER_EMG):
        c = data[info.name]
        n = round(3.0 * info.rate_hz)
        assert len(c) == n
        np.testing.assert_array_equal(c.t, np.arange(n) / info.rate_hz)
    assert data["forearm_emg"].data.dtype == np.int8
    assert data["upper_emg"].data.dtype == np.int16
    assert cues[0] == CueEvent(t=0.0, label="rest")


def test_same_seed_is_bit_identical_and_independent_of_chunk_size():
    runs = [generate(seed=7, duration_s=25.0, chunk_s=chunk) for chunk in (0.02, 0.137, 1.0, 25.0)]
    ref_data, ref_cues = runs[0]
    for data, cues in runs[1:]:
        assert cues == ref_cues
        for name, c in ref_data.items():
            np.testing.assert_array_equal(data[name].t, c.t)
            np.testing.assert_array_equal(data[name].data, c.data)
    other, _ = generate(seed=8, duration_s=25.0)
    assert not np.array_equal(other["forearm_emg"].data, ref_data["forearm_emg"].data)


def test_chunk_independence_also_for_a_stream_subset():
    full, _ = generate(seed=3, duration_s=12.0)
    sub, _ = generate(seed=3, duration_s=12.0, streams=("upper_emg",), chunk_s=0.05)
    np.testing.assert_array_equal(sub["upper_emg"].data, full["upper_emg"].data)


# --------------------------------------------------------------------------- schedules and cues


def test_scripted_schedule_gives_cues_and_ends():
    sched = Schedule.scripted([(1.0, 2.0, "fist"), (4.0, 1.5, "stiffen")])
    arm = SyntheticArm(seed=0, speed=math.inf, schedule=sched)
    data, cues = read_all(arm)
    expected = [(0.0, "rest"), (1.0, "fist"), (3.0, "rest"), (4.0, "stiffen"), (5.5, "rest")]
    assert [(c.t, c.label) for c in cues] == expected
    assert arm.finished
    assert data["forearm_emg"].t[-1] == pytest.approx(6.5 - 1 / 200)  # ends 1 s after the last item
    assert arm.label_at(2.0) == "fist" and arm.label_at(3.5) == "rest"


def test_scripted_schedule_rejects_bad_items():
    with pytest.raises(ValueError, match="unknown synthetic arm label"):
        Schedule.scripted([(0.0, 1.0, "moonwalk")])
    with pytest.raises(ValueError, match="overlap"):
        Schedule.scripted([(0.0, 2.0, "fist"), (1.0, 1.0, "stiffen")])
    with pytest.raises(ValueError, match="duration"):
        Schedule.scripted([(0.0, -1.0, "fist")])


def test_random_schedule_labels_are_known_and_cover_the_vocabulary():
    sched = Schedule.random(seed=4, duration_s=600.0, other_motion_rate=0.2)
    items = sched.items_until(600.0)
    labels = {it.label for it in items}
    assert set(GESTURES) <= labels
    assert {lab for lab in labels if CUE_TO_TARGET[lab] is None}, "no non-vocabulary motion was mixed in"
    assert all(b.t_start >= a.t_end for a, b in itertools.pairwise(items))
    _, cues = generate(seed=4, duration_s=120.0, schedule=Schedule.random(seed=4, duration_s=120.0))
    # Cue changes alternate gesture / rest and every label is a known cue label.
    assert all(c.label in CUE_TO_TARGET for c in cues)
    assert all((a.label == "rest") != (b.label == "rest") for a, b in itertools.pairwise(cues))
    assert all(b.t >= a.t for a, b in itertools.pairwise(cues))


def test_idle_schedule_runs_until_duration():
    data, cues = generate(seed=1, duration_s=5.0, schedule=Schedule.idle())
    assert cues == [CueEvent(t=0.0, label="rest")]
    assert len(data["forearm_emg"]) == 1000


# --------------------------------------------------------------------------- physiology


@pytest.fixture(scope="module")
def every_gesture() -> tuple[dict[str, Chunk], list[tuple[float, float, str]]]:
    items = [(2.0 + 6.0 * i, 3.0, label) for i, label in enumerate(EVERY_LABEL)]
    items += [(50.0, 3.0, "wave_down"), (56.0, 3.0, "wave_left")]
    data, _ = generate(seed=11, duration_s=62.0, schedule=Schedule.scripted(items), wearer=Wearer())
    return data, items


def test_gestures_raise_emg_in_the_right_places(every_gesture):
    data, items = every_gesture
    emg, upper = data["forearm_emg"], data["upper_emg"]
    rest = rms_between(emg, 0.2, 1.8)
    rest_up = rms_between(upper, 0.2, 1.8)
    level = {label: rms_between(emg, t0 + 0.5, t0 + dur - 0.3) for t0, dur, label in items}
    upper_level = {label: rms_between(upper, t0 + 0.5, t0 + dur - 0.3) for t0, dur, label in items}
    for label in ("fist", "wrist_flexion", "wrist_extension"):
        assert level[label].mean() > 3 * rest.mean(), label
    # Flexion and extension light up opposite sides of the forearm; fist uses both, flexors more.
    g = Wearer().spatial_gain()
    flexor_ch, extensor_ch = int(np.argmax(g[1])), int(np.argmax(g[0]))
    assert level["wrist_flexion"][flexor_ch] > 2 * level["wrist_flexion"][extensor_ch]
    assert level["wrist_extension"][extensor_ch] > 2 * level["wrist_extension"][flexor_ch]
    assert level["fist"][flexor_ch] > level["fist"][extensor_ch] > 2 * rest[extensor_ch]
    # Stiffen co-contracts biceps and triceps; elbow flexion is the biceps alone.
    biceps, triceps = upper_level["stiffen"]
    assert biceps > 8 * rest_up[0] and triceps > 8 * rest_up[1]
    eb, et = upper_level["elbow_flexion"]
    assert eb > 8 * rest_up[0] and et < 0.35 * triceps  # triceps: cross-talk and a trace of tone only
    assert upper_level["fist"][1] < 0.3 * triceps


def test_rotations_are_gyro_bursts_about_the_forearm_axis_with_direction(every_gesture):
    data, items = every_gesture
    imu = data["forearm_imu"]
    for t0, _dur, label in items:
        if not label.startswith("rotate"):
            continue
        m = (imu.t >= t0) & (imu.t < t0 + 1.0)
        gx = imu.data[m, 7]
        peak = gx[np.argmax(np.abs(gx))]
        assert 100 <= abs(peak) <= 330, (label, peak)
        assert np.sign(peak) == (1 if label == "rotate_cw" else -1), label
        # The other axes stay small compared with the rotation.
        assert np.abs(imu.data[m, 8:10]).max() < 0.3 * abs(peak)


def test_accelerometer_and_quaternion_follow_hand_orientation(every_gesture):
    data, items = every_gesture
    imu = data["forearm_imu"]

    def during(label):
        t0, dur, _ = next(it for it in items if it[2] == label)
        m = (imu.t >= t0 + 0.5) & (imu.t < t0 + dur - 0.3)
        return imu.data[m]

    palm_down, thumb_up = during("wave_down"), during("wave_left")
    acc_pd, acc_tu = palm_down[:, 4:7].mean(0), thumb_up[:, 4:7].mean(0)
    assert np.linalg.norm(acc_pd) == pytest.approx(1.0, abs=0.05)
    assert acc_pd[2] > 0.9 and abs(acc_pd[1]) < 0.2  # median wearer: band not rotated, palm down: +z up
    assert acc_tu[1] > 0.9 and abs(acc_tu[2]) < 0.2  # right arm thumb up: +y up
    # The quaternion rotates the sensor's gravity reading back onto world up.
    for rows in (palm_down, thumb_up):
        q, acc = rows[:, 0:4].astype(np.float64), rows[:, 4:7].astype(np.float64)
        w, x, y, z = q.T
        up = np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], axis=1)  # R^T e_z
        cos = (up * acc).sum(1) / np.linalg.norm(acc, axis=1)
        assert cos.min() > 0.97
    # The posture change between them is a slow turn, far below a rotate gesture's speed.
    m = (imu.t > 53.0) & (imu.t < 56.0)
    assert 40 < np.abs(imu.data[m, 7]).max() < 150


def test_waves_move_the_accelerometer_a_little(every_gesture):
    data, items = every_gesture
    imu = data["forearm_imu"]
    t0 = next(it[0] for it in items if it[2] == "wave_down")
    onset = (imu.t >= t0) & (imu.t < t0 + 0.35)
    quiet = (imu.t >= t0 + 1.0) & (imu.t < t0 + 2.5)
    swing = np.ptp(imu.data[onset, 6])
    assert 0.03 < swing < 0.5
    assert np.ptp(imu.data[quiet, 6]) < swing


def test_left_arm_mirrors_thumb_up_and_wave_muscles():
    items = [(2.0, 3.0, "wave_left"), (7.0, 3.0, "wave_right")]
    left = Wearer(arm="left")
    data, _ = generate(seed=2, duration_s=11.0, schedule=Schedule.scripted(items), wearer=left)
    imu, emg = data["forearm_imu"], data["forearm_emg"]
    m = (imu.t > 2.5) & (imu.t < 4.5)
    assert imu.data[m, 5].mean() < -0.9  # left arm thumb up: -y up
    g = left.spatial_gain()
    flexor_ch, extensor_ch = int(np.argmax(g[1])), int(np.argmax(g[0]))
    wave_left = rms_between(emg, 2.5, 4.7)
    wave_right = rms_between(emg, 7.5, 9.7)
    # On a left arm, a wave to the left is a wrist extension.
    assert wave_left[extensor_ch] > 2 * wave_left[flexor_ch]
    assert wave_right[flexor_ch] > 2 * wave_right[extensor_ch]


def test_armband_rotation_shifts_channels_fractionally():
    w0, w1 = Wearer(band_rotation_deg=0.0), Wearer(band_rotation_deg=45.0)
    g0, g1 = w0.spatial_gain(), w1.spatial_gain()
    # One electrode pitch = one channel; channel numbers grow against the physical angle (right-hand
    # rule about +x), so turning the band by +45 deg moves every muscle to the next channel.
    np.testing.assert_allclose(g1, np.roll(g0, 1, axis=1), atol=1e-12)
    half = Wearer(band_rotation_deg=22.5).spatial_gain()
    assert not np.allclose(half, g0) and not np.allclose(half, g1)


def test_closed_form_kinematics_match_the_general_rotation_product():
    rng = np.random.default_rng(0)
    n, band = 64, 0.4
    angles = [rng.uniform(-3, 3, n) for _ in range(4)]
    rates = [rng.normal(0, 2, n) for _ in range(4)]
    q, omega, gravity, to_sensor = sensor_kinematics(*angles, band, *rates)
    q_ref, omega_ref = orientation_and_rate([*angles, np.full(n, band)], [*rates, np.zeros(n)], [2, 1, 0, 1, 0])
    np.testing.assert_allclose(q, q_ref, atol=1e-12)
    np.testing.assert_allclose(omega, omega_ref, atol=1e-12)
    w, x, y, z = q_ref.T
    up = np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], 1)  # R^T e_z
    np.testing.assert_allclose(gravity, up, atol=1e-12)
    v = rng.normal(size=(n, 3))
    q_local, _ = orientation_and_rate([angles[3], np.full(n, band)], [np.zeros(n)] * 2, [1, 0])
    # Rotating the sensor-frame vector back by the local rotation recovers the forearm-frame one.
    w, x, y, z = q_local.T
    local = np.stack(
        [
            np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], 1),
            np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], 1),
            np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], 1),
        ],
        1,
    )
    np.testing.assert_allclose(np.einsum("nij,nj->ni", local, to_sensor(v)), v, atol=1e-12)


# --------------------------------------------------------------------------- levels


def test_twenty_wearers_span_plausible_myo_levels():
    """Synthetic-only bounds (from the real measurements in docs/readme/synthetic.md)."""
    rest_med, fist_med, ext_max = [], [], []
    for seed in range(20):
        items = [(1.0, 3.0, "fist"), (5.0, 3.0, "wrist_extension")]
        data, _ = generate(seed=seed, duration_s=9.0, schedule=Schedule.scripted(items), streams=("forearm_emg",))
        emg = data["forearm_emg"]
        rest_med.append(np.median(window_rms(emg, 0.0, 0.9).mean(1)))
        fist_med.append(np.median(window_rms(emg, 1.4, 3.8).mean(1)))
        ext_max.append(np.median(window_rms(emg, 5.4, 7.8).max(1)))
    rest_med, fist_med, ext_max = map(np.array, (rest_med, fist_med, ext_max))
    # Real Myo subjects (cote_allard_myo, 28 sessions): rest 1.5-5.3, fist 5.4-33, extension max-channel 34-72.
    assert 1.2 <= rest_med.min() and rest_med.max() <= 6.5
    assert 3.5 <= fist_med.min() and fist_med.max() <= 45 and np.ptp(fist_med) > 10
    assert 15 <= ext_max.min() and ext_max.max() <= 110
    # Weak fists exist (real: eval_Female0 and pre_Female8/9 have fist ~1.9 x rest) but are rare.
    assert (fist_med > 1.6 * rest_med).all() and np.median(fist_med / rest_med) > 3


def test_synthetic_levels_overlap_the_real_recordings(shared_data):
    """Per-subject 200 ms RMS medians: the 20 wearers' median lies inside the real subjects'
    range and most wearers do too, for rest and every held gesture, channel-mean and strongest channel."""
    real = []
    for name in ("cote_allard_myo", "myo_readings"):
        if (shared_data / name).is_dir():
            real += synthetic_levels.real_levels(shared_data / name)
    if not real:
        pytest.skip("no cote_allard_myo or myo_readings recordings in the shared data")
    synth = synthetic_levels.synthetic_levels(range(20), reps=1)
    for cls in synthetic_levels.CLASSES:
        for which in (0, 1):
            r = np.array([lv[cls][which] for lv in real if cls in lv])
            v = np.array([lv[cls][which] for lv in synth])
            lo, hi = r.min(), r.max()
            assert lo <= np.median(v) <= hi, (cls, which, np.median(v), lo, hi)
            assert np.mean((v >= 0.8 * lo) & (v <= 1.25 * hi)) >= 0.8, (cls, which, v, lo, hi)


def _synthetic_shapes(seeds: range) -> dict[str, list[dict[str, float]]]:
    out: dict[str, list[dict[str, float]]] = {"rest": [], "fist": []}
    for seed in seeds:
        data, _ = generate(
            seed=seed, duration_s=15.0, schedule=Schedule.scripted([(7.0, 6.0, "fist")]), streams=("forearm_emg",)
        )
        emg = data["forearm_emg"]
        labels = np.full(len(emg), -1, dtype=np.int8)
        labels[emg.t < 6.5] = 0
        labels[(emg.t > 7.3) & (emg.t < 12.8)] = 1
        for cls in ("rest", "fist"):
            stats = synthetic_levels.shape_stats(emg.data, labels, ["rest", "fist"], cls)
            assert stats is not None
            out[cls].append(stats)
    return out


def test_myo_spectrum_and_amplitude_statistics_look_like_a_myo():
    """Synthetic-only bounds (real values in docs/readme/synthetic.md): little power below 10 Hz,
    dips at 50/60 Hz, most power above 62 Hz; gestures super-Gaussian, rest from Gaussian to spiky."""
    shapes = _synthetic_shapes(range(8))
    for cls, recs in shapes.items():
        share = {band: np.median([r[band] for r in recs]) for band in recs[0]}
        assert share["0-10 Hz"] < 5 and share["48-52 Hz"] < 3.5 and share["58-62 Hz"] < 3.5, (cls, share)
        assert share["52-58 Hz"] > 1.5 * share["48-52 Hz"], (cls, share)
        assert 45 < share["62-100 Hz"] < 65, (cls, share)
    fist_ratio = [r["mav/rms"] for r in shapes["fist"]]
    assert all(0.68 < v < 0.79 for v in fist_ratio) and all(r["kurtosis"] > 0.5 for r in shapes["fist"])
    rest_kurtosis = [r["kurtosis"] for r in shapes["rest"]]
    assert min(rest_kurtosis) < 3 < max(rest_kurtosis)
    # Neighbouring electrodes correlate (volume conduction), opposite ones barely.
    for cls, lo, hi in (("rest", 0.05, 0.5), ("fist", 0.25, 0.7)):
        neighbours = np.median([r["corr neighbours"] for r in shapes[cls]])
        opposite = np.median([r["corr opposite"] for r in shapes[cls]])
        assert lo < neighbours < hi and abs(opposite) < 0.2 and opposite < neighbours, (cls, neighbours, opposite)


def test_myo_spectrum_and_statistics_match_the_real_recordings(shared_data):
    real: dict[str, list[dict[str, float]]] = {"rest": [], "fist": []}
    for f in (
        sorted((shared_data / "cote_allard_myo").glob("*.npz"))[:6]
        + sorted((shared_data / "myo_readings").glob("*.npz"))[:4]
    ):
        with np.load(f, allow_pickle=False) as d:
            names = [str(n) for n in d["class_names"]]
            for cls in real:
                stats = synthetic_levels.shape_stats(d["emg"], d["labels"], names, cls)
                if stats is not None:
                    real[cls].append(stats)
    if not real["rest"]:
        pytest.skip("no cote_allard_myo or myo_readings recordings in the shared data")
    synth = _synthetic_shapes(range(8))
    for cls in real:
        for band in real[cls][0]:
            r = np.array([x[band] for x in real[cls]])
            v = np.median([x[band] for x in synth[cls]])
            if band.endswith("Hz"):
                assert abs(v - np.median(r)) < 6.0, (cls, band, v, np.median(r))
            elif band.startswith("corr"):
                assert r.min() - 0.1 <= v <= r.max() + 0.1, (cls, band, v, r.min(), r.max())
            else:
                assert r.min() * 0.9 - 0.5 <= v <= r.max() * 1.1 + 0.5, (cls, band, v, r.min(), r.max())


def test_channel_numbers_grow_towards_the_radial_side_on_a_right_arm():
    """As on a real Myo worn on the right forearm: radial deviation lights up the channel after the
    wrist-extension peak, ulnar deviation the one before (synthetic only, median wearer)."""
    levels = synthetic_levels.synthetic_pattern_levels([0], reps=1)[0]
    aligned = synthetic_levels.aligned_patterns(levels)
    assert aligned is not None
    assert aligned["radial_deviation"][1] > 1.5 * aligned["radial_deviation"][7]
    assert aligned["ulnar_deviation"][7] > 1.5 * aligned["ulnar_deviation"][1]
    # Flexion sits on the opposite side of the ring from extension.
    assert np.argmax(aligned["wrist_flexion"]) in (3, 4, 5)


@pytest.fixture(scope="module")
def real_and_synthetic_patterns(shared_data):
    real_sets = synthetic_levels.real_pattern_sets(shared_data)
    real = [lv for levels in real_sets.values() for lv in levels]
    if len(real) < 10:
        pytest.skip("fewer than 10 cote_allard_myo pre_* / myo_readings development recordings in the shared data")
    return real, synthetic_levels.synthetic_pattern_levels(range(20), reps=1)


def test_synthetic_spatial_patterns_lie_within_the_real_spread(real_and_synthetic_patterns):
    """Each gesture's channel RMS around the ring, every subject turned so that its wrist-extension
    peak is at electrode 0 (cote_allard_myo pre_* and the myo_readings development subjects only):
    the 20 wearers' median pattern lies within the real subjects' 10th-90th percentiles at every
    electrode, most wearers correlate with the real median pattern at least as well as the
    real 10th percentile does, and the patterns are as focal as real ones."""
    real, synth = real_and_synthetic_patterns
    real_stack, synth_stack = synthetic_levels.aligned_stack(real), synthetic_levels.aligned_stack(synth)
    for cls in synthetic_levels.PATTERN_CLASSES:
        r, v = real_stack[cls], synth_stack[cls]
        assert len(v) == 20, cls
        lo, hi = np.percentile(r, 10, axis=0), np.percentile(r, 90, axis=0)
        median = np.median(v, axis=0)
        assert ((median >= lo) & (median <= hi)).all(), (cls, median.round(2), lo.round(2), hi.round(2))
        reference = np.median(r, axis=0)
        corr_real = np.array([np.corrcoef(x, reference)[0, 1] for x in r])
        corr_synth = np.array([np.corrcoef(x, reference)[0, 1] for x in v])
        assert np.mean(corr_synth >= np.percentile(corr_real, 10)) >= 0.75, (cls, corr_synth.round(2))
        focal_lo, focal_hi = np.percentile(r.max(axis=1), [10, 90])
        assert focal_lo <= np.median(v.max(axis=1)) <= focal_hi, (cls, np.median(v.max(axis=1)), focal_lo, focal_hi)


def test_synthetic_gesture_spectra_match_the_real_subjects(real_and_synthetic_patterns):
    """Zero crossings per sample and waveform length per mean absolute value on each gesture's three
    strongest channels: the wearers' median lies within the real subjects' 10th-90th percentiles,
    and a fist is spectrally brighter than a wrist flexion, as in the real subjects."""
    real, synth = real_and_synthetic_patterns

    def values(levels: list, cls: str, stat: str) -> np.ndarray:
        return np.array([synthetic_levels.active_spectrum(lv, cls, stat) for lv in levels if cls in lv])

    for cls in synthetic_levels.PATTERN_CLASSES:
        for stat in ("zc", "wl_mav"):
            r, v = values(real, cls, stat), values(synth, cls, stat)
            lo, hi = np.percentile(r, [10, 90])
            assert lo <= np.median(v) <= hi, (cls, stat, np.median(v), lo, hi)
    for stat in ("zc", "wl_mav"):
        paired = [lv for lv in real if "fist" in lv and "wrist_flexion" in lv]
        real_gap = np.median(values(paired, "fist", stat) - values(paired, "wrist_flexion", stat))
        synth_gap = np.median(values(synth, "fist", stat) - values(synth, "wrist_flexion", stat))
        assert real_gap > 0 and 0.4 * real_gap < synth_gap < 2.5 * real_gap, (stat, synth_gap, real_gap)


# --------------------------------------------------------------------------- live control and pacing


def test_perform_from_another_thread_starts_at_current_data_time():
    arm = SyntheticArm(seed=5, speed=math.inf, schedule=Schedule.idle(), chunk_s=0.1, duration_s=6.0)
    arm.start()
    got: list = []
    for _ in range(10):  # 1 s of rest
        got += arm.read()
    result: list[float] = []
    worker = threading.Thread(target=lambda: result.append(arm.perform("fist", duration_s=1.5)))
    worker.start()
    worker.join(5.0)
    assert not worker.is_alive()
    while not arm.finished:
        got += arm.read()
    arm.stop()
    assert result == [pytest.approx(1.0)]
    cues = [m for m in got if isinstance(m, CueEvent)]
    assert [(c.t, c.label) for c in cues] == [(0.0, "rest"), (pytest.approx(1.0), "fist"), (pytest.approx(2.5), "rest")]
    parts = [m for m in got if isinstance(m, Chunk) and m.info is FOREARM_EMG]
    emg = Chunk(FOREARM_EMG, np.concatenate([c.t for c in parts]), np.concatenate([c.data for c in parts]))
    assert rms_between(emg, 1.3, 2.3).mean() > 3 * rms_between(emg, 0.0, 1.0).mean()


def test_perform_does_not_change_the_emitted_past():
    ref, _ = generate(seed=6, duration_s=4.0, schedule=Schedule.idle())
    arm = SyntheticArm(seed=6, speed=math.inf, schedule=Schedule.idle(), chunk_s=0.25, duration_s=4.0)
    arm.start()
    first = [m for _ in range(8) for m in arm.read() if isinstance(m, Chunk) and m.info is FOREARM_EMG]
    arm.perform("wave_left")  # needs a posture change first: the gesture starts later
    assert arm.label_at(arm.data_time + 0.1) == "rest"
    past = np.concatenate([c.data for c in first])
    np.testing.assert_array_equal(past, ref["forearm_emg"].data[: len(past)])
    later, _ = read_all(arm)
    # ...while the future does change (the wearer turns the hand, then waves).
    assert not np.array_equal(later["forearm_imu"].data, ref["forearm_imu"].data[-len(later["forearm_imu"]) :])


def test_perform_wave_turns_the_hand_first():
    arm = SyntheticArm(seed=6, speed=math.inf, schedule=Schedule.idle(), chunk_s=0.5, duration_s=8.0, wearer=Wearer())
    arm.start()
    arm.read()
    t_gesture = arm.perform("wave_right")
    assert 1.0 < t_gesture - 0.5 < 3.5  # a leisurely 90 degree turn takes a second or two
    data, cues = read_all(arm)
    assert "wave_right" in [c.label for c in cues]
    imu = data["forearm_imu"]
    m = (imu.t > t_gesture) & (imu.t < t_gesture + 0.5)
    assert imu.data[m, 5].mean() > 0.9  # thumb up by the time the wave starts


def test_perform_interrupts_the_gesture_being_held():
    arm = SyntheticArm(seed=3, speed=math.inf, schedule=Schedule.idle(), chunk_s=0.1, duration_s=5.0, wearer=Wearer())
    arm.start()
    msgs = arm.read()
    arm.perform("fist", duration_s=2.0)
    for _ in range(5):
        msgs += arm.read()
    arm.perform("stiffen", duration_s=1.0)  # at 0.6 s, while the fist is still held
    while not arm.finished:
        msgs += arm.read()
    arm.stop()
    cues = [m for m in msgs if isinstance(m, CueEvent)]
    assert [(round(c.t, 6), c.label) for c in cues] == [(0.0, "rest"), (0.1, "fist"), (0.6, "stiffen"), (1.6, "rest")]
    parts = [m for m in msgs if isinstance(m, Chunk) and m.info is FOREARM_EMG]
    emg = Chunk(FOREARM_EMG, np.concatenate([c.t for c in parts]), np.concatenate([c.data for c in parts]))
    assert rms_between(emg, 1.0, 1.6).mean() < 0.5 * rms_between(emg, 0.3, 0.55).mean()  # the fist was released


def test_perform_rejects_unknown_labels():
    arm = SyntheticArm(seed=0, speed=math.inf, schedule=Schedule.idle(), duration_s=1.0)
    with pytest.raises(ValueError, match="unknown synthetic arm label"):
        arm.perform("backflip")


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_paces_like_hardware_at_speed_one_with_a_fake_clock():
    clock = FakeClock()
    arm = SyntheticArm(seed=1, speed=1.0, chunk_s=0.02, duration_s=1.0, clock=clock, sleep=clock.sleep)
    arm.start()
    msgs = arm.read()  # the first 20 ms are due 20 ms after start
    assert clock.sleeps == [pytest.approx(0.02)]
    assert len(next(m for m in msgs if isinstance(m, Chunk) and m.info is FOREARM_EMG)) == 4
    assert arm.read(timeout=0.005) == []  # not due yet: waits only the timeout
    assert clock.sleeps[-1] == pytest.approx(0.005)
    assert arm.read(timeout=0.0) == []
    clock.now += 0.5  # the consumer fell behind: everything due comes at once
    msgs = arm.read()
    emg = next(m for m in msgs if isinstance(m, Chunk) and m.info is FOREARM_EMG)
    assert emg.t[0] == pytest.approx(0.02) and emg.t_end == pytest.approx(0.52 - 0.005)


def test_resuming_after_stop_paces_from_the_restart():
    clock = FakeClock()
    arm = SyntheticArm(seed=1, speed=1.0, chunk_s=0.02, duration_s=5.0, clock=clock, sleep=clock.sleep)
    arm.start()
    arm.read()
    arm.stop()
    clock.now += 10.0  # paused for 10 s: no burst of stale data on resume
    arm.start()
    msgs = arm.read()
    emg = next(m for m in msgs if isinstance(m, Chunk) and m.info is FOREARM_EMG)
    assert len(emg) == 4 and emg.t[0] == pytest.approx(0.02)
    assert clock.sleeps[-1] == pytest.approx(0.02)


def test_speed_ten_paces_ten_times_faster():
    clock = FakeClock()
    arm = SyntheticArm(seed=1, speed=10.0, chunk_s=0.1, duration_s=1.0, clock=clock, sleep=clock.sleep)
    arm.start()
    while not arm.finished:
        arm.read()
    assert clock.now - 100.0 == pytest.approx(0.1)


def test_stop_interrupts_a_pacing_wait():
    arm = SyntheticArm(seed=1, speed=1e-3, chunk_s=0.02, duration_s=1.0)  # would wait 20 s
    arm.start()
    timer = threading.Timer(0.05, arm.stop)
    timer.start()
    try:
        assert arm.read() == []
    finally:
        timer.cancel()
        timer.join()


def test_a_long_session_forgets_the_actions_no_future_block_needs():
    """The arm compiles every gesture into actions; an hour's session kept them all (+1.4 MB/h).
    Once the blocks holding an action are behind, it is dropped, and the output is unchanged."""
    from emgpilot.signals.synthetic import SyntheticArm, generate

    arm = SyntheticArm(seed=7, speed=math.inf, duration_s=300.0, chunk_s=0.25)
    arm.start()
    emg = []
    while not arm.finished:
        emg += [m.data for m in arm.read(0.0) if isinstance(m, Chunk) and m.info.name == "forearm_emg"]
    arm.stop()
    assert len(arm._actions) < 20  # 75 cued gestures were made (plus posture turns)
    reference, _ = generate(seed=7, duration_s=300.0, chunk_s=300.0)  # one block: nothing forgotten early
    np.testing.assert_array_equal(np.concatenate(emg), reference["forearm_emg"].data)
