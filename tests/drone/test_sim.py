"""Simulator dynamics, determinism in data time, and the hoop course."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from emgpilot.config import ConfigError
from emgpilot.drone.backend import DroneBackend, state_from_row, telemetry_chunk
from emgpilot.drone.course import Course, CourseConfig, HoopConfig, load_course
from emgpilot.drone.sim import DroneSim, SimBackend, SimParams


def hovering_sim(**kw) -> DroneSim:
    sim = DroneSim(**kw)
    sim.takeoff()
    sim.step(3.5)
    assert sim.flying_state == "hovering"
    sim.pop_events()
    return sim


def test_takeoff_reaches_a_1m_hover_in_2_to_3_s() -> None:
    sim = DroneSim()
    sim.takeoff()
    t_hover = None
    for _ in range(400):
        sim.step(0.01)
        if sim.flying_state == "hovering":
            t_hover = sim.t
            break
    assert t_hover is not None and 1.5 <= t_hover <= 3.0
    assert sim.z == pytest.approx(1.0, abs=0.1)
    states = [e.detail["state"] for e in sim.pop_events() if e.kind == "flying_state"]
    assert states == ["takingoff", "hovering"]


def test_speed_tilt_and_yaw_rate_are_bounded() -> None:
    p = SimParams()
    sim = hovering_sim(params=p)
    sim.set_pcmd(1, 0, 100, 0, 0)
    max_pitch = 0.0
    for _ in range(500):
        sim.step(0.01)
        max_pitch = max(max_pitch, abs(sim.pitch))
    assert sim.state().horizontal_speed == pytest.approx(p.max_horizontal_speed, rel=0.02)
    assert max_pitch <= math.radians(p.max_tilt_deg) + 1e-9
    assert sim.flying_state == "flying"
    # the velocity responds with a lag: far from full speed after 100 ms
    sim2 = hovering_sim(params=p)
    sim2.set_pcmd(1, 0, 100, 0, 0)
    sim2.step(0.1)
    assert sim2.state().horizontal_speed < 0.5 * p.max_horizontal_speed
    # yaw: positive PCMD yaw is clockwise (negative in the world frame)
    sim3 = hovering_sim(params=p)
    sim3.set_pcmd(0, 0, 0, 100, 0)
    sim3.step(1.0)
    assert sim3.yaw < 0
    assert abs(sim3.yaw_rate) == pytest.approx(math.radians(p.max_yaw_rate_deg), rel=0.02)
    # roll/pitch ignored without the flag (ARSDK semantics)
    sim4 = hovering_sim()
    sim4.set_pcmd(0, 50, 50, 0, 0)
    sim4.step(1.0)
    assert sim4.state().horizontal_speed < 1e-9


def test_frame_conventions_forward_right_up() -> None:
    sim = hovering_sim()
    sim.set_pcmd(1, 50, 0, 0, 0)  # roll right
    sim.step(1.0)
    assert sim.y < -0.1 and abs(sim.x) < 1e-6  # right is -y in the world frame (y = left)
    sim = hovering_sim()
    z0 = sim.z
    sim.set_pcmd(0, 0, 0, 0, 50)
    sim.step(1.0)
    assert sim.z > z0 + 0.3


def test_landing_and_emergency() -> None:
    sim = hovering_sim()
    sim.land()
    sim.step(1.0)
    assert sim.flying_state == "landing"
    sim.step(2.5)
    assert sim.flying_state == "landed" and sim.z == 0.0
    sim = hovering_sim()
    sim.set_pcmd(1, 0, 50, 0, 0)
    sim.step(1.0)
    sim.emergency()
    assert sim.flying_state == "emergency"
    sim.step(0.6)  # falls 1 m in ~0.45 s
    assert sim.flying_state == "landed" and sim.z == 0.0
    states = [e.detail["state"] for e in sim.pop_events() if e.kind == "flying_state"]
    assert states[-2:] == ["emergency", "landed"]
    b = sim.battery
    sim.step(10.0)
    assert sim.battery == b  # motors off: no drain


def test_move_by_completes_and_reports_move_by_end() -> None:
    sim = hovering_sim()
    sim.move_by(1.0, 0.5, -0.5, math.radians(90))  # forward, right, up, turn clockwise
    sim.step(8.0)
    ends = [e for e in sim.pop_events() if e.kind == "move_by_end"]
    assert len(ends) == 1 and ends[0].detail["error"] == "ok"
    assert sim.x == pytest.approx(1.0, abs=0.1)
    assert sim.y == pytest.approx(-0.5, abs=0.1)
    assert sim.z == pytest.approx(1.5, abs=0.12)
    assert sim.yaw == pytest.approx(-math.pi / 2, abs=0.05)
    # a PCMD takes over from a running move
    sim.move_by(2.0, 0, 0, 0)
    sim.step(0.5)
    sim.set_pcmd(1, 0, 0, 0, 0)
    ends = [e for e in sim.pop_events() if e.kind == "move_by_end"]
    assert ends[-1].detail["error"] == "interrupted"
    # not available on the ground
    ground = DroneSim()
    assert not ground.move_by(1, 0, 0, 0)
    assert ground.pop_events()[-1].detail["error"] == "notAvailable"


def test_battery_drains_in_flight_and_lands_when_empty() -> None:
    sim = DroneSim(battery=0.2)
    sim.takeoff()
    sim.step(2.0)
    assert sim.battery < 0.2
    sim.step(10.0)
    assert sim.battery == 0.0 and sim.flying_state == "landed"
    sim.takeoff()
    assert sim.flying_state == "landed"


def _script(sim: DroneSim, chunk: float) -> list[tuple]:
    """A fixed command script at fixed data times, stepped in chunks of ``chunk`` seconds."""
    plan = {0.0: ("takeoff",), 3.0: ("pcmd", 1, 20, 60, -30, 10), 5.0: ("move_by", 1.0, -0.5, 0.2, 0.7), 9.0: ("land",)}
    t = 0.0
    pending = sorted(plan.items())
    while t < 12.0:
        while pending and pending[0][0] <= t + 1e-9:
            _, cmd = pending.pop(0)
            if cmd[0] == "takeoff":
                sim.takeoff()
            elif cmd[0] == "pcmd":
                sim.set_pcmd(*cmd[1:])
            elif cmd[0] == "move_by":
                sim.move_by(*cmd[1:])
            else:
                sim.land()
        t = round(t + chunk, 9)
        sim.step_to(t)
    s = sim.state()
    return [(round(s.t, 6), s.x, s.y, s.z, s.yaw, s.vx, s.battery, s.flying_state)]


def test_deterministic_and_independent_of_step_size() -> None:
    a = _script(DroneSim(), 0.05)
    b = _script(DroneSim(), 0.05)
    c = _script(DroneSim(), 0.01)
    assert a == b
    assert a == c  # same commands at the same data times: same flight, whatever the chunking


def test_sim_backend_satisfies_the_protocol_and_reports_telemetry() -> None:
    b = SimBackend()
    assert isinstance(b, DroneBackend)
    assert b.state().link == "disconnected"
    b.takeoff()  # not connected: dropped
    b.step(0.0)
    b.step(1.0)
    assert b.state().flying_state == "landed"
    assert b.connect() and b.state().link == "connected"
    b.takeoff()
    b.step(4.0)
    s = b.state()
    assert s.flying_state == "hovering"
    chunk = telemetry_chunk([s])
    assert chunk.info.name == "drone_telemetry"
    back = state_from_row(chunk.t[0], chunk.data[0])
    assert back.flying_state == "hovering" and back.z == pytest.approx(s.z)
    b.close()


# --------------------------------------------------------------------------- course


def _fly_line(course: Course, y: float, z: float, heading: float = 0.0, x0: float = 0.0, x1: float = 4.0) -> None:
    """Feed the course a straight flight along x at (y, z)."""
    from emgpilot.drone.backend import DroneState

    n = 100
    xs = [x0 + (x1 - x0) * i / n for i in range(n + 1)]
    for i in range(n):
        a = DroneState(t=i * 0.05, x=xs[i], y=y, z=z, flying_state="flying")
        b = DroneState(t=(i + 1) * 0.05, x=xs[i + 1], y=y, z=z, flying_state="flying")
        course.update(a, b)


def test_pass_detection_collisions_direction_and_order() -> None:
    cfg = CourseConfig(hoops=(HoopConfig(x=2.0, y=0.0, z=1.0, radius=0.5), HoopConfig(x=3.0, y=0.0, z=1.0)))
    c = Course(cfg)
    _fly_line(c, y=0.1, z=1.1)
    assert c.score()["hoops_passed"] == 2 and c.finished and c.score()["collisions"] == 0
    c = Course(cfg)
    _fly_line(c, y=0.45, z=1.0)  # body overlaps the rim
    assert c.score()["hoops_passed"] == 0 and c.score()["collisions"] == 2
    c = Course(cfg)
    _fly_line(c, y=1.5, z=1.0)  # beside the hoops
    assert c.score() == {"hoops_passed": 0, "hoops_total": 2, "collisions": 0, "course_time_s": None, "finished": False}
    c = Course(cfg)
    _fly_line(c, y=0.0, z=1.0, x0=4.0, x1=0.0)  # the wrong way through
    assert c.score()["hoops_passed"] == 0
    # out of order: the second hoop does not count before the first
    c = Course(CourseConfig(hoops=(HoopConfig(x=3.0), HoopConfig(x=2.0))))
    _fly_line(c, y=0.0, z=1.0)
    assert c.score()["hoops_passed"] == 1


def test_simulated_flight_through_a_hoop_scores() -> None:
    b = SimBackend(Course(CourseConfig(hoops=(HoopConfig(x=2.0, z=1.0),))))
    b.connect()
    b.step(0.0)
    b.takeoff()
    b.step(3.0)
    b.pcmd(0, 40, 0, 0)
    b.step(7.0)
    score = b.course.score()
    assert score["hoops_passed"] == 1 and score["finished"] and 3.0 < score["course_time_s"] < 7.0


def test_course_toml_is_strict(tmp_path: Path) -> None:
    good = tmp_path / "course.toml"
    good.write_text("body_radius = 0.1\n[[hoops]]\nx = 2.0\nz = 1.2\n[[hoops]]\nx = 4.0\nheading_deg = 90.0\n")
    cfg = load_course(good)
    assert len(cfg.hoops) == 2 and cfg.hoops[1].heading_deg == 90.0
    bad = tmp_path / "bad_course.toml"
    bad.write_text("[[hoops]]\nx = 2.0\nradius_m = 1\n")
    with pytest.raises(ConfigError, match=r"bad_course\.toml"):
        load_course(bad)
    assert len(load_course().hoops) == 6
