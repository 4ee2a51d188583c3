"""``emgpilot info`` output and ``emgpilot import`` of a folder."""

import json

import numpy as np
import pytest

import emgpilot.app.commands.info as info
from emgpilot.app.cli import main
from tests.app.test_cli_recording import write_tiny_cote_npz


def _strict(text: str):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def test_info_json_has_no_non_finite_numbers(monkeypatch, capsys):
    real = info.describe

    def with_infinities(path, recover=False):
        d = real(path, recover)
        stream = next(iter(d["streams"].values()))
        stream["t_first"], stream["t_last"] = -np.inf, float("nan")
        return d

    monkeypatch.setattr(info, "describe", with_infinities)
    assert main(["info", "--sample", "--json"]) == 0
    d = _strict(capsys.readouterr().out)
    stream = next(iter(d["streams"].values()))
    assert stream["t_first"] is None and stream["t_last"] is None


def test_info_prints_the_device_whole_and_readable(capsys):
    assert main(["info", "--sample"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    start = lines.index("  device:")
    device = lines[start + 1 :]
    assert device and all(line.startswith("    ") for line in device)
    assert any(line.split() == ["dataset", "myo_readings"] for line in device)
    assert "{" not in out


def test_info_formats_nested_device_tables():
    lines = info._fields({"type": "myo", "firmware": {"major": 1, "minor": 5}, "rate": 199.5, "ids": [1, 2]}, "  ")
    assert lines == [
        "  type      myo",
        "  firmware:",
        "    major  1",
        "    minor  5",
        "  rate      199.5",
        "  ids       1, 2",
    ]


def _tiny_npz(path):
    write_tiny_cote_npz(path, labels=(0, 5), sessions=(0, 0), n=200)


def test_import_takes_a_folder_of_npz_files(tmp_path, capsys):
    folder = tmp_path / "pre"
    folder.mkdir()
    _tiny_npz(folder / "pre_Test0.npz")
    (folder / "notes.txt").write_text("not a dataset")
    assert main(["import", str(folder), "-o", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "pre_Test0.npz ->" in out and "notes.txt" not in out
    assert list((tmp_path / "out").glob("*.mcap"))


def test_import_of_a_folder_without_npz_files_says_so(tmp_path, capsys):
    assert main(["import", str(tmp_path), "-o", str(tmp_path / "out")]) == 2
    assert f"{tmp_path}: the folder holds no .npz files" in capsys.readouterr().err


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_sim_refuses_a_port_out_of_range(port, capsys):
    with pytest.raises(SystemExit) as e:
        main(["sim", "--arsdk", "--discovery-port", port])
    assert e.value.code == 2
    assert "argument --discovery-port" in capsys.readouterr().err
