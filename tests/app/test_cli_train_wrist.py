"""``emgpilot train-wrist``: its options and its text table (no training here)."""

import pytest

from emgpilot.app.cli import main
from emgpilot.classifiers.wrist_train import format_report


def _cell(ca4: float, flex_ext: float) -> dict:
    return {"ca4": ca4, "flex_ext": flex_ext}


def test_the_report_table_columns_are_spaced_and_aligned():
    mean = {str(r): _cell(0.8, 0.9) for r in (-1, 0, 1)}
    subjects = {"eval_Female0": {"0": _cell(0.81, 0.9)}, "eval_Male0": {"0": _cell(0.7, 0.85)}}
    report = {m: {"per_subject": subjects, "mean": mean} for m in ("fixed", "streaming", "estimated")}
    lines = format_report(report).splitlines()
    header = lines[2]
    assert header.split() == ["subject"] + ["CA4", "flex/ext"] * 3
    assert "streaming flex/ext" not in format_report(report)
    # the numbers sit under their column names
    for line in lines[3:6]:
        assert len(line) == len(header)
    assert lines[3].split() == ["eval_Female0"] + ["0.810", "0.900"] * 3


@pytest.mark.parametrize(("argv", "option"), [(["--seed", "-1"], "--seed"), (["--epochs", "0"], "--epochs")])
def test_train_wrist_bad_numbers_are_usage_errors(argv, option, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train-wrist", *argv])
    assert e.value.code == 2
    assert f"argument {option}" in capsys.readouterr().err
