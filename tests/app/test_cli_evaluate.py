"""``emgpilot evaluate`` and ``emgpilot bench`` end to end through the real pipeline."""

import json

import pytest

from emgpilot.app.cli import main
from emgpilot.signals.recording import RecordingWriter
from emgpilot.signals.streams import message_time
from tests.classifiers.test_evaluation import PROMISED_KEYS, cued_session


@pytest.fixture
def recording(tmp_path):
    session = cued_session(n_reps=3)
    path = tmp_path / "cued.mcap"
    with RecordingWriter(path, streams=session.streams, background_flush=False) as writer:
        writer.write(sorted(session.messages, key=message_time))
    return path


def test_evaluate_writes_json_and_report(recording, tmp_path, capsys):
    out = tmp_path / "result.json"
    report = tmp_path / "report"
    code = main(["evaluate", str(recording), "--json", str(out), "--report", str(report), "--no-progress"])
    assert code == 0
    result = json.loads(out.read_text())
    for key in PROMISED_KEYS:
        assert key in result, key
    assert result["files"] == 1
    assert result["events"]["cued"] == 3
    assert result["per_file"][0]["name"] == "cued"
    assert result["baseline_window_CA"] is not None
    assert (report / "report.md").exists() and (report / "table.md").exists()
    assert (report / "confusion.png").stat().st_size > 0
    assert (report / "timeline_cued.png").exists()
    assert "| **all** |" in (report / "table.md").read_text()
    assert "events:" in capsys.readouterr().out


def test_evaluate_keeps_going_after_bad_inputs(recording, tmp_path, capsys):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    code = main(["evaluate", str(tmp_path / "missing.mcap"), str(junk), str(recording), "--json", "-", "--no-progress"])
    assert code == 1
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["files"] == 1
    assert len(result["failed"]) == 2
    assert "missing.mcap: no such file" in captured.err
    assert "junk.npz" in captured.err


def test_evaluate_with_nothing_readable_prints_only_the_errors(tmp_path, capsys):
    code = main(["evaluate", str(tmp_path / "missing.npz"), "--no-progress"])
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "missing.npz: no such file" in captured.err


def test_evaluate_without_inputs_is_a_usage_error(capsys):
    assert main(["evaluate", "--no-progress"]) == 2
    assert "nothing to evaluate" in capsys.readouterr().err


def test_evaluate_folder_and_match(recording, tmp_path, capsys):
    code = main(["evaluate", str(tmp_path), "--match", "cued", "--json", "-", "--no-progress", "--no-baseline"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["files"] == 1 and result["baseline_window_CA"] is None


def test_bench_on_a_recording(recording, capsys):
    args = ["bench", "--source", str(recording), "--minutes", "0.3", "--latency-minutes", "0.05"]
    code = main([*args, "--memory-minutes", "2.1", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["throughput"]["data_s"] > 15
    assert result["throughput"]["realtime_factor"] > 0
    runs = result["throughput"]["realtime_factor_runs"]
    assert len(runs) == 3 and result["throughput"]["realtime_factor"] == sorted(runs)[1]  # the median
    assert result["live_chunk_latency_us"]["chunks"] > 100
    assert result["memory"]["growth_mb_per_hour"] is not None
    assert result["machine"]["nproc"] >= 1


def test_bench_refuses_no_runs(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "--repeat", "0"])
    assert e.value.code == 2
    assert "--repeat" in capsys.readouterr().err


def test_bench_flight_dispatches_to_the_flight_bench(capsys):
    code = main(["bench", "--flight", "--oracle", "--short", "--wearers", "1", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["recognition"] == "oracle" and result["wearers"] == 1
    assert result["gestures"] > 0


def test_bench_flight_with_a_broken_course_file_is_a_clear_error(tmp_path, capsys):
    course = tmp_path / "course.toml"
    course.write_text("hoops = [[[")
    assert main(["bench", "--flight", "--oracle", "--wearers", "1", "--course", str(course)]) == 2
    assert "course.toml: not valid TOML" in capsys.readouterr().err


def test_expand_paths_globs_folders_and_match(tmp_path):
    from emgpilot.app.commands.evaluate import expand_paths

    for name in ("eval_A.npz", "pre_B.npz", "notes.txt"):
        (tmp_path / name).write_text("x")
    assert expand_paths([str(tmp_path)]) == [str(tmp_path / "eval_A.npz"), str(tmp_path / "pre_B.npz")]
    assert expand_paths([str(tmp_path / "*.npz")], match="eval_") == [str(tmp_path / "eval_A.npz")]
    assert expand_paths(["missing.mcap"]) == ["missing.mcap"]  # reported later, by name


def test_evaluate_refuses_an_output_it_cannot_write_before_running(tmp_path, capsys):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where a folder should be")
    args = ["evaluate", "--synthetic", "1", "--synthetic-minutes", "0.2", "--no-progress", "--no-baseline"]
    assert main([*args, "--json", str(blocker / "out.json")]) == 2
    assert f"{blocker} is a file, not a folder" in capsys.readouterr().err
    assert main([*args, "--json", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_evaluate_still_prints_its_figures_when_the_report_cannot_be_written(tmp_path, capsys, monkeypatch):
    import emgpilot.classifiers.report as report

    def refuse(*a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(report, "write_report", refuse)
    args = ["evaluate", "--synthetic", "1", "--synthetic-minutes", "0.2", "--no-progress", "--no-baseline"]
    assert main([*args, "--report", str(tmp_path / "rep")]) == 1
    captured = capsys.readouterr()
    assert "events:" in captured.out
    assert "cannot write the report" in captured.err and "Permission denied" in captured.err


SHORT = ["evaluate", "--synthetic", "1", "--synthetic-minutes", "0.2", "--no-progress"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--synthetic", "1", "--seed", "-3"], "argument --seed: must be 0 or more"),
        (["--synthetic", "-1"], "argument --synthetic: must be 0 or more"),
        (["--synthetic", "1", "--synthetic-minutes", "0"], "argument --synthetic-minutes"),
    ],
)
def test_evaluate_bad_numbers_are_usage_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(["evaluate", *argv])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_evaluate_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "per synthetic wearer (default: 5)" in out and "first synthetic wearer (default: 0)" in out


def test_evaluate_match_that_keeps_nothing_says_so(recording, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path), "--match", "zzz", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--match 'zzz': no input file name contains it" in err and "cued.mcap" in err


def test_evaluate_empty_folder_or_pattern_is_named(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path), "--no-progress"]) == 2
    assert f"{tmp_path}: the folder holds no .npz/.mcap files" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "*.npz"), "--no-progress"]) == 2
    assert "no file matches this pattern" in capsys.readouterr().err


def test_evaluate_config_errors_name_the_file_once(tmp_path, capsys):
    missing = tmp_path / "nope.toml"
    assert main([*SHORT, "--config", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"error: {missing}: no such file") and err.count(str(missing)) == 1
    assert main([*SHORT, "--config", str(tmp_path)]) == 2
    assert "cannot read it" in capsys.readouterr().err


def test_evaluate_checks_an_unwritable_json_path_before_running(tmp_path, capsys, monkeypatch):
    import pathlib

    import emgpilot.classifiers.evaluation as evaluation

    def never(*a, **k):
        raise AssertionError("evaluated before the output was checked")

    real_open = pathlib.Path.open

    def refuse(self, *a, **k):  # a read-only file system, whoever runs the test (root writes anywhere)
        if self.name == "out.json":
            raise PermissionError(13, "Permission denied")
        return real_open(self, *a, **k)

    monkeypatch.setattr(evaluation, "evaluate_inputs", never)
    monkeypatch.setattr(pathlib.Path, "open", refuse)
    assert main([*SHORT, "--json", str(tmp_path / "out.json")]) == 2
    err = capsys.readouterr().err
    assert "cannot write" in err and "Permission denied" in err
    assert main([*SHORT, "--json", ""]) == 2
    assert "--json needs a file name" in capsys.readouterr().err


def test_evaluate_json_check_leaves_no_file_behind(tmp_path, capsys):
    out = tmp_path / "sub" / "out.json"
    assert main([*SHORT, "--no-baseline", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["files"] == 1


def test_evaluate_text_summary_wording(capsys):
    assert main([*SHORT, "--no-baseline"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 synthetic wearer(s), 1 session(s)")
    assert "file(s)" not in out and "baseline" not in out
    assert "\n\n" not in out


def test_evaluate_summary_without_events_has_no_empty_line(capsys):
    from emgpilot.app.commands.evaluate import _print_summary

    nan = float("nan")
    window = {"windows": 0, "CA": nan, "AER": nan, "INS": nan, "REJ": nan}
    summary = {
        "files": 1, "sessions": 1, "duration_s": 60.0, "rest_min": 0.0, "false_events": 0,
        "false_events_per_min": nan, "event_accuracy": nan,
        "events": {"correct": 0, "cued": 0, "wrong": 0, "missed": 0},
        "latency_ms": {"median": nan, "p90": nan}, "window": window, "baseline_window_CA": nan,
        "window_CA_on_baseline_test": nan, "realtime_factor": 100.0, "other_motion_event_rate": nan,
        "per_source": {"a.mcap": {"dataset": "mcap"}}, "per_dataset": {},
    }  # fmt: skip
    _print_summary(summary)
    out = capsys.readouterr().out
    assert "\n\n" not in out and "latency" not in out and out.startswith("1 file(s), 1 session(s)")


def test_evaluate_and_calibrate_name_no_option_they_lack_for_a_damaged_file(recording, tmp_path, capsys):
    data = recording.read_bytes()
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(data[:3000] + b"\x55" + data[3001:])
    assert main(["evaluate", str(bad), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "damaged" in err and "recover=True" not in err and "replay --recover" in err
    assert main(["calibrate", str(bad), "--out", str(tmp_path / "c.json")]) == 2
    err = capsys.readouterr().err
    assert "damaged" in err and "recover=True" not in err


def test_evaluate_shows_no_progress_bar_when_stderr_is_not_a_terminal(capsys):
    # capsys' stderr is not a terminal: no bar (no \r frames) even without --no-progress
    assert main(["evaluate", "--synthetic", "1", "--synthetic-minutes", "0.2", "--no-baseline"]) == 0
    assert "\r" not in capsys.readouterr().err


def test_evaluate_returning_says_when_it_changes_nothing(recording, capsys):
    assert main(["evaluate", str(recording), "--returning", "--no-baseline", "--no-progress"]) == 0
    assert "--returning changed nothing" in capsys.readouterr().err


def test_evaluate_names_one_reason_once_for_a_file_whose_sessions_all_fail(tmp_path, capsys, monkeypatch):
    from emgpilot.classifiers import evaluation

    path = tmp_path / "same.npz"
    path.write_bytes(b"")
    # two sessions of one file, both without a sensor stream: one reason, said once
    two = [evaluation.Session(n, [], [], source=str(path)) for n in ("s1", "s2")]
    monkeypatch.setattr(evaluation, "sessions_from_path", lambda p: two)
    assert main(["evaluate", str(path), "--no-baseline", "--no-progress"]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1, err
