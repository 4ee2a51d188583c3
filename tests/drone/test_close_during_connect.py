"""Closing while a drone connect is still in progress (issue 6, reported from the GUI side).

1. ``OlympeBackend.close()`` used to queue behind a connect in progress: Disconnect during a
   stalled Olympe connect took up to ~45-60 s. Now it aborts the connect.
2. A connect that ends after the close (Olympe stuck, or the GUI's action thread gave up on it)
   must leave no link open and let nothing queued (take-off, PCMD, moveBy) reach the drone,
   while EMERGENCY still reaches a drone that is connected when it is pressed.

The Olympe Drone is replaced by a fake whose connect blocks on threading.Events the test
controls, so the races are forced in a fixed order; nothing sleeps. The same race against the
real Olympe client and the virtual Bebop 2 is in test_olympe_backend.py.
"""

from __future__ import annotations

import threading
from typing import Any

from emgpilot.drone.olympe_backend import OlympeBackend
from emgpilot.drone.pilot import Pilot
from emgpilot.drone.sim import SimBackend
from emgpilot.signals.streams import CommandEvent, SafetyEvent

GUARD_S = 10.0
"""Hang guard only (a broken fix fails instead of hanging); no test waits this long when it passes."""


class FakeMessage:
    def __init__(self, name: str, args: tuple[Any, ...]) -> None:
        self.name = name
        self.args = args


class FakeDrone:
    """Stands in for ``Bebop2Drone``: ``connect_abortable`` blocks until the test releases it
    or, if ``honour_abort``, until the backend aborts it."""

    def __init__(self, honour_abort: bool = True) -> None:
        self.honour_abort = honour_abort
        self.connected = False
        self.connecting = False
        self.sent: list[str] = []
        """Everything that reached the drone: message names and "PCMD"."""
        self.piloting_started = False
        self.disconnects = 0
        self.destroyed = False
        self.ended_by: str | None = None
        self.connect_started = threading.Event()
        self.disconnect_entered = threading.Event()
        self.disconnect_gate: threading.Event | None = None
        self._wake = threading.Event()
        self._release_ok = False

    # the test's side
    def release(self, ok: bool) -> None:
        """Olympe's connect ends now, successfully or not."""
        self._release_ok = ok
        self._wake.set()

    # what OlympeBackend calls
    def subscribe(self, callback: Any, _what: Any) -> object:
        return object()

    def unsubscribe(self, _subscriber: object) -> None:
        pass

    def connect_abortable(self, abort: threading.Event, timeout: float) -> bool:
        self.connecting = True
        self.connect_started.set()
        if not self._wake.wait(GUARD_S):
            self.connecting = False
            self.ended_by = "hang guard"
            return False
        self.connecting = False
        if self.honour_abort and abort.is_set():
            self.ended_by = "abort"
            return False
        self.ended_by = "release"
        self.connected = self._release_ok
        return self._release_ok

    def abort_connect(self) -> None:
        if self.honour_abort:
            self._wake.set()

    def start_piloting(self) -> None:
        self.piloting_started = True

    def piloting(self, *values: Any) -> None:
        self.sent.append("PCMD")

    def __call__(self, message: FakeMessage) -> None:
        self.sent.append(message.name)

    def disconnect(self) -> bool:
        self.disconnect_entered.set()
        if self.disconnect_gate is not None:
            assert self.disconnect_gate.wait(GUARD_S)
        self.disconnects += 1
        self.connected = False
        return True

    def destroy(self) -> None:
        self.destroyed = True


class FakeOlympeBackend(OlympeBackend):
    """OlympeBackend over fake drones (one per connect), always reachable."""

    def __init__(self, *drones: FakeDrone, close_timeout: float = 5.0) -> None:
        super().__init__("127.0.0.1", close_timeout=close_timeout)
        self.fakes = list(drones)
        self.made: list[FakeDrone] = []

    def _check_reachable(self) -> tuple[bool, str]:
        return True, ""

    def _new_drone(self) -> FakeDrone:
        drone = self.fakes.pop(0)
        self.made.append(drone)
        return drone

    def _piloting_message(self, name: str) -> Any:
        return lambda *args: FakeMessage(name, args)


def _connected(drone: FakeDrone) -> FakeDrone:
    drone.release(ok=True)
    return drone


def test_close_aborts_a_pending_connect_instead_of_waiting_for_it():
    drone = FakeDrone()
    backend = FakeOlympeBackend(drone)
    pending = backend.connect_async()
    assert drone.connect_started.wait(GUARD_S)
    assert backend.link == "connecting"

    backend.close()  # returns once the aborted connect and the close job are done

    assert drone.ended_by == "abort"  # not released by the test, not the hang guard
    assert pending.result(timeout=GUARD_S) is False
    assert "cancelled" in backend.last_error
    assert drone.destroyed and not drone.connected and not drone.piloting_started
    assert drone.sent == []
    assert backend.link == "disconnected"
    assert backend.connect() is False  # closed for good


def test_disconnect_aborts_a_pending_connect_and_a_new_connect_uses_a_fresh_drone():
    first, second = FakeDrone(), _connected(FakeDrone())
    backend = FakeOlympeBackend(first, second)
    try:
        pending = backend.connect_async()
        assert first.connect_started.wait(GUARD_S)
        backend.disconnect()
        assert first.ended_by == "abort" and first.destroyed
        assert pending.result(timeout=GUARD_S) is False
        assert backend.link == "disconnected"

        assert backend.connect() is True
        assert backend.made == [first, second] and backend.link == "connected"
        backend.takeoff()
        assert backend.wait_until(lambda b: second.sent == ["TakeOff"], GUARD_S)
    finally:
        backend.close()
    assert second.destroyed and first.sent == []


def test_a_connect_that_succeeds_after_close_is_dropped_and_nothing_queued_reaches_the_drone():
    drone = FakeDrone(honour_abort=False)  # Olympe stuck where the abort cannot reach it
    backend = FakeOlympeBackend(drone, close_timeout=0.0)  # close() does not wait for the worker at all
    pending = backend.connect_async()
    assert drone.connect_started.wait(GUARD_S)
    backend.takeoff()  # queued behind the connect, as the GUI's take-off button does
    backend.pcmd(0, 50, 0, 0)
    backend.move_by(1.0, 0.0, 0.0, 0.0)
    worker = backend._worker
    assert worker is not None

    backend.close()
    assert backend.link == "disconnected"
    backend.takeoff()  # after close: refused at once
    backend.pcmd(0, 50, 0, 0)
    backend.emergency()  # no link: logged, nothing sent

    drone.release(ok=True)  # ... and now Olympe's connect succeeds
    assert pending.result(timeout=GUARD_S) is False
    worker.join(GUARD_S)
    assert not worker.is_alive()
    assert drone.ended_by == "release"
    assert drone.sent == []
    assert not drone.piloting_started
    assert drone.disconnects == 1 and not drone.connected and drone.destroyed
    assert backend.link == "disconnected"


def test_emergency_reaches_a_connected_drone_while_close_is_disconnecting_it():
    drone = _connected(FakeDrone())
    backend = FakeOlympeBackend(drone)
    assert backend.connect()
    drone.disconnect_gate = threading.Event()
    closer = threading.Thread(target=backend.close, name="test-closer")
    closer.start()
    try:
        assert drone.disconnect_entered.wait(GUARD_S)  # close is disconnecting: the link is still up
        backend.takeoff()  # refused: closing
        backend.emergency()  # reaches the drone, from this thread
        assert drone.sent == ["Emergency"]
    finally:
        drone.disconnect_gate.set()
        closer.join(GUARD_S)
    assert not closer.is_alive()
    backend.emergency()  # the link is down now: nothing more is sent
    assert drone.sent == ["Emergency"]
    assert drone.destroyed


def test_a_gui_action_thread_given_up_on_cannot_take_off_after_the_pilot_closed():
    """The GUI's race, without the GUI: its action thread runs connect, then the queued take-off;
    closing gives up waiting for that thread and closes the pilot; the connect ends later."""
    drone = FakeDrone(honour_abort=False)
    backend = FakeOlympeBackend(drone, close_timeout=0.0)
    pilot = Pilot(backend)
    results: dict[str, bool] = {}

    def actions() -> None:
        results["connect"] = pilot.connect()
        results["takeoff"] = pilot.takeoff("gui")

    thread = threading.Thread(target=actions, name="test-gui-actions")
    thread.start()
    assert drone.connect_started.wait(GUARD_S)
    worker = backend._worker
    assert worker is not None

    pilot.close()  # the action thread is still inside connect
    drone.release(ok=True)
    thread.join(GUARD_S)
    worker.join(GUARD_S)
    assert not thread.is_alive() and not worker.is_alive()

    assert results == {"connect": False, "takeoff": False}
    assert drone.sent == [] and not drone.piloting_started and not drone.connected
    refusals = [m for m in pilot.drain() if isinstance(m, SafetyEvent) and m.action == "refuse_takeoff"]
    assert [r.reason for r in refusals] == ["drone link closed (pilot closed)"]


class CallLog:
    """A SimBackend that notes every call the supervisor makes."""

    def __init__(self) -> None:
        self.inner = SimBackend()
        self.name = "sim"
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name in ("connect", "takeoff", "land", "emergency", "pcmd", "move_by", "close"):

            def logged(*args: Any) -> Any:
                self.calls.append(name)
                return attr(*args)

            return logged
        return attr


def test_a_closed_pilot_refuses_connect_takeoff_and_gestures_but_not_emergency():
    backend = CallLog()
    pilot = Pilot(backend, clock=lambda: 0.0)
    assert pilot.connect()
    pilot.close()
    assert backend.calls == ["connect", "close"]

    assert pilot.connect() is False
    assert pilot.takeoff() is False
    pilot.stop()
    pilot.process([])
    pilot.tick()
    pilot.start_watchdog()
    assert pilot._watchdog is None
    assert backend.calls == ["connect", "close"]

    pilot.emergency()  # always handed to the backend, which knows whether its link is up
    assert backend.calls == ["connect", "close", "emergency"]
    events = pilot.drain()
    decisions = [(m.action, m.reason) for m in events if isinstance(m, SafetyEvent)]
    assert ("closed", "drone link closing (pilot closed): take-off and motion refused from now on") in decisions
    assert ("refuse_takeoff", "drone link closed (pilot closed)") in decisions
    assert ("refuse", "stop: drone link closed (pilot closed)") in decisions
    sent = [m.command for m in events if isinstance(m, CommandEvent)]
    assert sent == ["emergency"]
