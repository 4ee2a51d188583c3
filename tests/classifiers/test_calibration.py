"""The optional one-session wearer calibration: labelled windows, fitting, files, blending."""

from __future__ import annotations

import json

import numpy as np
import pytest

from emgpilot.classifiers.calibration import (
    CalibrationError,
    WearerCalibration,
    calibration_schedule,
    fit_calibration,
    labelled_windows,
    load_calibration,
    session_features,
    split_half_accuracy,
)
from emgpilot.classifiers.evaluation import synthetic_calibration_session
from emgpilot.classifiers.recognition import load_wrist
from emgpilot.signals.streams import FOREARM_EMG, Chunk, CueEvent, GapEvent, StreamInfo


@pytest.fixture(scope="module")
def model():
    return load_wrist("shipped")


@pytest.fixture(scope="module")
def wearer5(model):
    """Synthetic wearer 5's calibration session: features, labels and the calibration."""
    session = synthetic_calibration_session(5)
    feats, labels = session_features(session.messages, model)
    return feats, labels, fit_calibration(feats, labels, model, source="wearer 5")


def _emg(t0: float, seconds: float, level: float = 3.0) -> Chunk:
    n = int(seconds * 200)
    x = np.random.default_rng(int(t0)).normal(0, level, (n, 8))
    return Chunk(FOREARM_EMG, t0 + np.arange(n) / 200.0, np.clip(x, -127, 127).astype(np.int8))


def test_windows_are_cut_under_settled_cues_without_spanning_a_gap():
    classes = ("rest", "fist", "wrist_flexion", "wrist_extension")
    msgs = [
        CueEvent(0.0, "rest"),
        _emg(0.0, 4.0),
        CueEvent(2.0, "wave_down"),  # a wave asks the forearm for a wrist flexion
        CueEvent(3.5, "stiffen"),  # not a forearm class: no windows
        GapEvent(4.0, source_stream=FOREARM_EMG.name, t_resume=4.5),
        _emg(4.5, 4.0),
        CueEvent(5.0, "fist"),
    ]
    windows, labels = labelled_windows(msgs, classes, window=40, settle_s=1.0)
    assert windows.shape[1:] == (40, 8) and len(windows) == len(labels)
    assert set(labels) == {"rest", "wrist_flexion", "fist"}
    # rest: starts 1.0-1.8 s (window ends before the 2.0 s cue) -> 17 windows 50 ms apart
    assert (labels == "rest").sum() == 17
    # wave_down 2.0-3.5 s: starts 3.0..3.3 s
    assert (labels == "wrist_flexion").sum() == 7
    # fist from 5.0 s: starts 6.0 s up to the end of the data (8.5 s) minus the window
    assert (labels == "fist").sum() == 47


def test_a_session_without_cues_or_forearm_emg_cannot_calibrate():
    with pytest.raises(CalibrationError, match="no cues"):
        labelled_windows([_emg(0.0, 2.0)], ("rest", "fist"), 40)
    with pytest.raises(CalibrationError, match="no forearm EMG"):
        labelled_windows([CueEvent(0.0, "rest")], ("rest", "fist"), 40)


def test_an_armband_with_other_than_eight_electrodes_is_refused(model):
    ten = StreamInfo(FOREARM_EMG.name, "emg", 200.0, tuple(f"ch{i}" for i in range(10)), ("counts",) * 10)
    emg = Chunk(ten, np.arange(1000) / 200.0, np.random.default_rng(0).normal(0, 3, (1000, 10)))
    with pytest.raises(CalibrationError, match=r"needs 8 forearm electrodes.*has 10"):
        session_features([CueEvent(0.0, "fist"), emg], model)


def test_the_calibration_separates_its_wearers_gestures_better_than_another_wearers(model, wearer5):
    feats, labels, cal = wearer5
    assert cal.classes == ("rest", "fist", "wrist_flexion", "wrist_extension")
    assert cal.windows == {c: int((labels == c).sum()) for c in cal.classes}
    assert cal.rotation is not None and 0 <= cal.rotation < 8
    assert split_half_accuracy(feats, labels, model) >= 0.95
    other = synthetic_calibration_session(6)
    f6, y6 = session_features(other.messages, model)

    def accuracy(f, y):
        return float(np.mean(np.array(cal.classes)[np.argmax(cal.log_proba(f), axis=1)] == y))

    assert accuracy(f6, y6) < accuracy(feats, labels) - 0.1


def test_the_schedule_holds_each_gesture_several_times():
    items = calibration_schedule(repetitions=2, hold_s=2.0, rest_s=1.0, start_s=1.0)
    assert [g for _, _, g in items] == ["fist", "fist", "wrist_flexion", "wrist_flexion", *["wrist_extension"] * 2]
    assert items[1][0] == 4.0 and all(d == 2.0 for _, d, _ in items)


def test_too_few_windows_are_refused_with_the_counts(model, wearer5):
    feats, labels, _ = wearer5
    keep = (labels == "rest") | (labels == "fist")
    with pytest.raises(CalibrationError, match=r"at least two gestures.*fist 185"):
        fit_calibration(feats[keep], labels[keep], model)


def test_blend_multiplies_and_leaves_uncalibrated_classes_neutral(wearer5):
    _, _, cal = wearer5
    classes = ("rest", "fist", "wrist_flexion", "wrist_extension", "hand_open")
    flat = np.full((3, 5), 0.2, dtype=np.float32)
    feats = wearer5[0][:3]
    out = cal.blend(flat, feats, classes)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
    q = np.exp(cal.log_proba(feats))
    # with a flat network answer the calibrated classes follow the calibration, scaled by the
    # share the uncalibrated class keeps (1/4 of one calibrated unit)
    np.testing.assert_allclose(out[:, :4] / out[:, :4].sum(axis=1, keepdims=True), q, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out[:, 4], 0.25 / (1.0 + 0.25), rtol=1e-4)


def test_the_file_round_trips_and_bad_files_are_named(tmp_path, wearer5):
    _, _, cal = wearer5
    path = cal.save(tmp_path / "sub" / "cal.json")
    back = load_calibration(path)
    np.testing.assert_array_equal(back.coef, cal.coef)
    assert (back.classes, back.rotation, back.windows, back.source) == (
        cal.classes,
        cal.rotation,
        cal.windows,
        "wearer 5",
    )
    good = json.loads(path.read_text())
    cases = {
        "not json": ("{", "unreadable"),
        "format": ({**good, "format": "x"}, "not an emgpilot wearer calibration"),
        "version": ({**good, "version": 99}, "version 99"),
        "shape": ({**good, "coef": good["coef"][:2]}, "do not fit"),
        "nan": ({**good, "intercept": [None] * len(good["intercept"])}, "NaN"),
        "classes": ({**good, "classes": ["rest"]}, "at least two"),
        "precision": ({**good, "precision": good["precision"][:3]}, "do not fit"),
    }
    for name, (content, match) in cases.items():
        bad = tmp_path / f"{name}.json"
        bad.write_text(content if isinstance(content, str) else json.dumps(content))
        with pytest.raises(CalibrationError, match=match) as err:
            load_calibration(bad)
        assert str(bad) in str(err.value)
    with pytest.raises(CalibrationError, match="does not exist"):
        load_calibration(tmp_path / "missing.json")


def test_a_calibration_for_other_features_is_refused(model, wearer5):
    _, _, cal = wearer5
    layout = {"feature_names": ["a"], "coef": np.zeros((4, 8)).tolist(), "means": None, "precision": None}
    other = WearerCalibration.from_dict({**cal.to_dict(), **layout})
    with pytest.raises(CalibrationError, match="calibrate again"):
        other.check_model(model)


def test_the_recogniser_loads_the_configured_calibration(tmp_path, model, wearer5, caplog):
    from emgpilot.classifiers.detectors import ActivationDetector
    from emgpilot.classifiers.recognition import RecognitionConfig, recognition_stages
    from emgpilot.signals.streams import StreamInfo

    filtered = StreamInfo("forearm_emg.filtered", "filtered", 200.0, tuple(f"emg{i}" for i in range(8)))
    path = wearer5[2].save(tmp_path / "cal.json")
    cfg = RecognitionConfig(wrist_calibration=str(path))
    (act,) = [s for s in recognition_stages(cfg, {filtered.name: filtered}) if isinstance(s, ActivationDetector)]
    assert act.calibration is not None and act.calibration.classes == wearer5[2].classes
    path.write_text("[]")
    with pytest.raises(CalibrationError, match=str(path)):
        recognition_stages(cfg, {filtered.name: filtered})
    cfg = RecognitionConfig(wrist_calibration=str(path), wrist_model="")
    with caplog.at_level("WARNING"):
        (act,) = [s for s in recognition_stages(cfg, {filtered.name: filtered}) if isinstance(s, ActivationDetector)]
    assert act.calibration is None and "no wrist network" in caplog.text


def test_thumb_up_waves_swap_on_a_left_arm():
    from emgpilot.classifiers.calibration import forearm_class

    classes = ("rest", "fist", "wrist_flexion", "wrist_extension")
    assert forearm_class("wave_left", classes) == "wrist_flexion"
    assert forearm_class("wave_left", classes, left_arm=True) == "wrist_extension"
    assert forearm_class("wave_down", classes, left_arm=True) == "wrist_flexion"
    assert forearm_class("stiffen", classes) is None and forearm_class("rotate_cw", classes) is None


def test_the_detector_follows_a_band_turned_since_the_calibration(model, wearer5):
    """Wearer 5's band turned by one electrode after calibrating: the activation detector notices
    from how the windows fit the calibrated gestures, and turns the calibration's input back."""
    from emgpilot.classifiers.detectors import ActivationDetector, DetectorConfig
    from emgpilot.signals.pipeline import Pipeline
    from emgpilot.signals.preprocess import EMGConditioner, PreprocessConfig

    session = synthetic_calibration_session(5)  # same wearer, held gestures
    emg = [m for m in session.messages if isinstance(m, Chunk) and m.info.name == FOREARM_EMG.name]
    cal = wearer5[2]

    def turn_seen(turn: int) -> int:
        cond = EMGConditioner(FOREARM_EMG, PreprocessConfig().forearm)
        det = ActivationDetector(cond.outputs[0], DetectorConfig(), model, calibration=cal, prior_shift=cal.rotation)
        pipe = Pipeline([cond, det], sources=[FOREARM_EMG.name])
        for m in emg:
            pipe.push(Chunk(m.info, m.t, np.roll(m.data, turn, axis=1)))
        pipe.finish()
        return det._cal_move

    assert turn_seen(0) == 0
    assert turn_seen(1) == 1 and turn_seen(-1) == -1
