"""Safety supervisor: every rule, with a fake clock and the simulator as the drone."""

from __future__ import annotations

import math
import threading

import pytest

from emgpilot.drone.safety import ManualClock, SafetyConfig, SafetySupervisor
from emgpilot.drone.sim import SimBackend
from emgpilot.signals.streams import CommandEvent, SafetyEvent


class SpyBackend(SimBackend):
    """The simulator backend, noting every call that reached it."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.calls: list[tuple] = []

    def takeoff(self) -> None:
        self.calls.append(("takeoff",))
        super().takeoff()

    def land(self) -> None:
        self.calls.append(("land",))
        super().land()

    def emergency(self) -> None:
        self.calls.append(("emergency",))
        super().emergency()

    def pcmd(self, roll: int, pitch: int, yaw: int, gaz: int) -> None:
        self.calls.append(("pcmd", roll, pitch, yaw, gaz))
        super().pcmd(roll, pitch, yaw, gaz)

    def move_by(self, dx: float, dy: float, dz: float, dpsi: float) -> None:
        self.calls.append(("move_by", dx, dy, dz, dpsi))
        super().move_by(dx, dy, dz, dpsi)


class Rig:
    """A supervisor, its spy backend and a fake clock that also drives the simulator."""

    def __init__(self, cfg: SafetyConfig | None = None, battery: float = 100.0) -> None:
        self.clock = ManualClock(0.0)
        self.backend = SpyBackend(battery=battery)
        self.backend.connect()
        self.backend.step(0.0)
        self.sup = SafetySupervisor(self.backend, cfg, clock=self.clock)

    def run(self, seconds: float, fresh: bool = True, dt: float = 0.05) -> None:
        end = self.clock.t + seconds
        while self.clock.t < end - 1e-9:
            self.clock.set(self.clock.t + dt)
            self.sup.set_data_time(self.clock.t)
            self.backend.step(self.clock.t)
            if fresh:
                self.sup.sensor_seen("forearm_emg")
            self.sup.tick()

    def airborne(self) -> Rig:
        self.run(0.1)
        assert self.sup.takeoff()
        self.run(3.0)
        assert self.backend.state().flying_state == "hovering"
        self.backend.calls.clear()
        self.sup.drain()
        return self

    def command(self, name: str, **args: float) -> CommandEvent | None:
        return self.sup.command(CommandEvent(t=self.clock.t, command=name, args=args, source="test"))

    def decisions(self) -> list[SafetyEvent]:
        return [e for e in self.sup.events if isinstance(e, SafetyEvent)]


def forward_pulse(rig: Rig, pct: float = 40.0, duration: float = 2.0) -> CommandEvent | None:
    return rig.command("forward", roll=0.0, pitch=pct, yaw=0.0, gaz=0.0, duration_s=duration)


def test_every_decision_is_a_recorded_event_with_a_reason() -> None:
    rig = Rig().airborne()
    forward_pulse(rig)
    rig.run(0.5, fresh=False)
    rig.command("takeoff")
    assert rig.decisions()
    assert all(e.reason for e in rig.decisions())
    sent = [e for e in rig.sup.events if isinstance(e, CommandEvent)]
    assert sent and all(e.source == "safety" for e in sent)


def test_stale_sensor_data_means_hover_and_refusal_until_fresh_again() -> None:
    rig = Rig().airborne()
    assert forward_pulse(rig, duration=3.0) is not None
    rig.run(0.25, fresh=False)  # 250 ms: still fresh enough
    assert ("pcmd", 0, 0, 0, 0) not in rig.backend.calls
    rig.run(0.1, fresh=False)  # now 350 ms old
    assert rig.backend.calls[-1] == ("pcmd", 0, 0, 0, 0)
    hover = [e for e in rig.decisions() if e.action == "hover"]
    assert hover and "stale" in hover[0].reason
    assert forward_pulse(rig) is None
    assert "stale" in rig.decisions()[-1].reason
    rig.run(0.1, fresh=True)
    assert any(e.action == "resume" for e in rig.decisions())
    assert forward_pulse(rig) is not None


def test_no_sensor_data_at_all_refuses_motion() -> None:
    rig = Rig()
    rig.run(0.1, fresh=False)
    rig.sup.takeoff()
    rig.run(3.0, fresh=False)
    assert forward_pulse(rig) is None
    assert "no sensor data" in rig.decisions()[-1].reason


def test_lost_device_and_gaps_mean_hover() -> None:
    rig = Rig().airborne()
    forward_pulse(rig)
    rig.sup.device_status("myo", "lost", "no packets")
    assert rig.backend.calls[-1] == ("pcmd", 0, 0, 0, 0)
    assert "myo lost" in rig.decisions()[-1].reason
    rig.run(0.2)
    assert forward_pulse(rig) is None
    rig.sup.device_status("myo", "reconnected")
    assert forward_pulse(rig) is not None
    rig.sup.sensor_gap("forearm_emg", "packet loss")
    assert rig.backend.calls[-1] == ("pcmd", 0, 0, 0, 0)
    assert "gap" in rig.decisions()[-1].reason
    rig.run(0.05)  # data resumes
    assert forward_pulse(rig) is not None


def test_lost_link_is_reported_and_commands_refused() -> None:
    rig = Rig().airborne()
    rig.backend.inject_link_loss()
    rig.run(0.05)
    assert any(e.action == "link_lost" for e in rig.decisions())
    n_calls = len(rig.backend.calls)
    assert forward_pulse(rig) is None
    assert "link lost" in rig.decisions()[-1].reason
    assert len(rig.backend.calls) == n_calls
    assert not rig.sup.takeoff()


def test_speed_and_step_bounds() -> None:
    rig = Rig(SafetyConfig(max_speed_percent=50, max_step_m=2.0, max_pulse_s=3.0)).airborne()
    sent = forward_pulse(rig, pct=100.0, duration=10.0)
    assert sent.args["pitch"] == 50.0 and sent.args["duration_s"] == 3.0
    assert rig.backend.calls[-1] == ("pcmd", 0, 50, 0, 0)
    assert rig.decisions()[-1].action == "limit"
    rig.command("stop")
    sent = rig.command("forward", dx=5.0, dy=0.0, dz=0.0, dpsi=0.0)
    assert sent.args["dx"] == pytest.approx(2.0)
    sent = rig.command("turn_right", dx=0.0, dy=0.0, dz=0.0, dpsi=math.radians(400))
    assert sent.args["dpsi"] == pytest.approx(math.pi)


def test_pulse_ends_in_hover_after_its_duration() -> None:
    rig = Rig().airborne()
    forward_pulse(rig, duration=1.0)
    rig.run(0.9)
    assert rig.backend.calls[-1] == ("pcmd", 0, 40, 0, 0)
    rig.run(0.2)
    assert rig.backend.calls[-1] == ("pcmd", 0, 0, 0, 0)
    rig.run(2.0)
    assert rig.backend.state().horizontal_speed < 0.05


def test_altitude_ceiling_on_moves_pulses_and_drift() -> None:
    rig = Rig(SafetyConfig(altitude_ceiling_m=1.5)).airborne()
    z0 = rig.backend.state().z
    sent = rig.command("up", dx=0.0, dy=0.0, dz=-2.0, dpsi=0.0)
    assert z0 - sent.args["dz"] == pytest.approx(1.5)
    rig.run(4.0)
    assert rig.backend.state().z <= 1.55
    assert rig.command("up", roll=0.0, pitch=0.0, yaw=0.0, gaz=40.0, duration_s=1.0) is None  # at the ceiling
    # a drone that drifts above the ceiling is brought down
    rig.backend.sim.z = 1.8
    rig.run(0.05)
    assert rig.backend.calls[-1] == ("pcmd", 0, 0, 0, -20)
    rig.run(3.0)
    assert rig.backend.state().z <= 1.5
    assert rig.backend.calls[-1] == ("pcmd", 0, 0, 0, 0)


def test_altitude_floor_keeps_moves_off_the_ground() -> None:
    rig = Rig(SafetyConfig(altitude_floor_m=0.3)).airborne()
    sent = rig.command("down", dx=0.0, dy=0.0, dz=5.0, dpsi=0.0)
    assert rig.backend.state().z - sent.args["dz"] == pytest.approx(0.3)


def test_geofence_refuses_outward_moves_and_stops_outward_flight() -> None:
    rig = Rig(SafetyConfig(geofence_radius_m=3.0, max_step_m=5.0)).airborne()
    assert rig.command("forward", dx=4.0, dy=0.0, dz=0.0, dpsi=0.0) is None
    assert "geofence" in rig.decisions()[-1].reason
    assert rig.command("forward", dx=2.5, dy=0.0, dz=0.0, dpsi=0.0) is not None
    rig.run(5.0)
    # at 2.5 m, 1 m from the fence: an outward pulse is cut, an inward one passes
    assert forward_pulse(rig) is None
    assert rig.command("backward", roll=0.0, pitch=-40.0, yaw=0.0, gaz=0.0, duration_s=0.5) is not None
    # flying out anyway (drift, wind) ends in hover at the fence
    rig.backend.sim.set_pcmd(1, 0, 60, 0, 0)  # bypass, as a gust would
    rig.run(3.0)
    assert any(e.action == "hover" and "geofence" in e.reason for e in rig.decisions())


def test_stop_during_a_pulse_and_during_a_move_zeroes_velocity_at_once() -> None:
    rig = Rig().airborne()
    forward_pulse(rig, duration=3.0)
    rig.run(1.0)
    assert rig.backend.state().horizontal_speed > 0.5
    assert rig.command("stop") is not None
    assert rig.backend.calls[-1] == ("pcmd", 0, 0, 0, 0)
    rig.run(0.05)
    rig.run(1.5)
    assert rig.backend.state().horizontal_speed < 0.05
    # the pulse does not come back after stop
    assert rig.backend.calls[-1] == ("pcmd", 0, 0, 0, 0)
    rig.command("forward", dx=2.0, dy=0.0, dz=0.0, dpsi=0.0)
    rig.run(0.8)
    x_at_stop = rig.backend.state().x
    rig.command("stop")
    rig.run(2.0)
    assert rig.backend.state().x < x_at_stop + 0.6  # braked instead of finishing the 2 m move
    assert any(e.kind == "move_by_end" and e.detail["error"] == "interrupted" for e in rig.backend.events)


def test_stop_beats_every_hold() -> None:
    rig = Rig().airborne()
    rig.run(1.0, fresh=False)  # stale
    rig.backend.calls.clear()
    assert rig.command("stop") is not None
    assert rig.backend.calls == [("pcmd", 0, 0, 0, 0)]


def test_takeoff_and_landing_never_come_from_gestures() -> None:
    rig = Rig()
    rig.run(0.1)
    for name in ("takeoff", "land", "emergency"):
        assert rig.command(name) is None
        assert "explicit user action" in rig.decisions()[-1].reason
    assert rig.backend.calls == []
    assert rig.sup.takeoff("gui")
    assert rig.backend.calls == [("takeoff",)]


def test_emergency_always_reaches_the_drone_even_while_the_lock_is_held() -> None:
    rig = Rig().airborne()
    rig.run(1.0, fresh=False)  # stale sensors do not matter for the emergency
    held, release = threading.Event(), threading.Event()

    def hold_lock() -> None:
        with rig.sup._lock:
            held.set()
            release.wait(5.0)

    th = threading.Thread(target=hold_lock)
    th.start()
    try:
        assert held.wait(5.0)
        reached = threading.Event()
        orig = rig.backend.emergency

        def spy() -> None:
            orig()
            reached.set()

        rig.backend.emergency = spy  # type: ignore[method-assign]
        worker = threading.Thread(target=rig.sup.emergency, args=("key",))
        worker.start()
        assert reached.wait(5.0), "emergency waited for the supervisor's lock"
    finally:
        release.set()
        th.join(5.0)
        worker.join(5.0)
    rig.run(1.0)
    assert rig.backend.state().flying_state == "landed"
    assert any(e.action == "emergency" for e in rig.decisions())
    # motion is refused after the cut until the user takes off again
    assert forward_pulse(rig) is None


def test_a_failing_emergency_falls_back_to_landing() -> None:
    rig = Rig().airborne()

    def broken() -> None:
        raise RuntimeError("no queue for cmd 1,0,4")

    rig.backend.emergency = broken  # type: ignore[method-assign]
    rig.sup.emergency()
    assert rig.backend.calls[-1] == ("land",)
    assert rig.decisions()[-1].action == "emergency_failed"


def test_low_battery_lands_and_blocks_takeoff() -> None:
    rig = Rig(SafetyConfig(low_battery_percent=15.0), battery=15.3).airborne()
    rig.run(5.0)
    assert ("land",) in rig.backend.calls
    assert any(e.action == "land" and "battery" in e.reason for e in rig.decisions())
    rig.run(5.0)
    assert rig.backend.state().flying_state == "landed"
    assert not rig.sup.takeoff()
