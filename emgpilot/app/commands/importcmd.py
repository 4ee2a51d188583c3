"""``emgpilot import``: convert the public ``.npz`` datasets into recordings."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from emgpilot.signals.importers import ImportedSession


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import",
        help="convert dataset .npz files (cote_allard_myo, myo_readings, 3dc, lis) into recordings",
        description=(
            "Detects the layout of each .npz file and writes one recording per session (per subject and "
            "session) with the labels as the ground-truth cue stream."
        ),
    )
    p.add_argument(
        "npz",
        nargs="+",
        metavar="NPZ",
        help="dataset file(s) in one of the known layouts, or folders (every .npz file in them)",
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the recordings")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace recordings already in the folder (default: refuse, naming them, before writing any)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from emgpilot.app.cli import CLIError
    from emgpilot.signals.importers import write_session
    from emgpilot.signals.recording import RecordingError

    out_dir = Path(args.output)
    files = list(dict.fromkeys(_npz_files(args.npz)))  # a file named twice (and in a folder) is one input
    # every input read and every output named before the first write: a refusal changes nothing
    targets: dict[Path, str] = {}
    for npz in files:
        for session in _load(npz):
            target = out_dir / f"{session.name}.mcap"
            if target in targets:
                raise CLIError(
                    f"two sessions would be written to {target} (from {targets[target]} and {npz}): "
                    "import them into separate folders"
                )
            targets[target] = npz
    existing = [str(t) for t in targets if t.exists() or t.is_symlink()]
    if existing and not args.overwrite:
        raise CLIError(f"already imported: {', '.join(existing)}; pass --overwrite to replace, or choose another -o")
    written = 0
    for npz in files:
        # loaded again rather than kept: a dataset can be larger than memory allows twice over
        for session in _load(npz):
            target = out_dir / f"{session.name}.mcap"
            try:
                write_session(session, target, overwrite=args.overwrite)
            except RecordingError as e:
                raise CLIError(str(e)) from e
            n = sum(len(m) for m in session.messages if hasattr(m, "data"))
            print(f"{npz} -> {target} ({n} samples, {session.metadata.get('duration_s', 0):.1f} s)")
            written += 1
    print(f"wrote {written} recording(s) to {out_dir}")
    return 0


def _load(npz: str) -> list[ImportedSession]:
    """The sessions of one dataset file; its problem as a one-line :class:`CLIError`."""
    from emgpilot.app.cli import CLIError
    from emgpilot.signals.importers import DatasetError, load_npz

    try:
        return load_npz(npz)
    except DatasetError as e:
        raise CLIError(str(e)) from e


def _npz_files(paths: list[str]) -> list[str]:
    """``paths`` with every folder replaced by its .npz files (as ``evaluate`` takes folders)."""
    from emgpilot.app.cli import CLIError

    files: list[str] = []
    for path in paths:
        if Path(path).is_dir():
            found = sorted(str(f) for f in Path(path).iterdir() if f.suffix == ".npz" and f.is_file())
            if not found:
                raise CLIError(f"{path}: the folder holds no .npz files")
            files += found
        else:
            files.append(path)
    return files
