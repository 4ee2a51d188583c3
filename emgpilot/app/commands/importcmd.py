"""``emgpilot import``: convert the public ``.npz`` datasets into recordings."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="convert dataset .npz files (cote_allard_myo, myo_readings, 3dc, lis) into recordings",
        description=(
            "Detects the layout of each .npz file and writes one recording per session (per subject and "
            "session) with the labels as the ground-truth cue stream."
        ),
    )
    p.add_argument("npz", nargs="+", metavar="NPZ", help="dataset file(s) in one of the known layouts")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the recordings")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from emgpilot.app.cli import CLIError
    from emgpilot.signals.importers import DatasetError, load_npz, write_session
    from emgpilot.signals.recording import RecordingError

    out_dir = Path(args.output)
    written = 0
    for npz in args.npz:
        try:
            sessions = load_npz(npz)
        except DatasetError as e:
            raise CLIError(str(e)) from e
        for session in sessions:
            target = out_dir / f"{session.name}.mcap"
            try:
                write_session(session, target)
            except RecordingError as e:
                raise CLIError(str(e)) from e
            n = sum(len(m) for m in session.messages if hasattr(m, "data"))
            print(f"{npz} -> {target} ({n} samples, {session.metadata.get('duration_s', 0):.1f} s)")
            written += 1
    print(f"wrote {written} recording(s) to {out_dir}")
    return 0
