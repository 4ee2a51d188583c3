"""Pilot end to end: a scripted device with injected gesture events, through the session runner."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from emgpilot.drone.mapper import CommandSpec, CommandTable, MappingConfig
from emgpilot.drone.pilot import PILOT_STREAMS, Pilot
from emgpilot.drone.safety import ManualClock
from emgpilot.drone.sim import SimBackend
from emgpilot.signals.pipeline import Pipeline
from emgpilot.signals.runner import SessionRunner
from emgpilot.signals.streams import (
    EVENT_STREAMS,
    FOREARM_EMG,
    Chunk,
    CommandEvent,
    Event,
    GestureEvent,
    Message,
    SafetyEvent,
    StatusEvent,
)


class ScriptedDevice:
    """EMG zeros in 50 ms chunks plus events at given data times; optional data gaps."""

    name = "scripted"

    def __init__(self, duration_s: float, events: list[Event], gaps: list[tuple[float, float]] = ()) -> None:
        self.duration_s = duration_s
        self.events = sorted(events, key=lambda e: e.t)
        self.gaps = list(gaps)
        self.t = 0.0
        self._finished = False

    def streams(self) -> list:
        return [FOREARM_EMG, EVENT_STREAMS["gesture"], EVENT_STREAMS["status"]]

    def info(self) -> dict[str, Any]:
        return {"model": "scripted"}

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    @property
    def finished(self) -> bool:
        return self._finished

    def read(self, timeout: float | None = None) -> list[Message]:
        if self.t >= self.duration_s:
            self._finished = True
            return []
        t0, t1 = self.t, self.t + 0.05
        self.t = t1
        out: list[Message] = []
        if not any(a <= t0 < b for a, b in self.gaps):
            t = np.arange(200) / 200.0
            t = t0 + t[t < 0.05 - 1e-9]
            out.append(Chunk(FOREARM_EMG, t, np.zeros((len(t), 8))))
        while self.events and self.events[0].t < t1:
            out.append(self.events.pop(0))
        return out


class ListRecorder:
    def __init__(self) -> None:
        self.msgs: list[Message] = []

    def write(self, msgs: list[Message]) -> None:
        self.msgs.extend(msgs)


def fly(events: list[Event], duration: float = 20.0, gaps=(), mapping: MappingConfig | None = None):
    backend = SimBackend()
    backend.connect()
    rec = ListRecorder()
    pilot = Pilot(backend, mapping=mapping, recorder=rec)
    device = ScriptedDevice(duration, events, gaps)
    runner = SessionRunner(device, Pipeline([], sources=[s.name for s in device.streams()]), sinks=[pilot])
    runner.step()
    assert pilot.takeoff("test")
    runner.run()
    return pilot, backend, rec


def gesture(t: float, name: str) -> GestureEvent:
    return GestureEvent(t=t, gesture=name, confidence=0.9)


def sent(msgs: list[Message]) -> list[CommandEvent]:
    return [m for m in msgs if isinstance(m, CommandEvent) and m.source == "safety"]


def test_gestures_fly_the_simulator_through_mapper_and_safety() -> None:
    events = [gesture(4.0, "fist"), gesture(8.0, "wave_up"), gesture(11.0, "rotate_cw"), gesture(14.0, "wave_left")]
    _pilot, backend, rec = fly(events, duration=18.0)
    s = backend.state()
    # forward 1 m, up 0.5 m, turn 45 deg clockwise, then 0.5 m to the drone's left
    assert s.z == pytest.approx(1.5, abs=0.15)
    assert s.yaw == pytest.approx(-math.pi / 4, abs=0.05)
    left = (-math.sin(s.yaw), math.cos(s.yaw))
    assert s.x == pytest.approx(1.0 + 0.5 * left[0], abs=0.15)
    assert s.y == pytest.approx(0.5 * left[1], abs=0.15)
    cmds = [c.command for c in sent(rec.msgs)]
    assert cmds == ["forward", "up", "turn_right", "left"]
    mapper_cmds = [m for m in rec.msgs if isinstance(m, CommandEvent) and m.source.startswith("mapper:")]
    assert [m.source for m in mapper_cmds] == [
        "mapper:gesture:fist",
        "mapper:gesture:wave_up",
        "mapper:gesture:rotate_cw",
        "mapper:gesture:wave_left",
    ]
    first = next(m for m in rec.msgs if isinstance(m, CommandEvent))
    assert first.command == "takeoff" and first.source == "user:test"
    # telemetry at ~10 Hz over the whole flight, in the declared stream
    tel = [m for m in rec.msgs if isinstance(m, Chunk)]
    assert all(m.info == PILOT_STREAMS[2] for m in tel)
    n = sum(len(m) for m in tel)
    assert 170 <= n <= 185
    t = np.concatenate([m.t for m in tel])
    assert np.all(np.diff(t) > 0)


def test_stop_gesture_during_a_pulse_stops_the_drone() -> None:
    pulse = MappingConfig(commands=CommandTable(forward=CommandSpec(mode="pulse", speed_percent=50, duration_s=3.0)))
    _pilot, backend, rec = fly([gesture(4.0, "fist"), gesture(5.0, "stiffen")], duration=8.0, mapping=pulse)
    cmds = sent(rec.msgs)
    assert [c.command for c in cmds][:2] == ["forward", "stop"]
    assert backend.state().horizontal_speed < 0.05
    assert backend.state().x < 1.3  # 1 s at up to 1 m/s plus braking, not 3 s of flight


def test_sensor_gap_in_data_time_makes_the_drone_hover() -> None:
    pulse = MappingConfig(commands=CommandTable(forward=CommandSpec(mode="pulse", speed_percent=50, duration_s=3.0)))
    _pilot, _backend, rec = fly(
        [gesture(4.0, "fist"), gesture(6.0, "fist")], duration=9.0, gaps=[(4.5, 5.5)], mapping=pulse
    )
    hovers = [m for m in rec.msgs if isinstance(m, SafetyEvent) and m.action == "hover"]
    assert hovers and "stale" in hovers[0].reason
    # last data at ~4.5 s: the hold comes 300 ms later, checked every 50 ms of data time
    assert 4.8 <= hovers[0].t <= 4.9
    assert any(m.action == "resume" for m in rec.msgs if isinstance(m, SafetyEvent))
    assert [c.command for c in sent(rec.msgs)].count("forward") == 2  # allowed again after the gap


def test_lost_device_status_makes_the_drone_hover_and_refuse() -> None:
    events = [
        gesture(4.0, "fist"),
        StatusEvent(t=4.5, device="myo", status="lost", detail="no packets"),
        gesture(6.0, "fist"),
        StatusEvent(t=7.0, device="myo", status="reconnected"),
        gesture(8.0, "wave_up"),
    ]
    _pilot, _backend, rec = fly(events, duration=11.0)
    decisions = [m for m in rec.msgs if isinstance(m, SafetyEvent)]
    assert any(d.action == "hover" and "myo lost" in d.reason for d in decisions)
    assert any(d.action == "refuse" and "myo lost" in d.reason for d in decisions)
    assert [c.command for c in sent(rec.msgs) if c.command != "hover"] == ["forward", "up"]


def test_replays_are_identical() -> None:
    events = [gesture(4.0, "fist"), gesture(6.5, "rotate_ccw"), gesture(8.0, "stiffen")]
    _, b1, r1 = fly(list(events), duration=10.0)
    _, b2, r2 = fly(list(events), duration=10.0)
    ev1 = [m.to_json() for m in r1.msgs if isinstance(m, Event)]
    ev2 = [m.to_json() for m in r2.msgs if isinstance(m, Event)]
    assert ev1 == ev2 and b1.state() == b2.state()


def test_live_clock_staleness_via_tick_without_data() -> None:
    clock = ManualClock(100.0)
    backend = SimBackend()
    backend.connect()
    pilot = Pilot(backend, clock=clock)
    chunk = Chunk(FOREARM_EMG, np.array([0.0, 0.005]), np.zeros((2, 8)))
    pilot.process([chunk])
    pilot.takeoff()
    for k in range(1, 80):  # data and the live clock advance together
        clock.set(100.0 + k * 0.05)
        t = k * 0.05
        pilot.process([Chunk(FOREARM_EMG, np.array([t - 0.045, t]), np.zeros((2, 8)))])
    assert pilot.state().flying_state == "hovering"
    pilot.drain()
    clock.set(clock.t + 0.5)  # the device stalls: no data, the watchdog ticks
    out = pilot.tick()
    assert any(isinstance(m, SafetyEvent) and m.action == "hover" and "stale" in m.reason for m in out)
    pilot.close()


def test_watchdog_thread_starts_and_stops() -> None:
    backend = SimBackend()
    backend.connect()
    pilot = Pilot(backend, clock=ManualClock(0.0))
    pilot.start_watchdog(period_s=0.01)
    pilot.close()
    assert pilot._watchdog is None
    with pytest.raises(RuntimeError):
        Pilot(SimBackend()).start_watchdog()


def test_user_stop_and_emergency_from_the_pilot() -> None:
    backend = SimBackend()
    backend.connect()
    pilot = Pilot(backend)
    for k in range(80):
        t = k * 0.05
        pilot.process([Chunk(FOREARM_EMG, np.array([t]), np.zeros((1, 8)))])
        if k == 1:
            pilot.takeoff()
    pilot.stop("key")
    pilot.emergency("button")
    pilot.advance_to(6.0)
    assert backend.state().flying_state == "landed"
    out = pilot.drain()
    commands = [(m.command, m.source) for m in out if isinstance(m, CommandEvent)]
    assert commands[-2:] == [("stop", "safety"), ("emergency", "user:button")]
    summary = pilot.summary()
    assert summary["backend"] == "sim" and summary["counts"]["safety_emergency"] == 1


def test_run_command_flies_the_simulator(capsys) -> None:
    import json

    from emgpilot.app.cli import main

    code = main(["run", "--headless", "--drone", "sim", "--takeoff", "--duration", "6", "--speed", "max", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    drone = summary["drone"]
    assert drone["backend"] == "sim" and drone["counts"]["safety_takeoff"] == 1
    assert drone["course"]["hoops_total"] == 6
    assert drone["final_state"]["flying_state"] in ("hovering", "flying", "landing")


def test_run_command_rejects_a_bad_mapping(tmp_path, capsys) -> None:
    from emgpilot.app.cli import main

    bad = tmp_path / "typo.toml"
    bad.write_text('[gestures]\nfist = "forwards"\n')
    code = main(["run", "--headless", "--drone", "sim", "--mapping", str(bad), "--duration", "1", "--speed", "max"])
    assert code == 2
    assert "typo.toml" in capsys.readouterr().err


@pytest.mark.parametrize("live", [False, True])
def test_a_takeoff_before_any_data_is_stamped_with_the_first_data_time(live: bool) -> None:
    """``run --takeoff`` and the GUI take off before the first sample: no -inf (or host-clock) stamps."""
    rec = ListRecorder()
    clock = ManualClock(5000.0) if live else None
    pilot = Pilot(SimBackend(), clock=clock, recorder=rec)
    assert pilot.connect()
    assert pilot.takeoff("cli")
    assert rec.msgs == [] and pilot.drain() == []  # held until a data time exists
    pilot.process([Chunk(FOREARM_EMG, 12.5 + np.arange(10) / 200.0, np.zeros((10, 8)))])
    pilot.close()
    events = [m for m in rec.msgs if isinstance(m, Event)]
    assert events and all(math.isfinite(m.t) and m.t >= 12.5 for m in events)
    takeoff = [m for m in events if isinstance(m, SafetyEvent) and m.action == "takeoff"]
    assert len(takeoff) == 1 and takeoff[0].t == 12.5


def test_a_pilot_that_never_saw_data_stamps_its_events_at_zero() -> None:
    rec = ListRecorder()
    pilot = Pilot(SimBackend(), recorder=rec)
    pilot.connect()
    pilot.takeoff("cli")
    pilot.close()
    events = [m for m in rec.msgs if isinstance(m, Event)]
    assert events and all(m.t == 0.0 for m in events)
