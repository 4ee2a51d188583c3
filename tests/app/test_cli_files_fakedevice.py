"""``emgpilot fake-device``: the --link path never costs a file, and every way of stopping removes it."""

from __future__ import annotations

import os
import signal
import time
import types

import pytest

from emgpilot.app.cli import main
from emgpilot.app.commands import fakedevice


def test_a_link_onto_an_existing_file_is_refused_and_the_file_kept(tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"important\n")
    assert main(["fake-device", "myoware-binary", "--link", str(notes), "--duration", "0.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(notes) in err and "not a symlink" in err
    assert notes.read_bytes() == b"important\n"


@pytest.fixture
def sigterm_during_run(monkeypatch):
    """The fake-device loop's idle sleep sends the process SIGTERM instead (as `kill PID` would)."""
    seen: list[str] = []

    def sleep(_: float) -> None:
        seen.append("slept")
        if len(seen) > 20:  # the signal never arrived: fail rather than spin
            raise AssertionError("SIGTERM did not stop fake-device")
        os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(fakedevice, "time", types.SimpleNamespace(monotonic=time.monotonic, sleep=sleep))
    # a harmless handler of our own meanwhile: without the fix SIGTERM must not kill the test run
    before = signal.signal(signal.SIGTERM, lambda signum, frame: seen.append("ignored"))
    yield seen
    signal.signal(signal.SIGTERM, before)


def test_sigterm_removes_the_link_like_ctrl_c(tmp_path, capsys, sigterm_during_run):
    link = tmp_path / "ttyMYO"
    before = signal.getsignal(signal.SIGTERM)
    assert main(["fake-device", "myo", "--link", str(link)]) == 0
    assert str(link) in capsys.readouterr().out
    assert sigterm_during_run == ["slept"]  # stopped by the first signal, not the test's own handler
    assert not os.path.lexists(link)
    assert signal.getsignal(signal.SIGTERM) is before  # the handler is put back
