"""``emgpilot train-wrist``: reproduce the shipped wrist network from the shared data."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from emgpilot.app.commands.argtypes import non_negative_int, positive_int

log = logging.getLogger(__name__)

_DEFAULT_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train-wrist",
        help="train the wrist flexion/extension network on other people's data and print cross-subject accuracy",
        description=(
            "Train the wrist network on cote_allard_myo/pre_* (previous users; the three files that are "
            "eval_Female0's person are left out), evaluate once on the eval_* people, write "
            "wrist.safetensors + wrist.json (and the rotation-invariant companion wrist_invariant.*). With the "
            "default seed and epochs this reproduces the shipped weights."
        ),
    )
    p.add_argument(
        "--data", default=str(_DEFAULT_DATA), help="shared data folder holding cote_allard_myo/ (default: %(default)s)"
    )
    p.add_argument("--out", default=None, help="folder for wrist.safetensors/.json (default: ./wrist_model)")
    p.add_argument("--seed", type=non_negative_int, default=None, help="random seed (default: the shipped model's)")
    p.add_argument("--epochs", type=positive_int, default=None, help="training epochs (default: the shipped model's)")
    p.add_argument(
        "--rotation",
        choices=["joint", "augment", "none"],
        default="joint",
        help=(
            "armband-rotation handling: joint = learn gesture x electrode shift so the wearer's rotation can be "
            "estimated (shipped); augment = random rotations (invariant model); none = baseline"
        ),
    )
    p.add_argument(
        "--myo-readings",
        choices=["on", "off"],
        default=None,
        help="also train on the myo_readings people, aligned to the standard placement (default: as shipped)",
    )
    p.add_argument(
        "--other-classes",
        choices=["on", "off"],
        default="on",
        help="also learn radial/ulnar deviation and hand open, so fusion can reject them (default: on, as shipped)",
    )
    p.add_argument(
        "--companion",
        choices=["on", "off"],
        default="on",
        help="with --rotation joint, also train the rotation-invariant companion network that classifies a new "
        "wearer's first gestures while the rotation estimate is still thin (wrist_invariant.*; default: on)",
    )
    p.add_argument("--json", action="store_true", help="print the full evaluation report as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from emgpilot.app.cli import CLIError
    from emgpilot.classifiers.wrist import INVARIANT_NAME
    from emgpilot.classifiers.wrist_train import TrainConfig, format_report, save_model, train_and_evaluate

    data = Path(args.data)
    if not (data / "cote_allard_myo").is_dir():
        raise CLIError(f"no cote_allard_myo/ folder in {data} (pass --data)")
    cfg = TrainConfig()
    if args.seed is not None:
        cfg = replace(cfg, seed=args.seed)
    if args.epochs is not None:
        cfg = replace(cfg, epochs=args.epochs)
    if args.myo_readings is not None:
        cfg = replace(cfg, myo_readings=args.myo_readings == "on")
    if args.other_classes == "off":
        cfg = replace(cfg, other_classes=())
    cfg = replace(cfg, joint_rotation=args.rotation == "joint", full_rotation=args.rotation == "augment")
    try:
        model, report = train_and_evaluate(data, cfg)
    except (FileNotFoundError, ValueError) as e:
        raise CLIError(str(e)) from e
    out_dir = Path(args.out) if args.out else Path("wrist_model")
    out = save_model(model, out_dir)
    companion = None
    if cfg.joint_rotation and args.companion == "on":
        # The same recipe with random rotations instead of the joint (gesture x shift) target.
        try:
            inv_model, companion = train_and_evaluate(data, replace(cfg, joint_rotation=False, full_rotation=True))
        except (FileNotFoundError, ValueError) as e:
            raise CLIError(str(e)) from e
        inv_out = save_model(inv_model, out_dir, name=INVARIANT_NAME)
    if args.json:
        print(json.dumps({**report, "companion": companion} if companion else report, indent=2))
    else:
        print(format_report(report))
        print(f"trained in {report['train_seconds']} s; weights written to {out}")
        if companion is not None:
            mean = companion["fixed"]["mean"]["0"]
            print(
                f"rotation-invariant companion: CA4 {mean['ca4']:.3f}, flexion/extension {mean['flex_ext']:.3f} "
                f"(any rotation); trained in {companion['train_seconds']} s; weights written to {inv_out}"
            )
    return 0
