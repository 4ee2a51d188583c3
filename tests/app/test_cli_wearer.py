"""``emgpilot run --wearer``: the wearer profile is read before and written after the session."""

from __future__ import annotations

import json

import pytest

from emgpilot.app.cli import main
from emgpilot.wearer import default_profile_dir


@pytest.fixture
def data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    return tmp_path


def test_a_live_headless_run_writes_the_wearer_profile(data_home, tmp_path, capsys):
    """Through the real Myo driver, against the fake dongle on a pseudo-terminal."""
    from emgpilot.signals.fakes import FakeMyoDongle

    myo = FakeMyoDongle(link=tmp_path / "ttyMyo")
    myo.start()
    try:
        code = main(["run", "--headless", "--source", "myo", "--port", myo.path, "--duration", "1.5", "--wearer", "a"])
    finally:
        myo.stop()
    assert code == 0
    path = default_profile_dir() / "a.json"
    assert str(path).startswith(str(data_home))
    profile = json.loads(path.read_text(encoding="utf-8"))
    assert profile["name"] == "a"
    # 1.5 s is far too little to trust a rotation estimate: none is stored yet.
    assert profile["wrist_rotation"] is None and profile["sessions"] == 0


def test_profiles_are_for_live_sessions_only(data_home, capsys):
    assert main(["run", "--headless", "--duration", "1", "--speed", "max", "--wearer", "ana"]) != 0
    assert "--wearer is for live sessions" in capsys.readouterr().err
    assert not default_profile_dir().exists()


def test_a_bad_wearer_name_or_profile_is_a_clear_error(data_home, capsys):
    live = ["run", "--headless", "--source", "myo", "--port", "/dev/does-not-exist", "--duration", "1"]
    assert main([*live, "--wearer", "../x"]) != 0
    assert "wearer name" in capsys.readouterr().err
    folder = default_profile_dir()
    folder.mkdir(parents=True)
    (folder / "ana.json").write_text("{broken", encoding="utf-8")
    assert main([*live, "--wearer", "ana"]) != 0
    assert "unreadable" in capsys.readouterr().err
    assert (folder / "ana.json").read_text(encoding="utf-8") == "{broken"


def test_wearers_lists_and_forgets_profiles(tmp_path, capsys):
    from emgpilot.wearer import WearerProfile, save_profile

    assert main(["wearers", "--dir", str(tmp_path)]) == 0
    assert "no wearer profiles" in capsys.readouterr().out
    save_profile(WearerProfile(name="ana", arm="right", wrist_rotation=7, sessions=2), tmp_path)
    (tmp_path / "bad.json").write_text("{x", encoding="utf-8")
    assert main(["wearers", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "ana" in out.out and "-1" in out.out  # shift 7 is one electrode the other way
    assert "bad.json" in out.err and "unreadable" in out.err
    assert main(["wearers", "--dir", str(tmp_path), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [w["name"] for w in listed["wearers"]] == ["ana"] and len(listed["errors"]) == 1
    assert main(["wearers", "--dir", str(tmp_path), "--forget", "ana"]) == 0
    assert not (tmp_path / "ana.json").exists() and (tmp_path / "bad.json").exists()
    assert main(["wearers", "--dir", str(tmp_path), "--forget", "ana"]) != 0
    assert "no profile" in capsys.readouterr().err
    assert main(["wearers", "--dir", str(tmp_path)]) == 0  # only the unreadable one is left
    out = capsys.readouterr()
    assert "no readable wearer profiles" in out.out and not out.out.startswith("wearer ")  # no empty table
    assert main(["wearers", "--dir", str(tmp_path), "--forget", ""]) == 2
    assert "needs a wearer's name" in capsys.readouterr().err and (tmp_path / "bad.json").exists()
