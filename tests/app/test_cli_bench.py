"""``emgpilot bench``: option checks and the human-readable report (the JSON stays as it was)."""

import json

import pytest

from emgpilot.app.cli import main
from emgpilot.app.commands.bench import flight_report, pipeline_report

TINY = ["--minutes", "0.2", "--latency-minutes", "0.02", "--memory-minutes", "0.2", "--repeat", "1"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--seed", "-1"], "argument --seed: must be 0 or more"),
        (["--repeat", "0"], "argument --repeat"),
        (["--minutes", "0"], "argument --minutes"),
        (["--latency-minutes", "-2"], "argument --latency-minutes"),
        (["--flight", "--wearers", "0"], "argument --wearers"),
        (["--flight", "--wearers", "-2"], "argument --wearers"),
        (["--flight", "--max-gestures", "0"], "argument --max-gestures"),
        (["--flight", "--short", "--course", "/nope.toml"], "not allowed with argument --short"),
    ],
)
def test_bad_values_are_usage_errors_naming_the_option(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", *argv])
    assert e.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--oracle"], "--oracle: only used by the flight bench"),
        (["--course", "c.toml", "--calibrate"], "--course, --calibrate: only used by the flight bench"),
        (["--wearers", "2"], "--wearers: only used by the flight bench"),
        (["--flight", "--minutes", "3"], "--minutes: not used by the flight bench"),
        (["--flight", "--oracle", "--calibrate"], "--calibrate: not used with --oracle"),
        (["--source", "r.mcap", "--seed", "2"], "--seed: only used with the synthetic source"),
    ],
)
def test_options_the_chosen_bench_would_ignore_are_refused(argv, message, capsys):
    assert main(["bench", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    for text in ("(default: 3)", "latency run (default: 5)", "memory run (default: 60", "(default: 4)"):
        assert text in out


def test_pipeline_text_report_is_tidy(capsys):
    assert main(["bench", *TINY]) == 0
    out = capsys.readouterr().out
    assert "forearm_emg, forearm_imu, upper_emg" in out
    assert not any(ch in out for ch in "[]{}'") and "None" not in out
    assert "n/a (needs over 2 data-minutes)" in out  # 0.2 memory minutes: no growth figure
    assert "x real time (CPU)" in out and "p99" in out


def test_pipeline_json_keeps_its_keys(capsys):
    assert main(["bench", *TINY, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["streams"] == ["forearm_emg", "forearm_imu", "upper_emg"]
    assert result["memory"]["growth_mb_per_hour"] is None
    assert len(result["throughput"]["realtime_factor_runs"]) == 1
    assert result["live_chunk_latency_us"]["chunk_samples"] == {"forearm_emg": 2, "forearm_imu": 1, "upper_emg": 10}


FLIGHT = {
    "gestures": 12,
    "correct_response_rate": 0.8333,
    "hoops_passed": 2,
    "hoops_total": 4,
    "collisions": 0,
    "spurious_commands": 0,
    "courses_finished": 0,
    "mean_course_time_s": None,
    "outcomes": {"correct": 10, "missed": 1, "wrong_command": 1},
    "correct_response_rate_per_gesture_mean": 0.9167,
    "by_gesture": {
        "fist": {"correct": 6, "made": 8, "recognised_fist": 6, "recognised_none": 2},
        "stiffen": {"correct": 2, "made": 2, "recognised_stiffen": 2},
    },
    "wearers": 2,
    "recognition": "pipeline",
    "reference": {"conduct_a_bot_real_flights": 0.816},
    "wall_s": 3.8,
    "per_wearer": [
        {"gestures": 6, "correct": 5, "outcomes": {}, "spurious_commands": 0, "hoops_passed": 1, "hoops_total": 2,
         "collisions": 0, "course_time_s": None, "finished": False, "seed": 0},
        {"gestures": 6, "correct": 5, "outcomes": {}, "spurious_commands": 0, "hoops_passed": 1, "hoops_total": 2,
         "collisions": 0, "course_time_s": 41.5, "finished": True, "seed": 1},
    ],
}  # fmt: skip


def test_flight_text_report_is_tidy():
    text = flight_report(FLIGHT)
    assert "83.3 % of 12 gestures" in text and "mean over gestures 91.7 %" in text and "81.6 %" in text
    assert not any(ch in text for ch in "[]{}") and "None" not in text
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.startswith("  ")}
    assert rows["fist"][:4] == ["fist", "8", "6", "75.0"] and "none 2" in text
    # the per-wearer table's columns line up
    wearer_lines = text.split("per wearer\n")[1].splitlines()
    assert len({len(line) for line in wearer_lines}) == 1


def test_pipeline_text_report_without_growth_or_runs():
    result = {
        "machine": {"cpu": "", "nproc": 1, "python": "3.11", "os": "Linux"},
        "source": "synthetic",
        "streams": ["forearm_emg"],
        "throughput": {
            "data_s": 12.0, "cpu_s": 0.03, "wall_s": 0.03, "realtime_factor": 400.0, "realtime_factor_wall": None,
            "median_emg_chunk_samples": 1200.0, "stage_share": {"fusion": 0.5}, "realtime_factor_runs": [400.0],
        },
        "live_chunk_latency_us": {
            "chunks": 10, "p50": 150.0, "p99": 6218.4, "max": 13190.2, "cpu_p50": 144.3, "cpu_p99": 822.0,
            "cpu_max": 1415.0, "chunk_samples": {"forearm_emg": 2},
        },
        "memory": {"minutes": 0.3, "traced_mb_at_1_min": None, "traced_mb_at_end": 1.13,
                   "growth_mb_per_hour": None, "peak_traced_mb": 3.87},
    }  # fmt: skip
    text = pipeline_report(result)
    assert "unknown CPU" in text and "n/a (needs over 2 data-minutes)" in text
    assert "6218" in text and "6218.4" not in text  # latency to 3-4 significant figures
    assert "None" not in text


def test_flight_text_output_through_the_cli(capsys):
    assert main(["bench", "--flight", "--oracle", "--short", "--wearers", "1", "--max-gestures", "3"]) == 0
    out = capsys.readouterr().out
    assert "recognition: oracle" in out and "per gesture" in out and "per wearer" in out
    assert "{" not in out
