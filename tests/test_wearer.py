"""Wearer profiles: the armband rotation a wearer's last session learnt, kept for the next one."""

from __future__ import annotations

import json

import pytest

from emgpilot.build import PipelineConfig, build_pipeline
from emgpilot.wearer import (
    MIN_ROTATION_WINDOWS,
    ProfileError,
    WearerProfile,
    apply_profile,
    learnt_rotation,
    load_profile,
    save_profile,
    updated_profile,
)


def test_a_new_wearer_has_an_empty_profile_and_a_saved_one_comes_back(tmp_path):
    assert load_profile("ana", tmp_path) == WearerProfile(name="ana")
    saved = WearerProfile(name="ana", arm="right", wrist_rotation=7, sessions=2, updated="x")
    path = save_profile(saved, tmp_path)
    assert path == tmp_path / "ana.json" and not list(tmp_path.glob(".*tmp"))
    assert load_profile("ana", tmp_path) == saved


@pytest.mark.parametrize("name", ["", "../etc/passwd", "a/b", ".hidden", "x" * 65, "tab\there"])
def test_names_that_cannot_be_a_file_name_are_refused(tmp_path, name):
    with pytest.raises(ProfileError, match="wearer name"):
        load_profile(name, tmp_path)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("{not json", "unreadable"),
        ("[1, 2]", "not an object"),
        ('{"wrist_rotation": 9}', "electrode shift 0-7"),
        ('{"wrist_rotation": true}', "electrode shift 0-7"),
        ('{"arm": "both"}', "arm must be"),
        ('{"sessions": -1}', "sessions must be"),
    ],
)
def test_a_broken_profile_is_reported_and_left_untouched(tmp_path, content, match):
    path = tmp_path / "ana.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ProfileError, match=match) as err:
        load_profile("ana", tmp_path)
    assert str(path) in str(err.value)
    assert path.read_text(encoding="utf-8") == content


def test_the_profile_sets_the_rotation_prior_and_the_arm():
    cfg = apply_profile(PipelineConfig(), WearerProfile(name="ana", arm="left", wrist_rotation=3))
    assert cfg.recognition.wrist_rotation_prior == 3 and cfg.recognition.fusion.arm == "left"
    # The rotation is known: the first gestures need no rotation-free classification.
    assert cfg.recognition.wrist_invariant_windows == 0 and PipelineConfig().recognition.wrist_invariant_windows > 0
    # No rotation learnt yet: only the arm.
    cfg = apply_profile(PipelineConfig(), WearerProfile(name="ana", arm="right"))
    assert cfg.recognition.wrist_rotation_prior == 0 and cfg.recognition.fusion.arm == "right"


def test_a_rotation_learnt_on_the_other_arm_is_not_used():
    cfg = PipelineConfig()
    cfg.recognition.fusion.arm = "right"
    out = apply_profile(cfg, WearerProfile(name="ana", arm="left", wrist_rotation=3))
    assert out.recognition.wrist_rotation_prior == 0 and out.recognition.fusion.arm == "right"
    # Learnt with the arm left to "auto" (ring not mirrored), now worn as a declared left arm.
    cfg.recognition.fusion.arm = "left"
    assert apply_profile(cfg, WearerProfile(name="ana", wrist_rotation=3)).recognition.wrist_rotation_prior == 0
    cfg.recognition.fusion.arm = "auto"
    assert apply_profile(cfg, WearerProfile(name="ana", wrist_rotation=3)).recognition.wrist_rotation_prior == 3


@pytest.fixture(scope="module")
def synthetic_sources():
    from emgpilot.signals.synthetic import SyntheticArm

    return list(SyntheticArm(seed=0, duration_s=1.0).streams())


def _activation(pipeline):
    return next(s for s in pipeline.stages if s.name == "detector.activation")


def test_only_a_rotation_resting_on_enough_windows_is_kept(synthetic_sources):
    pipeline = build_pipeline(synthetic_sources, PipelineConfig())
    est = _activation(pipeline)._estimator
    profile = WearerProfile(name="ana", wrist_rotation=1, sessions=1)
    est.n_windows = MIN_ROTATION_WINDOWS - 1
    assert learnt_rotation(pipeline) is None
    assert updated_profile(profile, pipeline, PipelineConfig()) == profile  # nothing learnt: unchanged
    est.n_windows = MIN_ROTATION_WINDOWS
    est.scores[7] = 1e6
    assert learnt_rotation(pipeline) == 7
    new = updated_profile(profile, pipeline, PipelineConfig())
    assert (new.wrist_rotation, new.sessions) == (7, 2) and new.updated
    json.dumps(new.to_dict())


def test_the_pipeline_starts_its_rotation_estimate_from_the_prior(synthetic_sources):
    cfg = apply_profile(PipelineConfig(), WearerProfile(name="ana", wrist_rotation=1))
    activation = _activation(build_pipeline(synthetic_sources, cfg))
    assert activation.electrode_shift == 1 and activation.rotation_windows == 0

