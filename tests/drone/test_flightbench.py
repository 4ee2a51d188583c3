"""Flight benchmark: JSON keys on a small run, the closed loop with perfect recognition, judging."""

from __future__ import annotations

import argparse
import json
import math
import os

from emgpilot.drone.backend import DroneState
from emgpilot.drone.flightbench import OracleSource, Trial, fly_course, judge, run_flight_bench, short_course
from emgpilot.drone.mapper import Mapper
from emgpilot.signals.streams import CommandEvent

KEYS = {"gestures": int, "correct_response_rate": float, "hoops_passed": int, "hoops_total": int}


def test_small_pipeline_run_reports_the_json_keys() -> None:
    args = argparse.Namespace(json=True, wearers=1, seed=0, short=True, max_gestures=5)
    result = run_flight_bench(args)
    for key, tp in KEYS.items():
        assert isinstance(result[key], tp), key
    assert 1 <= result["gestures"] <= 5
    assert 0.0 <= result["correct_response_rate"] <= 1.0
    assert result["hoops_total"] == 2
    assert result["recognition"] == "pipeline"
    assert sum(result["outcomes"].values()) == result["gestures"]
    json.dumps(result, allow_nan=False)


def test_calibrated_wearers_fly_with_their_calibration() -> None:
    from emgpilot.classifiers.detectors import ActivationDetector
    from emgpilot.drone.flightbench import ArmSource

    source = ArmSource(1, calibrate=True)
    try:
        (act,) = [s for s in source.pipeline.stages if isinstance(s, ActivationDetector)]
        assert act.calibration is not None and act.prior_shift == act.calibration.rotation
        scratch = source._scratch.name
    finally:
        source.close()
    assert not os.path.exists(scratch)  # the calibration file goes with the wearer
    args = argparse.Namespace(wearers=1, seed=1, short=True, max_gestures=4, calibrate=True)
    result = run_flight_bench(args)
    assert result["recognition"] == "pipeline, calibrated wearers" and 1 <= result["gestures"] <= 4


def test_perfect_recognition_flies_the_default_course_with_every_response_correct() -> None:
    # Tests pilot, mapper, safety, simulator and the scripted pilot's strategy together.
    result = run_flight_bench(argparse.Namespace(wearers=1, oracle=True))
    assert result["recognition"] == "oracle"
    assert result["correct_response_rate"] == 1.0
    assert result["hoops_passed"] == result["hoops_total"] == 6
    assert result["collisions"] == 0 and result["courses_finished"] == 1
    assert result["spurious_commands"] == 0


def test_flight_is_deterministic() -> None:
    a = fly_course(OracleSource(), short_course())
    b = fly_course(OracleSource(), short_course())
    a.pop("trials")
    b.pop("trials")
    assert a == b


def _trial(intended: str, delivered: list[str], after: DroneState) -> Trial:
    tr = Trial("g", intended, 0.0, 0.6, DroneState(x=0.0, y=0.0, z=1.0, yaw=0.0, flying_state="hovering"))
    tr.delivered = [CommandEvent(t=0.5, command=c, source="safety") for c in delivered]
    tr.after = after
    return tr


def test_judging_outcomes() -> None:
    m = Mapper()
    moved = DroneState(x=1.0, z=1.0, flying_state="hovering")
    assert judge(_trial("forward", ["forward"], moved), m) == "correct"
    assert judge(_trial("forward", [], moved), m) == "missed"
    assert judge(_trial("forward", ["stop"], moved), m) == "wrong_command"
    assert judge(_trial("forward", ["forward", "turn_left"], moved), m) == "extra_command"
    short = DroneState(x=0.3, z=1.0, flying_state="hovering")
    assert judge(_trial("forward", ["forward"], short), m) == "wrong_motion"
    turned = DroneState(z=1.0, yaw=-math.radians(45), flying_state="hovering")
    assert judge(_trial("turn_right", ["turn_right"], turned), m) == "correct"
    assert judge(_trial("turn_left", ["turn_left"], turned), m) == "wrong_motion"
    assert judge(_trial("stop", ["stop"], DroneState(z=1.0, vx=0.5)), m) == "wrong_motion"
    assert judge(_trial("stop", ["stop"], DroneState(z=1.0)), m) == "correct"
    # automatic hovers from the supervisor are not motion commands the pilot asked for
    assert judge(_trial("forward", ["forward", "hover"], moved), m) == "correct"


def test_scripted_pilot_turns_only_when_a_turn_brings_the_heading_closer() -> None:
    """With 45 deg turns a heading 23 deg off cannot improve (it would be 22 deg off the other way):
    the pilot goes on instead of swinging between the two for ever (a wearer once spent 70
    gestures doing that)."""
    from emgpilot.drone.course import HoopConfig
    from emgpilot.drone.flightbench import ScriptedPilot

    pilot = ScriptedPilot(Mapper())
    hoop = HoopConfig(x=5.0, y=0.0, z=1.0, heading_deg=90.0)
    # In front of the hoop (facing +y, the drone 2 m before it), heights equal, centred.
    near = {"x": 5.0, "y": -2.0, "z": 1.0}
    assert pilot.next_command(DroneState(**near, yaw=math.radians(90 - 23)), hoop, 0) == "forward"
    assert pilot.next_command(DroneState(**near, yaw=math.radians(90 + 24)), hoop, 0) == "forward"
    assert pilot.next_command(DroneState(**near, yaw=math.radians(90 - 40)), hoop, 0) == "turn_left"
