"""The real, unmodified Olympe client (and OlympeBackend over it) against the virtual Bebop 2.

Skipped when Olympe (the ``bebop`` extra) is not installed. Every test destroys its Olympe
Drone (its ~7 threads) and closes the virtual drone. Waits are on conditions with timeouts.
"""

from __future__ import annotations

import importlib.util
import socket
import threading
from collections.abc import Iterator

import pytest

from emgpilot.drone.arsdk import OPTIONAL_PROTO_ANSWERS, Buffer
from emgpilot.drone.backend import DroneBackend
from emgpilot.drone.olympe_backend import OlympeBackend, OlympeUnavailable, import_olympe
from emgpilot.drone.virtual_bebop import VirtualBebop

needs_olympe = pytest.mark.skipif(
    importlib.util.find_spec("olympe") is None, reason="olympe not installed (pip install 'emgpilot[bebop]')"
)
TIMEOUT = 15.0

pytestmark = [
    # Olympe's ConnectionState setter calls inspect.getouterframes(), which touches Olympe's
    # deprecated module aliases ('olympe.expectations' ...) from its own threads; as an error
    # that would break Olympe's callbacks. Only that message is ignored.
    pytest.mark.filterwarnings(r"ignore:'olympe\.[\w.]+' is deprecated:DeprecationWarning"),
]


@pytest.fixture(autouse=True)
def no_thread_left_behind():
    """Every Olympe loop thread and the virtual drone's thread end with their test."""
    before = set(threading.enumerate())
    yield
    left = [t for t in set(threading.enumerate()) - before if t.is_alive()]
    # logness (Olympe's logging) starts one background thread per process, at import
    left = [t for t in left if "_background_log_handle" not in t.name]
    assert left == [], f"threads still running: {left}"


@pytest.fixture(scope="module")
def olympe():
    try:
        return import_olympe()
    except OlympeUnavailable as e:
        pytest.skip(str(e))


@pytest.fixture
def vb() -> Iterator[VirtualBebop]:
    drone = VirtualBebop(discovery_port=0, handshake_port=0, time_scale=3.0).start()
    yield drone
    drone.close()


@pytest.fixture
def plain_drone(olympe, vb):
    """An unmodified ``olympe.Drone`` pointed at the virtual Bebop's ephemeral discovery port."""
    drone = olympe.Drone("127.0.0.1", discovery_port=vb.discovery_port)
    yield drone
    if drone.connected:
        drone.disconnect()
    # teardown only (the test is over): skip the 5 s wait destroy() spends resetting the media
    # state on the media loop it has just stopped, as OlympeBackend.close() does
    drone._media.reset_state = lambda: None
    drone.destroy()


@pytest.fixture
def backend(olympe, vb) -> Iterator[OlympeBackend]:
    b = OlympeBackend(ip="127.0.0.1", discovery_port=vb.discovery_port, legacy_discovery=False)
    yield b
    b.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_olympe
def test_unmodified_olympe_connects_takes_off_pilots_moves_and_lands(plain_drone, vb):
    from olympe.messages.ardrone3.Piloting import Landing, TakeOff, moveBy
    from olympe.messages.ardrone3.PilotingEvent import moveByEnd
    from olympe.messages.ardrone3.PilotingState import FlyingStateChanged

    assert plain_drone.connect()
    # connect is fast because every optional protobuf request Olympe sends to a Bebop 2 was
    # answered (unanswered, four of them cost 3 s each)
    asked = {(c.command.args["service_id"], c.command.args["msg_num"]) for c in vb.commands_named("custom_cmd")}
    assert set(OPTIONAL_PROTO_ANSWERS) <= asked

    assert plain_drone(TakeOff() >> FlyingStateChanged(state="hovering", _timeout=TIMEOUT)).wait().success()
    assert vb.state().z > 0.9

    plain_drone.piloting(0, 50, 0, 0, 0)  # pitch forward, held
    assert vb.wait_until(lambda v: v.sim.x > 0.5, TIMEOUT)
    plain_drone.piloting(0, 0, 0, 0, 0)

    z0 = vb.sim.z
    assert plain_drone(moveBy(0.0, 0.0, -0.5, 0.0) >> moveByEnd(error="ok", _timeout=TIMEOUT)).wait().success()
    assert vb.sim.z == pytest.approx(z0 + 0.5, abs=0.1)

    assert plain_drone(Landing() >> FlyingStateChanged(state="landed", _timeout=TIMEOUT)).wait().success()
    assert vb.state().z == 0.0


@needs_olympe
def test_unmodified_olympe_emergency_never_reaches_a_v1_drone(plain_drone, vb):
    """The bug the backend works around (Olympe 8.5, protocol v1): no queue for Emergency."""
    from olympe.messages.ardrone3.Piloting import Emergency, Landing, TakeOff
    from olympe.messages.ardrone3.PilotingState import FlyingStateChanged

    assert plain_drone.connect()
    assert plain_drone(TakeOff() >> FlyingStateChanged(state="hovering", _timeout=TIMEOUT)).wait().success()
    plain_drone(Emergency())
    plain_drone(Landing())  # sent after it on the acked buffer: once it arrives, so would have Emergency
    assert vb.wait_until(lambda v: bool(v.commands_named("Landing")), TIMEOUT)
    assert vb.commands_named("Emergency") == []


@needs_olympe
def test_backend_flies_the_virtual_bebop_and_emergency_reaches_it(backend, vb):
    assert isinstance(backend, DroneBackend)
    assert backend.connect()
    assert backend.link == "connected"

    backend.takeoff()
    assert backend.wait_until(lambda b: b.state().flying_state == "hovering", TIMEOUT)

    backend.pcmd(0, 0, 60, 0)  # yaw right (clockwise)
    assert vb.wait_until(lambda v: v.sim.yaw < -0.5, TIMEOUT)
    backend.pcmd(0, 50, 0, 0)  # forward
    assert vb.wait_until(lambda v: v.sim.state().horizontal_speed > 0.5, TIMEOUT)
    backend.pcmd(0, 0, 0, 0)
    assert backend.wait_until(lambda b: b.state().flying_state == "hovering", TIMEOUT)

    # telemetry: the backend's view (GPS + attitude in the take-off frame) matches the sim
    assert backend.wait_until(lambda b: abs(b.state().yaw - vb.sim.yaw) < 0.05, TIMEOUT)
    assert backend.wait_until(lambda b: abs(b.state().x - vb.sim.x) + abs(b.state().y - vb.sim.y) < 0.1, TIMEOUT)
    assert backend.state().z == pytest.approx(vb.sim.z, abs=0.1)
    assert 0 < backend.state().battery <= 100

    # a relative move, stopped half-way by a zero setpoint ("stop" must cancel a move at once)
    x_start = vb.sim.x
    backend.move_by(3.0, 0.0, 0.0, 0.0)
    assert vb.wait_until(lambda v: v.sim.moving_by and v.sim.state().horizontal_speed > 0.3, TIMEOUT)
    backend.pcmd(0, 0, 0, 0)
    assert backend.wait_until(
        lambda b: any(k == "move_by_end" and a["error"] == "interrupted" for _, k, a in b._events), TIMEOUT
    )
    # the Bebop 2 way to cancel: a zero moveBy, which ends (ok) holding where the drone is
    assert vb.wait_until(lambda v: not v.sim.moving_by, TIMEOUT)
    assert vb.sim.x - x_start < 2.5
    kinds = {kind for _, kind, _ in backend.drain_events()}
    assert {"flying_state", "position", "speed", "attitude", "altitude", "battery", "move_by_end"} <= kinds

    backend.emergency()
    assert vb.wait_until(lambda v: bool(v.commands_named("Emergency")), TIMEOUT)
    assert vb.commands_named("Emergency")[0].buffer_id == Buffer.C2D_ACK  # re-routed
    assert backend.rerouted_commands == ["ardrone3.Piloting.Emergency"]
    assert vb.wait_until(lambda v: v.sim.flying_state in ("emergency", "landed"), TIMEOUT)
    assert backend.wait_until(lambda b: b.state().flying_state == "landed", TIMEOUT)


@needs_olympe
def test_link_loss_ends_in_a_lost_status_and_a_prompt_close(backend, vb):
    assert backend.connect()
    backend.takeoff()
    assert backend.wait_until(lambda b: b.state().flying_state == "hovering", TIMEOUT)
    vb.go_silent()
    # Olympe notices after ~8 s (3 unanswered pings)
    assert backend.wait_until(lambda b: b.link == "lost", 25.0)
    assert backend.state().link == "lost"
    backend.takeoff()  # refused quietly, not hung: the link is gone
    backend.pcmd(0, 10, 0, 0)
    # the radio comes back: connecting again works with the same backend
    vb.go_silent(False)
    assert backend.connect()
    assert backend.link == "connected"
    closer = threading.Thread(target=backend.close)
    closer.start()
    closer.join(timeout=30.0)
    assert not closer.is_alive()
    assert backend.link == "disconnected"


@needs_olympe
def test_legacy_discovery_connects_straight_to_the_handshake_port(olympe):
    with VirtualBebop(discovery_port=None, handshake_port=0) as vb:
        backend = OlympeBackend("127.0.0.1", legacy_discovery=True, handshake_port=vb.handshake_port)
        try:
            assert backend.connect()
            assert vb.link_up
        finally:
            backend.close()


def test_unreachable_drone_fails_fast_without_olympe():
    port = _free_port()
    backend = OlympeBackend("127.0.0.1", discovery_port=port, reachability_timeout=0.5)
    assert backend.connect() is False
    assert f"127.0.0.1:{port}" in backend.last_error
    assert backend.link == "disconnected"
    backend.takeoff()  # not connected: logged, not raised
    backend.emergency()
    assert backend.state().link == "disconnected"
    backend.close()
    backend.close()


@needs_olympe
def test_close_during_a_stalled_connect_aborts_it_instead_of_waiting_45_s(backend, vb):
    """The virtual Bebop answers discovery and handshake but nothing on UDP: Olympe's connect
    would wait its full 45 s for the drone's states. close() cuts it short (the connect reports
    the cancellation, not Olympe's time-out) and leaves no Olympe thread behind."""
    vb.go_silent()
    pending = backend.connect_async()
    # the handshake is done: Olympe is now inside its connect, waiting for the drone's states
    assert vb.wait_until(lambda v: any(what == "connected" for _, what in v.link_log), TIMEOUT)
    assert backend.link == "connecting"
    closer = threading.Thread(target=backend.close, name="test-closer")
    closer.start()
    closer.join(timeout=60.0)  # hang guard only (Olympe gives up by itself after 45 s)
    assert not closer.is_alive()
    assert pending.result(timeout=TIMEOUT) is False
    assert "cancelled" in backend.last_error
    assert backend.link == "disconnected"
    assert backend.connect() is False


@needs_olympe
def test_close_during_a_stalled_discovery_aborts_it(olympe):
    """A port that accepts TCP but never answers (reachable, yet no discovery JSON): Olympe's
    discovery would wait out the 45 s; close() cuts it short as well."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)  # the kernel completes the connection; nobody ever accepts or answers
        backend = OlympeBackend("127.0.0.1", discovery_port=silent.getsockname()[1])
        try:
            pending = backend.connect_async()
            assert backend.wait_until(lambda b: b._drone is not None, TIMEOUT)  # Olympe is discovering
            backend.close()
            assert pending.result(timeout=TIMEOUT) is False
            assert "cancelled" in backend.last_error
            assert backend.link == "disconnected"
        finally:
            backend.close()


@needs_olympe
def test_the_run_options_reach_the_legacy_discovery(olympe):
    # `emgpilot run --drone bebop --legacy-discovery --handshake-port P` goes through open_backend.
    from emgpilot.drone.pilot import open_backend

    with VirtualBebop(discovery_port=None, handshake_port=0) as vb:
        backend = open_backend("bebop", "127.0.0.1", legacy_discovery=True, handshake_port=vb.handshake_port)
        try:
            assert backend.legacy_discovery and backend.handshake_port == vb.handshake_port
            assert backend.connect()
            assert vb.link_up
        finally:
            backend.close()
