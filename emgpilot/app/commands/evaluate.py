"""``emgpilot evaluate``: score the full pipeline on recordings, shared datasets or synthetic wearers."""

from __future__ import annotations

import argparse
import glob
import json
import logging
import shlex
import sys
from pathlib import Path

from emgpilot.config import os_error_reason

log = logging.getLogger(__name__)

INPUT_SUFFIXES = (".npz", ".mcap")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score gesture recognition on recordings with ground-truth cues (event and window level)",
        description=(
            "Replays each input through the full pipeline as live (data time, as fast as possible) and "
            "scores it against its cue stream: event accuracy, false events per minute of rest, latency, "
            "other-motion event rate, LibEMG window metrics (CA, AER, INS, REJ, confusion) and a "
            "Hudgins+LDA within-subject baseline. Inputs: recordings, the shared .npz datasets, folders "
            "(their .npz/.mcap files), glob patterns, and --synthetic wearers."
        ),
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="recording, .npz dataset file, folder or glob pattern")
    p.add_argument("--json", metavar="OUT", help="write the full result as JSON to OUT ('-' for stdout)")
    p.add_argument("--report", metavar="DIR", help="write report.md, table.md (README-ready) and PNG plots to DIR")
    p.add_argument("--synthetic", type=int, default=0, metavar="N", help="also evaluate N synthetic wearers")
    p.add_argument(
        "--synthetic-minutes", type=float, default=5.0, metavar="MIN", help="data minutes per synthetic wearer"
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the first synthetic wearer")
    p.add_argument("--match", metavar="TEXT", help="keep only input files whose name contains TEXT (e.g. eval_)")
    p.add_argument("--config", help="pipeline configuration TOML")
    p.add_argument("--no-baseline", action="store_true", help="skip the Hudgins+LDA baseline")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    p.add_argument(
        "--ignore-gaps",
        action="store_true",
        help="do not push the inputs' data-gap events into the pipeline (a live device does)",
    )
    p.add_argument(
        "--returning",
        action="store_true",
        help="score each file's sessions as a returning wearer: each starts from the armband rotation the previous "
        "one learnt (a wearer profile); the first session of every file starts fresh",
    )
    p.add_argument(
        "--calibrate-first",
        action="store_true",
        help="each wearer first calibrates (emgpilot calibrate) from their first session, which is then not scored; "
        "synthetic wearers make a separate 1.5-minute cued calibration session",
    )
    p.set_defaults(func=run)


def expand_paths(patterns: list[str], match: str | None = None) -> list[str]:
    """Folders become their .npz/.mcap files, glob patterns expand; missing paths stay (reported later)."""
    out: list[str] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found = sorted(str(f) for f in path.iterdir() if f.suffix in INPUT_SUFFIXES)
        elif any(ch in pattern for ch in "*?["):
            found = sorted(glob.glob(pattern))
        else:
            found = [pattern]
        out.extend(found)
    if match:
        out = [p for p in out if match in Path(p).name]
    return out


def run(args: argparse.Namespace) -> int:
    from emgpilot.app.cli import CLIError
    from emgpilot.build import load_pipeline_config
    from emgpilot.classifiers.evaluation import evaluate_inputs, path_inputs, summarize, synthetic_inputs
    from emgpilot.classifiers.metrics import json_safe
    from emgpilot.config import ConfigError

    try:
        import torch

        torch.set_num_threads(1)  # one core, as in live use; realtime factors count this process's CPU time
    except ImportError:
        pass
    try:
        cfg = load_pipeline_config(args.config)
    except (OSError, ValueError, ConfigError) as e:
        raise CLIError(f"{args.config}: {e}") from e
    paths = expand_paths(args.paths, args.match)
    if args.synthetic < 0 or args.synthetic_minutes <= 0:
        raise CLIError("--synthetic and --synthetic-minutes must be positive")
    inputs = path_inputs(paths) + synthetic_inputs(args.synthetic, 60.0 * args.synthetic_minutes, args.seed)
    if not inputs:
        raise CLIError("nothing to evaluate: give recordings/.npz files or --synthetic N")
    _check_outputs(args)  # before a long run, not after it
    results = evaluate_inputs(
        inputs,
        cfg,
        keep_timeline=bool(args.report),
        progress=not args.no_progress,
        baseline=not args.no_baseline,
        feed_gaps=not args.ignore_gaps,
        returning=args.returning,
        calibrate_first=args.calibrate_first,
    )
    summary = summarize(results)
    command = "emgpilot evaluate " + " ".join(shlex.quote(a) for a in sys.argv[2:]) if len(sys.argv) > 1 else ""
    unwritten = []
    if args.report:
        from emgpilot.classifiers.report import write_report

        try:
            report = write_report(summary, results, Path(args.report), command=command.strip())
            print(f"report written to {report}", file=sys.stderr)
        except OSError as e:
            unwritten.append(f"cannot write the report to {args.report}: {os_error_reason(args.report, e)}")
    if args.json:
        text = json.dumps(json_safe(summary), indent=2, allow_nan=False)
        if args.json == "-":
            print(text)
        else:
            try:
                Path(args.json).write_text(text + "\n", encoding="utf-8")
            except OSError as e:
                unwritten.append(f"cannot write {args.json}: {os_error_reason(args.json, e)}")
    if (args.json != "-" or unwritten) and summary["sessions"]:
        _print_summary(summary)  # the figures at least, whatever could not be written
    for failed in summary["failed"]:
        print(f"emgpilot evaluate: error: {failed['error']}", file=sys.stderr)
    for message in unwritten:
        print(f"emgpilot evaluate: error: {message}", file=sys.stderr)
    return 1 if summary["failed"] or unwritten else 0


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse output paths that cannot be written before anything is evaluated."""
    from emgpilot.app.cli import CLIError

    targets = []
    if args.json and args.json != "-":
        if Path(args.json).is_dir():
            raise CLIError(f"--json {args.json}: is a folder")
        targets.append(Path(args.json).parent)
    if args.report:
        targets.append(Path(args.report))
    for folder in targets:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CLIError(f"cannot write to {folder}: {os_error_reason(folder / 'x', e)}") from e


def _print_summary(s: dict) -> None:
    def pct(x: float | None) -> str:
        return "n/a" if x is None or x != x else f"{100 * x:.1f} %"

    ev = s["events"]
    print(f"{s['files']} file(s), {s['sessions']} session(s), {s['duration_s'] / 60:.1f} min of data")
    print(
        f"events: {ev['correct']}/{ev['cued']} correct ({pct(s['event_accuracy'])}), {ev['wrong']} wrong, "
        f"{ev['missed']} missed; {s['false_events']} false events in {s['rest_min']:.1f} min of rest "
        f"({s['false_events_per_min']:.2f}/min)"
        if s["rest_min"]
        else f"events: {ev['correct']}/{ev['cued']} correct ({pct(s['event_accuracy'])})"
    )
    lat = s["latency_ms"]
    print(f"latency: median {lat['median']:.0f} ms, p90 {lat['p90']:.0f} ms" if lat["median"] == lat["median"] else "")
    w = s["window"]
    print(
        f"windows ({w['windows']}): CA {pct(w['CA'])}, AER {pct(w['AER'])}, INS {pct(w['INS'])}, "
        f"REJ {pct(w['REJ'])}; baseline (Hudgins+LDA, within-subject) CA {pct(s['baseline_window_CA'])} "
        f"vs pipeline {pct(s['window_CA_on_baseline_test'])} on the same test cues"
    )
    speed = f"{s['realtime_factor']:.0f}x real time" if s["realtime_factor"] == s["realtime_factor"] else "speed n/a"
    print(f"other-motion event rate: {pct(s['other_motion_event_rate'])}; {speed}")
    if len(s.get("per_dataset", {})) > 1:
        for name, d in s["per_dataset"].items():
            print(
                f"  {name}: events {pct(d['event_accuracy'])} of {d['events']['cued']}, "
                f"false/min {d['false_events_per_min'] or 0:.2f}, window CA {pct(d['window']['CA'])}, "
                f"baseline CA {pct(d['baseline_window_CA'])}, other-motion {pct(d['other_motion_event_rate'])}"
            )
