"""``emgpilot calibrate``: teach the wrist classification one wearer's own patterns (optional).

See :mod:`emgpilot.classifiers.calibration`. The input is one cued session: a recording made
in the window during a cued gesture session (``Record`` + ``Start cued session``), a dataset
file, or, to try it out, a synthetic wearer's generated calibration session.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any

from emgpilot.app.commands.argtypes import non_negative_int, positive_float, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="optional: fit a wearer's own fist / wrist flexion / extension patterns from one cued session",
        description="Recognition needs no calibration. A wearer who records one cued session (about 1.5 min: "
        "fist, wrist flexion and wrist extension, five times each, rest between; the window's cued session "
        "while recording) can teach it their own patterns: a linear classifier on the wrist network's features, "
        "blended with the network, plus the armband rotation the labelled gestures show. Saved in the wearer's "
        "profile (run/gui --wearer NAME then use it), or to a file for recognition.wrist_calibration.",
    )
    p.add_argument("path", nargs="?", help="cued session: a recording (.mcap) or a dataset file (.npz)")
    p.add_argument(
        "--session", type=positive_int, default=1, help="which session of a multi-session file (default: 1, the first)"
    )
    p.add_argument(
        "--synthetic", type=non_negative_int, metavar="SEED", help="use synthetic wearer SEED's calibration session"
    )
    p.add_argument(
        "--live",
        choices=("myo", "synthetic"),
        help="run the cued session now, the terminal showing each cue (myo: the armband through its dongle, about "
        "1.5 min; synthetic: a simulated wearer following the cues, --seed)",
    )
    p.add_argument("--port", help="BLED112 dongle port for --live myo (default: auto-detect)")
    p.add_argument(
        "--seed", type=non_negative_int, default=0, help="the simulated wearer of --live synthetic (default: 0)"
    )
    p.add_argument("--reps", type=positive_int, default=5, help="--live: holds of each gesture (default 5)")
    p.add_argument("--hold", type=positive_float, default=3.0, help="--live: seconds per hold (default 3)")
    p.add_argument("--rest", type=float, default=3.0, help="--live: seconds of rest between holds (default 3)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--wearer", metavar="NAME", help="keep it in this wearer's profile")
    who.add_argument("--out", metavar="FILE", help="write it to this file instead (JSON)")
    p.add_argument(
        "--arm",
        choices=("right", "left"),
        help="the arm wearing the Myo (default: as the recording says, else not set: a left arm must be given)",
    )
    p.add_argument(
        "--config",
        help="pipeline configuration TOML: the conditioning and wrist network it uses (default: the built-in settings)",
    )
    p.add_argument("--dir", metavar="DIR", help="profile folder (default: the user data folder)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from emgpilot.app.cli import CLIError
    from emgpilot.build import load_pipeline_config, with_wearer_arm
    from emgpilot.classifiers.calibration import (
        CalibrationError,
        fit_calibration,
        session_features,
        split_half_accuracy,
    )
    from emgpilot.classifiers.evaluation import EvaluationError, sessions_from_path, synthetic_calibration_session
    from emgpilot.classifiers.recognition import load_wrist
    from emgpilot.classifiers.wrist import signed_shift
    from emgpilot.config import ConfigError, os_error_reason
    from emgpilot.wearer import ProfileError, calibration_path, check_name, save_calibration

    if sum(x is not None for x in (args.path, args.synthetic, args.live)) != 1:
        raise CLIError("give one cued session: a recording/dataset file, --synthetic SEED, or --live myo|synthetic")
    try:
        if args.wearer:
            check_name(args.wearer)
        cfg = load_pipeline_config(args.config)
    except (ValueError, ConfigError) as e:
        raise CLIError(str(e)) from e
    except OSError as e:  # a folder or an unreadable file given as --config
        raise CLIError(f"{args.config}: cannot read it ({e.strerror or e})") from e
    try:
        if args.live is not None:
            session = live_session(args)
        elif args.synthetic is not None:
            session = synthetic_calibration_session(args.synthetic)
        else:
            sessions = sessions_from_path(args.path)
            if not 1 <= args.session <= len(sessions):
                raise CLIError(f"{args.path} holds {len(sessions)} session(s); --session {args.session} is not one")
            session = sessions[args.session - 1]
    except EvaluationError as e:
        raise CLIError(str(e)) from e
    arm = args.arm or session.metadata.get("arm") or session.metadata.get("hand")
    cfg = with_wearer_arm(cfg, arm if arm in ("right", "left") else None)
    model = load_wrist(cfg.recognition.wrist_model)
    if model is None:
        raise CLIError("calibration needs the wrist network (recognition.wrist_model)")
    left = cfg.recognition.fusion.arm == "left"
    try:
        feats, labels = session_features(session.messages, model, cfg.preprocess, left_arm=left)
        calibration = fit_calibration(feats, labels, model, mirrored=left, source=session.source or session.name)
    except CalibrationError as e:
        raise CLIError(f"{session.source or session.name}: {e}") from e
    check = split_half_accuracy(feats, labels, model)
    try:
        if args.out:
            where = calibration.save(args.out)
        else:
            save_calibration(args.wearer, calibration, args.dir, arm="left" if left else arm)
            where = calibration_path(args.wearer, args.dir)
    except OSError as e:
        target = args.out or calibration_path(args.wearer, args.dir)
        raise CLIError(f"cannot save the calibration to {target}: {os_error_reason(target, e)}") from e
    except ProfileError as e:
        raise CLIError(f"cannot save the calibration: {e}") from e
    result = {
        "saved": str(where),
        "wearer": args.wearer,
        "arm": "left" if left else (arm or "not set"),
        "classes": list(calibration.classes),
        "windows": calibration.windows,
        "rotation": None if calibration.rotation is None else signed_shift(calibration.rotation),
        "split_half_accuracy": check,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"calibration saved to {where}")
    print("settled windows: " + ", ".join(f"{c} {n}" for c, n in calibration.windows.items()))
    if calibration.rotation is not None:
        print(f"armband rotation: {signed_shift(calibration.rotation):+d} electrodes from the standard placement")
    if check is not None:
        print(f"first half -> second half of the session (and back): {100 * check:.1f} % of windows right")
    if args.wearer:
        print(f"used by: emgpilot run --wearer {args.wearer} (or the window's Wearer field) with the Myo")
    else:
        print(f"use it with [recognition] wrist_calibration = {json.dumps(str(where))} in a configuration TOML")
    return 0


def live_session(args: argparse.Namespace) -> Any:
    """Run a cued calibration session now (fist, wave down, wave up; the terminal shows the cues)
    and return it as an evaluation :class:`~emgpilot.classifiers.evaluation.Session`."""
    from emgpilot.app.cli import CLIError
    from emgpilot.app.gui.cues import CuePlan, CueSequencer
    from emgpilot.classifiers.calibration import is_forearm_emg
    from emgpilot.classifiers.evaluation import Session
    from emgpilot.signals.device import DeviceError
    from emgpilot.signals.streams import Chunk

    try:
        plan = CuePlan(
            gestures=("fist", "wave_down", "wave_up"),  # palm down: wave down/up are wrist flexion/extension
            repetitions=args.reps,
            cue_s=args.hold,
            rest_s=args.rest,
            random_order=False,
        )
    except ValueError as e:
        raise CLIError(str(e)) from e
    if args.live == "synthetic":
        from emgpilot.signals.synthetic import Schedule, SyntheticArm

        device: Any = SyntheticArm(seed=args.seed, speed=math.inf, schedule=Schedule.idle())
        arm = device
    else:
        from emgpilot.signals.myo import open_live_arm

        try:
            device = open_live_arm(args.port, None)
        except (DeviceError, ValueError) as e:
            raise CLIError(str(e)) from e
        arm = None
    cues = CueSequencer(plan, follow_with_arm=False)
    names = {
        "fist": "FIST: clench and hold",
        "wave_down": "WRIST FLEXION (palm down, hand down): hold",
        "wave_up": "WRIST EXTENSION (palm down, hand up): hold",
    }
    print(f"cued calibration session, {plan.duration_s:.0f} s: palm down, relax between cues", flush=True)
    kept: list = []
    t = -math.inf
    try:
        device.start()
        while cues.t_end is None or t < cues.t_end:
            batch = device.read(0.1)
            kept += [m for m in batch if is_forearm_emg(m)]
            t = max([t, *(m.t_end for m in batch if isinstance(m, Chunk) and len(m))])
            if not math.isfinite(t):
                if device.finished:
                    raise CLIError("the device ended before sending any data")
                continue
            for cue in cues.update(t):
                print(f"  {cue.t - cues.t0:6.1f} s  {names.get(cue.label, 'rest')}", flush=True)
                if arm is not None and cue.label in names:  # the simulated wearer holds the whole cue
                    arm.perform(cue.label, plan.cue_s)
            if device.finished and t < (cues.t_end or math.inf):
                raise CLIError("the device ended before the cued session did: nothing was saved")
    except DeviceError as e:
        raise CLIError(f"the device stopped: {e}; nothing was saved") from e
    finally:
        device.stop()
    info = dict(device.info())
    source = f"live {args.live} cued session {time.strftime('%Y-%m-%d %H:%M')}"
    return Session(
        name="calibration", streams=list(device.streams()), messages=[*kept, *cues.cues], metadata=info, source=source
    )
