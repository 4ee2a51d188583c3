"""``emgpilot evaluate``: score the full pipeline on recordings, shared datasets or synthetic wearers."""

from __future__ import annotations

import argparse
import glob
import json
import logging
import shlex
import sys
from collections import Counter
from pathlib import Path

from emgpilot.app.commands.argtypes import non_negative_int, positive_float
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
    p.add_argument(
        "--synthetic", type=non_negative_int, default=0, metavar="N", help="also evaluate N synthetic wearers"
    )
    p.add_argument(
        "--synthetic-minutes",
        type=positive_float,
        default=5.0,
        metavar="MIN",
        help="data minutes per synthetic wearer (default: %(default)g)",
    )
    p.add_argument(
        "--seed", type=non_negative_int, default=0, help="seed of the first synthetic wearer (default: %(default)s)"
    )
    p.add_argument("--match", metavar="TEXT", help="keep only input files whose name contains TEXT (e.g. eval_)")
    p.add_argument("--config", help="pipeline configuration TOML (default: the built-in settings)")
    p.add_argument("--no-baseline", action="store_true", help="skip the Hudgins+LDA baseline")
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar on stderr (never shown when stderr is not a terminal)",
    )
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
    except (ValueError, ConfigError) as e:
        raise CLIError(str(e)) from e  # the loader's messages already name the file
    except OSError as e:
        raise CLIError(f"{args.config}: cannot read it ({e.strerror or e})") from e
    paths = _input_paths(args)
    inputs = path_inputs(paths) + synthetic_inputs(args.synthetic, 60.0 * args.synthetic_minutes, args.seed)
    if not inputs:
        raise CLIError("nothing to evaluate: give recordings/.npz files or --synthetic N")
    _check_outputs(args)  # before a long run, not after it
    # A progress bar only on a terminal: in a log file its \r frames are noise and the error
    # lines after it would be glued onto its last frame.
    progress = not args.no_progress and sys.stderr.isatty()
    run_kwargs = dict(
        keep_timeline=bool(args.report),
        progress=progress,
        baseline=not args.no_baseline,
        feed_gaps=not args.ignore_gaps,
        returning=args.returning,
        calibrate_first=args.calibrate_first,
    )
    if progress:
        from tqdm.contrib.logging import logging_redirect_tqdm

        with logging_redirect_tqdm():  # log lines above the bar, each on a line of its own
            results = evaluate_inputs(inputs, cfg, **run_kwargs)
    else:
        results = evaluate_inputs(inputs, cfg, **run_kwargs)
    summary = summarize(results)
    sessions_per_input = Counter(r.source for r in results)
    if args.returning and all(n < 2 for n in sessions_per_input.values()):
        print(
            "note: --returning changed nothing: no input holds a second session of its wearer "
            "(each file's sessions carry over in order; separate files are separate wearers)",
            file=sys.stderr,
        )
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
        _print_summary(summary, baseline=not args.no_baseline)  # the figures at least, whatever could not be written
    sys.stdout.flush()  # the figures before the errors when both go to one terminal or file
    # A file whose every session fails for the same reason (e.g. a 10-electrode armband) says it once.
    for error in dict.fromkeys(failed["error"] for failed in summary["failed"]):
        print(f"emgpilot evaluate: error: {error}", file=sys.stderr)
    for message in unwritten:
        print(f"emgpilot evaluate: error: {message}", file=sys.stderr)
    return 1 if summary["failed"] or unwritten else 0


def _input_paths(args: argparse.Namespace) -> list[str]:
    """The input files of ``args.paths``; a folder or pattern that yields no file, or a --match
    that leaves none, is a usage error naming it."""
    from emgpilot.app.cli import CLIError

    for pattern in args.paths:
        if not expand_paths([pattern]):
            if Path(pattern).is_dir():
                raise CLIError(f"{pattern}: the folder holds no {'/'.join(INPUT_SUFFIXES)} files")
            raise CLIError(f"{pattern}: no file matches this pattern")
    found = expand_paths(args.paths)
    paths = expand_paths(args.paths, args.match)
    if found and not paths:
        raise CLIError(
            f"--match {args.match!r}: no input file name contains it "
            f"({len(found)} file(s) given, e.g. {Path(found[0]).name})"
        )
    return paths


def _check_outputs(args: argparse.Namespace) -> None:
    """Refuse output paths that cannot be written before anything is evaluated."""
    import tempfile

    from emgpilot.app.cli import CLIError

    if args.json == "":
        raise CLIError("--json needs a file name ('-' for stdout)")
    if args.json and args.json != "-":
        target = Path(args.json)
        if target.is_dir():
            raise CLIError(f"--json {args.json}: is a folder")
        existed = target.exists()
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("a", encoding="utf-8"):  # opened to append: an existing file is left as it is
                pass
        except OSError as e:
            raise CLIError(f"cannot write {args.json}: {os_error_reason(target, e)}") from e
        if not existed:
            target.unlink(missing_ok=True)
    if args.report:
        folder = Path(args.report)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            tempfile.TemporaryFile(dir=folder).close()  # can files be made in it?
        except OSError as e:
            raise CLIError(f"cannot write to {folder}: {os_error_reason(folder / 'x', e)}") from e


def _print_summary(s: dict, baseline: bool = True) -> None:
    def pct(x: float | None) -> str:
        return "n/a" if x is None or x != x else f"{100 * x:.1f} %"

    ev = s["events"]
    per_source = s.get("per_source", {}).values()
    wearers = sum(d.get("dataset") == "synthetic" for d in per_source)
    inputs = [f"{s['files'] - wearers} file(s)"] if s["files"] > wearers else []
    inputs += [f"{wearers} synthetic wearer(s)"] if wearers else []
    lines = [f"{', '.join(inputs)}, {s['sessions']} session(s), {s['duration_s'] / 60:.1f} min of data"]
    if s["rest_min"]:
        lines.append(
            f"events: {ev['correct']}/{ev['cued']} correct ({pct(s['event_accuracy'])}), {ev['wrong']} wrong, "
            f"{ev['missed']} missed; {s['false_events']} false events in {s['rest_min']:.1f} min of rest "
            f"({s['false_events_per_min']:.2f}/min)"
        )
    else:
        lines.append(f"events: {ev['correct']}/{ev['cued']} correct ({pct(s['event_accuracy'])})")
    lat = s["latency_ms"]
    if lat["median"] == lat["median"]:  # NaN when nothing was detected in time
        lines.append(f"latency: median {lat['median']:.0f} ms, p90 {lat['p90']:.0f} ms")
    w = s["window"]
    windows = (
        f"windows ({w['windows']}): CA {pct(w['CA'])}, AER {pct(w['AER'])}, INS {pct(w['INS'])}, REJ {pct(w['REJ'])}"
    )
    if baseline:
        windows += (
            f"; baseline (Hudgins+LDA, within-subject) CA {pct(s['baseline_window_CA'])} "
            f"vs pipeline {pct(s['window_CA_on_baseline_test'])} on the same test cues"
        )
    lines.append(windows)
    speed = f"{s['realtime_factor']:.0f}x real time" if s["realtime_factor"] == s["realtime_factor"] else "speed n/a"
    lines.append(f"other-motion event rate: {pct(s['other_motion_event_rate'])}; {speed}")
    if len(s.get("per_dataset", {})) > 1:
        for name, d in s["per_dataset"].items():
            line = (
                f"  {name}: events {pct(d['event_accuracy'])} of {d['events']['cued']}, "
                f"false/min {d['false_events_per_min'] or 0:.2f}, window CA {pct(d['window']['CA'])}"
            )
            line += f", baseline CA {pct(d['baseline_window_CA'])}" if baseline else ""
            lines.append(line + f", other-motion {pct(d['other_motion_event_rate'])}")
    print("\n".join(lines))
