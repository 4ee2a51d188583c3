"""``emgpilot calibrate``: teach the wrist classification one wearer's own patterns (optional).

See :mod:`emgpilot.classifiers.calibration`. The input is one cued session: a recording made
in the window during a cued gesture session (``Record`` + ``Start cued session``), a dataset
file, or, to try it out, a synthetic wearer's generated calibration session.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable
from typing import Any

from emgpilot.app.commands.argtypes import non_negative_int, positive_float, positive_int

POOR_SPLIT_HALF = 0.6
"""Below this split-half accuracy the calibration is saved with a warning. The classes are rest,
fist, wrist flexion and extension (chance 25 %); a synthetic wearer who follows the cues scores
above 95 %, a real one typically 80-95 %; a session whose cues were not followed (or whose band
moved) comes out near chance. 60 % leaves room for an honest but imperfect session."""
STALL_S = 5.0
"""A live device that sent data and then none for this long (wall time) has stopped: the driver
marks a pause of 0.5 s as silent and reconnects a lost link within a couple of seconds, so 5 s
without data is no hiccup, and the cues (which run in data time) would wait for ever."""
DEFAULTS: dict[str, Any] = {"session": 1, "reps": 5, "hold": 3.0, "rest": 3.0, "seed": 0, "connect_timeout": 30.0}
"""The mode-specific options' defaults; the parser leaves them None so that an option given for
a mode that does not use it can be told apart from a default (and refused)."""
USED_BY: dict[str, tuple[str, ...]] = {
    "file": ("session",),
    "synthetic": (),
    "live synthetic": ("reps", "hold", "rest", "seed"),
    "live myo": ("reps", "hold", "rest", "port", "connect_timeout"),
}
"""Which mode-specific options each kind of cued session uses."""


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
    p.add_argument("--session", type=positive_int, help="which session of a multi-session file (default: 1, the first)")
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
        "--connect-timeout",
        type=positive_float,
        help="--live myo: give up if no data arrives within this many seconds (default 30)",
    )
    p.add_argument("--seed", type=non_negative_int, help="the simulated wearer of --live synthetic (default: 0)")
    p.add_argument("--reps", type=positive_int, help="--live: holds of each gesture (default 5)")
    p.add_argument(
        "--hold",
        type=positive_float,
        help="--live: seconds per hold (default 3; at least 1.4 s with 5 holds, more with fewer: the first "
        "second of each hold is left out)",
    )
    p.add_argument("--rest", type=positive_float, help="--live: seconds of rest between holds (default 3)")
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
    check_mode_options(args)
    try:
        if args.wearer:
            check_name(args.wearer)
        cfg = load_pipeline_config(args.config)
    except (ValueError, ConfigError) as e:
        raise CLIError(str(e)) from e
    except OSError as e:  # a folder or an unreadable file given as --config
        raise CLIError(f"{args.config}: cannot read it ({e.strerror or e})") from e
    if args.live is not None:
        # before the session: a minute of cues must not end in "no wrist network"
        model = load_wrist(cfg.recognition.wrist_model)
        if model is None:
            raise CLIError("calibration needs the wrist network (recognition.wrist_model)")
    try:
        if args.live is not None:
            session = live_session(args, int(model.window))
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
    if check is not None and check < POOR_SPLIT_HALF:
        # saved all the same (the user asked for it), but they must know it is probably worthless
        print(
            f"emgpilot calibrate: warning: only {100 * check:.0f} % of the session's windows are told apart "
            f"(below {100 * POOR_SPLIT_HALF:.0f} %; chance is {100 / len(calibration.classes):.0f} %): the cues "
            "were probably not followed or the band moved during the session; calibrate again",
            file=sys.stderr,
            flush=True,
        )
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


def check_mode_options(args: argparse.Namespace) -> None:
    """Refuse options the chosen kind of session does not use (only those given), then fill in
    the defaults of the rest."""
    from emgpilot.app.cli import CLIError

    mode = "file" if args.path is not None else "synthetic" if args.synthetic is not None else f"live {args.live}"
    used = USED_BY[mode]
    unused = [n for n in (*DEFAULTS, "port") if n not in used and getattr(args, n) is not None]
    if unused:
        where = {"file": "a recording/dataset file", "synthetic": "--synthetic SEED"}.get(mode, f"--live {args.live}")
        users = {n: [m for m, names in USED_BY.items() if n in names] for n in unused}
        said = ", ".join(
            f"--{n.replace('_', '-')} (for {' / '.join(_mode_option(m) for m in users[n])})" for n in unused
        )
        raise CLIError(f"not used with {where}: {said}")
    for name, value in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, value)


def _mode_option(mode: str) -> str:
    return {"file": "a recording/dataset file", "synthetic": "--synthetic"}.get(mode, f"--{mode}")


def min_hold_s(reps: int, window: int, rate_hz: float = 200.0) -> float:
    """The shortest hold (0.1 s steps) whose ``reps`` holds give each gesture the settled windows
    a calibration needs: a window starts ``SETTLE_S`` into a hold, lies inside it, and windows
    start ``STEP`` samples apart."""
    from emgpilot.classifiers.calibration import MIN_WINDOWS, SETTLE_S, STEP

    per_hold = math.ceil(MIN_WINDOWS / reps)
    need = SETTLE_S + window / rate_hz + (per_hold - 1) * STEP / rate_hz
    return math.ceil(need * 10 + 0.25) / 10  # a quarter step of slack: samples rarely fall on the cue


def live_session(args: argparse.Namespace, window: int, clock: Callable[[], float] = time.monotonic) -> Any:
    """Run a cued calibration session now (fist, wave down, wave up; the terminal shows the cues)
    and return it as an evaluation :class:`~emgpilot.classifiers.evaluation.Session`.

    ``window``: the wrist network's window (samples), for the shortest useful hold. ``clock``:
    wall time for the connect timeout and the stall check (tests pass a fake one)."""
    from emgpilot.app.cli import CLIError
    from emgpilot.app.gui.cues import CuePlan
    from emgpilot.classifiers.calibration import MIN_WINDOWS, SETTLE_S
    from emgpilot.classifiers.evaluation import Session
    from emgpilot.signals.device import DeviceError

    shortest = min_hold_s(args.reps, window)
    if args.hold < shortest:
        raise CLIError(
            f"--hold {args.hold:g}: too short for {args.reps} hold(s) of each gesture: the first {SETTLE_S:g} s of a "
            f"hold is left out (the wearer is still moving into it) and each gesture needs {MIN_WINDOWS} settled "
            f"windows; give --hold {shortest:g} or more (or more --reps)"
        )
    plan = CuePlan(
        gestures=("fist", "wave_down", "wave_up"),  # palm down: wave down/up are wrist flexion/extension
        repetitions=args.reps,
        cue_s=args.hold,
        rest_s=args.rest,
        random_order=False,
    )
    if args.live == "synthetic":
        from emgpilot.signals.synthetic import Schedule, SyntheticArm

        device: Any = SyntheticArm(seed=args.seed, speed=math.inf, schedule=Schedule.idle())
        arm, what, connect_timeout, stall = device, "the simulated wearer", None, None
    else:
        from emgpilot.signals.myo import open_live_arm

        try:
            device = open_live_arm(args.port, None)
        except (DeviceError, ValueError) as e:
            raise CLIError(str(e)) from e
        arm, what, connect_timeout, stall = None, "the Myo", args.connect_timeout, STALL_S
    print(f"cued calibration session, {plan.duration_s:.0f} s: palm down, relax between cues", flush=True)
    kept, cues = run_cues(
        device, plan, arm=arm, what=what, connect_timeout_s=connect_timeout, stall_s=stall, clock=clock
    )
    info = dict(device.info())
    source = f"live {args.live} cued session {time.strftime('%Y-%m-%d %H:%M')}"
    return Session(
        name="calibration", streams=list(device.streams()), messages=[*kept, *cues], metadata=info, source=source
    )


CUE_NAMES = {
    "fist": "FIST: clench and hold",
    "wave_down": "WRIST FLEXION (palm down, hand down): hold",
    "wave_up": "WRIST EXTENSION (palm down, hand up): hold",
}


def run_cues(
    device: Any,
    plan: Any,
    arm: Any = None,
    what: str = "the device",
    connect_timeout_s: float | None = None,
    stall_s: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[list, list]:
    """Show ``plan``'s cues on the terminal as ``device``'s data time reaches them; returns the
    forearm EMG and the cues.

    Raises CLIError (nothing to save) if no data arrives within ``connect_timeout_s``, if data stops
    for ``stall_s`` once it flowed, or if the device ends or fails before the last cue; each names
    the devices' latest status, as ``run``/``record`` do. ``arm``: a simulated wearer to follow the cues.
    """
    from emgpilot.app.cli import CLIError
    from emgpilot.app.gui.cues import CueSequencer
    from emgpilot.classifiers.calibration import is_forearm_emg
    from emgpilot.signals.device import DeviceError
    from emgpilot.signals.runner import describe_statuses
    from emgpilot.signals.streams import Chunk, StatusEvent

    cues = CueSequencer(plan, follow_with_arm=False)
    statuses: dict[str, tuple[str, str]] = {}
    kept: list = []
    t = -math.inf
    started = clock()
    last_data = started
    try:
        device.start()
        while cues.t_end is None or t < cues.t_end:
            batch = device.read(0.1)
            now = clock()
            for m in batch:
                if isinstance(m, StatusEvent) and m.status != "stopped":  # keep the state it stopped from
                    statuses[m.device] = (m.status, m.detail)
            kept += [m for m in batch if is_forearm_emg(m)]
            t_new = max([t, *(m.t_end for m in batch if isinstance(m, Chunk) and len(m))])
            if t_new > t:
                t, last_data = t_new, now
            state = describe_statuses(statuses)
            if not math.isfinite(t):
                if device.finished:
                    raise CLIError(f"{what} ended before sending any data ({state}): nothing saved")
                if connect_timeout_s is not None and now - started > connect_timeout_s:
                    raise CLIError(f"no data within {connect_timeout_s:g} s ({state}): nothing saved")
                continue
            for cue in cues.update(t):
                print(f"  {cue.t - cues.t0:6.1f} s  {CUE_NAMES.get(cue.label, 'rest')}", flush=True)
                if arm is not None and cue.label in CUE_NAMES:  # the simulated wearer holds the whole cue
                    arm.perform(cue.label, plan.cue_s)
            at = t - (cues.t0 or t)
            if device.finished and t < (cues.t_end or math.inf):
                raise CLIError(f"{what} ended at {at:.1f} s of the session, before its last cue: nothing saved")
            if stall_s is not None and now - last_data > stall_s:
                raise CLIError(f"{what} stopped sending data at {at:.1f} s of the session ({state}): nothing saved")
    except DeviceError as e:
        raise CLIError(f"{what} stopped: {e}; nothing saved") from e
    finally:
        device.stop()
    return kept, list(cues.cues)
