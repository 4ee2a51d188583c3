"""One-line, readable messages: the drone summary, driver counters and a busy port."""

from __future__ import annotations

import socket

from emgpilot.app.cli import main
from emgpilot.app.commands.record import format_counters
from emgpilot.app.commands.run import _drone_line


def test_drone_line_counts_takeoff_and_landing_as_commands():
    drone = {
        "backend": "bebop",
        "counts": {"commands_sent": 0, "safety_takeoff": 1, "safety_land": 1, "safety_closed": 1},
        "final_state": {"flying_state": "landed"},
    }
    assert _drone_line(drone).startswith("drone bebop: 2 commands sent (take-off, landing), final state landed")
    drone["counts"].update(commands_sent=6, safety_refuse=2)
    assert "8 commands sent (take-off, landing, 6 moves/hovers), 2 refused by safety" in _drone_line(drone)
    assert _drone_line({"backend": "sim", "counts": {}, "final_state": {}}).startswith("drone sim: 0 commands sent")


def test_driver_counters_are_key_value_text():
    text = format_counters({"status": "stopped", "lost": 0, "emg_dropped": 3, "rate_hz": 199.5})
    assert text == "status stopped, lost 0, emg dropped 3, rate hz 199.5"


def test_sim_on_a_port_in_use_says_so_in_one_line(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        code = main(["sim", "--arsdk", "--discovery-port", str(port), "--handshake-port", "0", "--duration", "0.1"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "[Errno" not in err
    assert f"port {port} is already in use" in err and "--discovery-port 0" in err
