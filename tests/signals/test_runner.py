"""The session runner's connect timeout and device-status reporting."""

from __future__ import annotations

import errno
import logging

import pytest
import serial

from emgpilot.signals.pipeline import Pipeline
from emgpilot.signals.runner import NoDataError, RunStats, SessionRunner, StatusLog, describe_statuses
from emgpilot.signals.serialio import open_error_reason
from emgpilot.signals.streams import StatusEvent
from tests.standins import StandInMyo


class FakeClock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 0.5  # every look at the clock costs half a second: no sleeping
        return self.t


def test_no_data_within_the_connect_timeout_names_the_device_status() -> None:
    device = StandInMyo()
    runner = SessionRunner(device, Pipeline([], ["forearm_emg"]), duration_s=3.0)
    with pytest.raises(NoDataError) as e:
        runner.run(connect_timeout_s=2.0, clock=FakeClock())
    assert str(e.value) == "no data within 2 s (myo: error: cannot open /dev/x)"
    assert runner.stats.problems() == {"myo": ("error", "cannot open /dev/x")}


def test_status_changes_are_logged_problems_as_warnings(caplog: pytest.LogCaptureFixture) -> None:
    sink = StatusLog()
    ev = [
        StatusEvent(t=0.0, device="myoware", status="connecting", detail="csv"),
        StatusEvent(t=1.0, device="myoware", status="error", detail="no valid csv records"),
        StatusEvent(t=2.0, device="myoware", status="error", detail="no valid csv records"),  # no change
    ]
    with caplog.at_level(logging.INFO, logger="emgpilot.signals.runner"):
        sink(ev)
    levels = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert levels == [("INFO", "myoware: connecting: csv"), ("WARNING", "myoware: error: no valid csv records")]


def test_stopped_does_not_hide_the_state_a_device_stopped_in() -> None:
    stats = RunStats()
    stats.add([StatusEvent(t=0.0, device="myoware", status="error", detail="x")])
    stats.add([StatusEvent(t=1.0, device="myoware", status="stopped", detail="")])
    assert describe_statuses(stats.device_status) == "myoware: error: x"
    assert describe_statuses({}) == "no status from any device"


def test_open_errors_read_as_words() -> None:
    with pytest.raises(serial.SerialException) as e:
        serial.Serial("/dev/null")
    assert open_error_reason(e.value) == ("not a serial port (Inappropriate ioctl for device)", False)
    assert open_error_reason(OSError(errno.ENOENT, "No such file or directory")) == ("no such port (unplugged?)", True)
    reason, transient = open_error_reason(OSError(errno.EACCES, "Permission denied"))
    assert reason.startswith("permission denied (Permission denied)") and "dialout" in reason and not transient
