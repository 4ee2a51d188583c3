"""Mapper: gesture -> command per the TOML mapping, strict configuration."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from emgpilot.config import ConfigError
from emgpilot.drone.commands import MOTION_COMMANDS, USER_ACTIONS
from emgpilot.drone.mapper import DEFAULT_MAPPING_PATH, Mapper, MappingConfig, load_mapping
from emgpilot.signals.streams import GestureEvent
from emgpilot.signals.vocabulary import GESTURES


def test_shipped_mapping_file_matches_the_builtin_defaults() -> None:
    assert load_mapping() == MappingConfig()
    assert load_mapping(DEFAULT_MAPPING_PATH) == MappingConfig()


def test_default_mapping_follows_the_vocabulary_table() -> None:
    m = Mapper()
    expected = {
        "stiffen": "stop",
        "fist": "forward",
        "wave_up": "up",
        "wave_down": "down",
        "wave_left": "left",
        "wave_right": "right",
        "rotate_ccw": "turn_left",
        "rotate_cw": "turn_right",
    }
    assert {g: m.command_for(g) for g in GESTURES} == expected


def test_every_gesture_maps_to_a_motion_command_never_a_user_action() -> None:
    m = Mapper()
    for g in GESTURES:
        cmd = m.map(GestureEvent(t=1.0, gesture=g, confidence=1.0))
        assert cmd is not None and cmd.command in MOTION_COMMANDS
        assert cmd.command not in USER_ACTIONS
        assert cmd.source == f"gesture:{g}"
        assert cmd.t == 1.0


def test_move_arguments_use_the_bebop_body_frame() -> None:
    m = Mapper()
    fwd = m.map(GestureEvent(t=0.0, gesture="fist")).args
    assert fwd == {"dx": 1.0, "dy": 0.0, "dz": 0.0, "dpsi": 0.0}
    up = m.map(GestureEvent(t=0.0, gesture="wave_up")).args
    assert up["dz"] == pytest.approx(-0.5)  # dz is down in the Bebop frame
    left = m.map(GestureEvent(t=0.0, gesture="wave_left")).args
    assert left["dy"] == pytest.approx(-0.5)  # dy is right
    cw = m.map(GestureEvent(t=0.0, gesture="rotate_cw")).args
    assert cw["dpsi"] == pytest.approx(math.radians(45))  # dpsi is clockwise
    assert m.map(GestureEvent(t=0.0, gesture="stiffen")).args == {}


def test_pulse_mode_and_custom_mapping_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(
        'min_confidence = 0.5\n[gestures]\nfist = "backward"\nwave_up = "none"\n'
        '[commands.backward]\nmode = "pulse"\nspeed_percent = 30\nduration_s = 0.8\n'
    )
    m = Mapper(load_mapping(path))
    cmd = m.map(GestureEvent(t=0.0, gesture="fist", confidence=0.9))
    assert cmd.command == "backward"
    assert cmd.args == {"roll": 0.0, "pitch": -30.0, "yaw": 0.0, "gaz": 0.0, "duration_s": 0.8}
    assert m.map(GestureEvent(t=0.0, gesture="wave_up", confidence=0.9)) is None
    assert m.map(GestureEvent(t=0.0, gesture="fist", confidence=0.4)) is None  # below min_confidence
    assert m.map(GestureEvent(t=0.0, gesture="not_a_gesture", confidence=1.0)) is None


@pytest.mark.parametrize(
    "text, needle",
    [
        ('[gestures]\nfists = "forward"\n', "fists"),  # unknown gesture name
        ('[gestures]\nfist = "takeoff"\n', "takeoff"),  # user actions can never be mapped
        ("[commands.forward]\nspeed = 3\n", "speed"),  # unknown setting
        ('[commands.forward]\nmode = "teleport"\n', "teleport"),
        ("min_confidence = 'high'\n", "min_confidence"),
        ("[gestures\n", "not valid TOML"),
    ],
)
def test_bad_mapping_files_are_errors_naming_the_file(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad_mapping.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_mapping(path)
    assert "bad_mapping.toml" in str(info.value)
    assert needle in str(info.value)


def test_missing_mapping_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_mapping(tmp_path / "absent.toml")
