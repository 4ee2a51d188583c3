"""``emgpilot wearers``: list or forget the stored wearer profiles (see :mod:`emgpilot.wearer`)."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "wearers",
        help="list or forget wearer profiles (the armband rotation remembered per wearer, their calibration)",
        description="Wearer profiles keep the armband rotation a wearer's last session learnt, so their next "
        "session (run/gui --wearer NAME) starts from it. Lists them, or forgets one.",
    )
    p.add_argument("--forget", metavar="NAME", help="delete this wearer's profile")
    p.add_argument("--dir", metavar="DIR", help="profile folder (default: the user data folder)")
    p.add_argument("--json", action="store_true", help="print the profiles as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from emgpilot.app.cli import CLIError
    from emgpilot.classifiers.wrist import signed_shift
    from emgpilot.wearer import ProfileError, calibration_path, default_profile_dir, load_profile, profile_path

    folder = Path(args.dir) if args.dir else default_profile_dir()
    if args.forget is not None and not args.forget.strip():
        raise CLIError("--forget needs a wearer's name")
    if args.forget:
        try:
            path = profile_path(args.forget, folder)
        except ProfileError as e:
            raise CLIError(str(e)) from e
        if not path.exists():
            raise CLIError(f"no profile for wearer {args.forget!r} in {folder}")
        path.unlink()
        calibration = calibration_path(args.forget, folder)
        calibration.unlink(missing_ok=True)
        print(f"forgot wearer {args.forget} ({path})")
        return 0
    rows, broken = [], []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            rows.append(load_profile(path.stem, folder))
        except ProfileError as e:
            broken.append(str(e))
    if args.json:
        wearers = [{**r.to_dict(), "calibrated": calibration_path(r.name, folder).exists()} for r in rows]
        print(json.dumps({"folder": str(folder), "wearers": wearers, "errors": broken}, indent=2))
    elif not rows:
        readable = " readable" if broken else ""
        print(f"no{readable} wearer profiles in {folder} (run or gui --wearer NAME creates one)")
    else:
        print(f"{'wearer':20s} {'arm':6s} {'rotation':>8s} {'sessions':>8s} {'calibrated':10s}  updated")
        for r in rows:
            rot = "-" if r.wrist_rotation is None else f"{signed_shift(r.wrist_rotation):+d}"
            cal = "yes" if calibration_path(r.name, folder).exists() else "-"
            print(f"{r.name:20s} {r.arm or '-':6s} {rot:>8s} {r.sessions:8d} {cal:10s}  {r.updated or '-'}")
    for message in broken:
        print(f"emgpilot wearers: warning: {message}", file=sys.stderr)
    return 0
