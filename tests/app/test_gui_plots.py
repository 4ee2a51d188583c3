"""Helpers of the signal/detector panels that need no window."""

from __future__ import annotations

from emgpilot.app.gui.plots import rotation_title
from emgpilot.classifiers.wrist import signed_shift


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
