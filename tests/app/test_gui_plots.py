"""Helpers of the signal/detector panels that need no window."""

from __future__ import annotations

from emgpilot.app.gui.plots import event_row, rotation_title
from emgpilot.classifiers.wrist import signed_shift
from emgpilot.signals.streams import GestureEvent


def test_rotation_title_names_the_armband_turn_and_warns_outside_the_bound():
    assert [signed_shift(s) for s in range(8)] == [0, 1, 2, 3, 4, -3, -2, -1]
    assert rotation_title(7, 7).endswith("armband -1 electrode")
    assert "check the armband" not in rotation_title(0, 0)
    assert rotation_title(1, 1, 0.0, "calibrated for ana").endswith("+1 electrode, calibrated for ana")
    warn = rotation_title(1, 3)
    assert "armband +1 electrode" in warn and "evidence says +3" in warn and "wrist_max_rotation = -1" in warn
    assert signed_shift(-1) == -1 and signed_shift(9) == 1


def test_rotation_title_says_when_the_rotation_free_network_still_answers():
    title = rotation_title(0, 0, 0.6)
    assert "armband +0 electrodes" in title and "rotation-free network 60%" in title
    assert "rotation-free" not in rotation_title(0, 0, 0.0)


def test_event_log_says_when_the_wearers_fist_level_decided():
    plain = GestureEvent(t=1.0, gesture="fist", primitive="fist", confidence=0.8, evidence={"fist_level_nats": 0.0})
    moved = GestureEvent(
        t=2.0, gesture="wave_down", primitive="wrist_flexion", confidence=0.6, evidence={"fist_level_nats": -1.7}
    )
    assert event_row(plain) == ("gesture", "fist", "confidence 0.80")
    assert event_row(moved) == ("gesture", "wave_down", "confidence 0.60; own fist level -1.7 nats towards flexion")
    assert event_row(moved, recorded=True)[0] == "recorded"
