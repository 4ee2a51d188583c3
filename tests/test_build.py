"""Loading a pipeline configuration: bad settings are configuration errors naming the file."""

from __future__ import annotations

import pytest

from emgpilot.build import load_pipeline_config
from emgpilot.config import ConfigError


@pytest.mark.parametrize(
    ("toml", "says"),
    [
        ('[recognition.fusion]\narm = "both"\n', "arm must be"),
        ("[recognition.fusion]\nfist_level_history = 2\n", "fist_level_history"),
        ("[recognition.fusion]\nfist_level_min_std = 0.0\n", "fist_level_min_std"),
    ],
)
def test_a_bad_stage_setting_is_a_configuration_error(tmp_path, toml, says):
    path = tmp_path / "pipeline.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=says) as err:
        load_pipeline_config(path)
    assert str(path) in str(err.value)


def test_a_good_configuration_loads(tmp_path):
    path = tmp_path / "pipeline.toml"
    path.write_text("[recognition.fusion]\nfist_level_episodes = 0\n")
    assert load_pipeline_config(path).recognition.fusion.fist_level_episodes == 0


@pytest.mark.parametrize("setting", ["wrist_model", "wrist_invariant_model"])
def test_a_wrist_network_that_cannot_be_read_is_a_configuration_error(tmp_path, setting):
    # It used to be a warning, and the session ran without flexion/extension.
    path = tmp_path / "pipeline.toml"
    path.write_text(f'[recognition]\n{setting} = "{tmp_path / "nope.safetensors"}"\n')
    with pytest.raises(ConfigError, match=f"recognition.{setting}: .*nope") as err:
        load_pipeline_config(path)
    assert str(path) in str(err.value)


def test_errors_name_the_file_and_the_section(tmp_path):
    path = tmp_path / "pipeline.toml"
    path.write_text("[recognition]\nfoo = 1\n")
    says = r"pipeline\.toml: \[recognition\] unknown setting\(s\) foo; known: activation, enabled"
    with pytest.raises(ConfigError, match=says) as err:
        load_pipeline_config(path)
    assert str(err.value).startswith(str(path))
    path.write_text('[recognition.activation.mixture]\nmin_lift = "x"\n')
    with pytest.raises(ConfigError, match=r"pipeline\.toml: recognition\.activation\.mixture\.min_lift: expected"):
        load_pipeline_config(path)
