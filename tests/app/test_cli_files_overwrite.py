"""``record``/``run --record`` with ``--overwrite``: the old recording survives until the new one has data."""

from __future__ import annotations

import pytest

from emgpilot.app.cli import CLIError, main
from emgpilot.app.commands.record import ASIDE_SUFFIX, OldRecording
from emgpilot.signals.recording import open_recording

NO_DATA = ["--source", "myo", "--port", "/dev/null", "--duration", "2", "--connect-timeout", "0.3"]
FAST_RUN = ["run", "--headless", "--duration", "1", "--speed", "max"]


@pytest.fixture
def old(tmp_path):
    path = tmp_path / "existing.mcap"
    path.write_bytes(b"last week's session")
    return path


def _aside(path) -> object:
    return path.with_name(path.name + ASIDE_SUFFIX)


@pytest.mark.parametrize("command", [["record", *NO_DATA, "-o"], ["run", "--headless", *NO_DATA, "--record"]])
def test_nothing_recorded_keeps_the_old_file(command, old, capsys):
    assert main([*command, str(old), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "nothing recorded" in err and f"the old {old} is kept" in err
    assert old.read_bytes() == b"last week's session"
    assert not _aside(old).exists()


@pytest.mark.parametrize(
    "command",
    [["record", "--source", "synthetic", "--duration", "0.2", "-o"], [*FAST_RUN, "--record"]],
)
def test_a_new_recording_with_data_replaces_the_old_one(command, old, capsys):
    assert main([*command, str(old), "--overwrite"]) == 0
    assert f"keeping the old {old} as {_aside(old)}" in capsys.readouterr().err
    assert open_recording(old).chunk("forearm_emg") is not None
    assert not _aside(old).exists()


def test_a_file_already_at_the_aside_name_is_refused_and_both_kept(old, capsys):
    aside = _aside(old)
    aside.write_bytes(b"an older one")
    assert main([*FAST_RUN, "--record", str(old), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(aside) in err
    assert old.read_bytes() == b"last week's session" and aside.read_bytes() == b"an older one"


def test_while_recording_the_old_file_waits_under_the_aside_name(old):
    """What a crash in the middle leaves: the old file, intact, under the aside name."""
    with pytest.raises(RuntimeError), OldRecording(str(old), overwrite=True):
        assert not old.exists() and _aside(old).read_bytes() == b"last week's session"
        old.write_bytes(b"half a new recording")
        raise RuntimeError("the session failed")
    assert old.read_bytes() == b"last week's session" and not _aside(old).exists()


def test_a_folder_is_never_set_aside(tmp_path):
    folder = tmp_path / "sessions"
    folder.mkdir()
    with pytest.raises(CLIError, match="is a folder"):
        OldRecording(str(folder), overwrite=True)
    assert folder.is_dir()


def test_overwrite_help_says_where_the_old_file_goes(capsys):
    with pytest.raises(SystemExit):
        main(["record", "--help"])
    assert ASIDE_SUFFIX in capsys.readouterr().out
