"""``emgpilot run``: acquire from a source, run the pipeline, optionally record (and fly)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emgpilot.app.commands.record import OldRecording

log = logging.getLogger(__name__)


SOURCE_ALIASES = {"recording": "replay"}
"""Other names of a source (the GUI says ``recording`` for what ``run`` calls ``replay``)."""

DEFAULT_BEBOP_IP = "192.168.42.1"
"""A Bebop 2's own address on the Wi-Fi it opens."""


def register(sub: argparse._SubParsersAction) -> None:
    from emgpilot.app.commands.argtypes import non_negative_int, positive_float
    from emgpilot.app.commands.record import OVERWRITE_HELP
    from emgpilot.app.sources import add_live_device_args

    p = sub.add_parser("run", help="stream a source through the pipeline (headless or with the GUI)")
    p.add_argument("--headless", action="store_true", help="no window: log a summary instead")
    p.add_argument(
        "--source",
        default=None,
        choices=["synthetic", "myo", "replay", "recording"],
        help="where data comes from (default: synthetic arm, or replay with --recording; "
        "'recording' is another name for 'replay')",
    )
    p.add_argument("--recording", help="recording to replay (selects --source replay)")
    add_live_device_args(p)
    p.add_argument(
        "--connect-timeout",
        type=positive_float,
        default=30.0,
        help="--source myo: give up if no data arrives within this many seconds (30)",
    )
    p.add_argument("--duration", type=positive_float, default=None, help="stop after this many data-seconds")
    p.add_argument("--record", metavar="PATH", help="write every stream to this recording (.mcap)")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace the --record file if it exists (default: refuse). {OVERWRITE_HELP}",
    )
    p.add_argument("--speed", default="1", help="1 (real time), N (N x faster) or max (synthetic/replay)")
    p.add_argument(
        "--seed", type=non_negative_int, default=None, help="synthetic arm: wearer and schedule seed (default 0)"
    )
    p.add_argument("--config", help="pipeline configuration TOML")
    p.add_argument(
        "--wearer",
        metavar="NAME",
        help="wearer profile (--source myo): start from the armband rotation this wearer's last session learnt, "
        "and keep what this session learns (see emgpilot.wearer)",
    )
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    p.add_argument(
        "--drone",
        choices=["none", "sim", "bebop"],
        default="none",
        help="fly a drone with the recognised gestures: none (headless default), sim (simulator), bebop (Olympe)",
    )
    p.add_argument(
        "--ip",
        default=None,
        help=f"Bebop 2 address (--drone bebop; default {DEFAULT_BEBOP_IP}); 127.0.0.1 = virtual Bebop",
    )
    p.add_argument(
        "--discovery-port", type=non_negative_int, default=None, help="Bebop discovery TCP port (default 44445)"
    )
    p.add_argument(
        "--legacy-discovery",
        action="store_true",
        help="--drone bebop: skip the JSON discovery and connect straight to the handshake port, as older "
        "Bebop 2 firmware may need (not yet verified on a real drone)",
    )
    p.add_argument(
        "--handshake-port",
        type=non_negative_int,
        default=None,
        help="with --legacy-discovery: the drone's ARSDK handshake TCP port (default 44444)",
    )
    p.add_argument(
        "--mapping", metavar="TOML", help="gesture-to-command mapping, with --drone (default: the shipped mapping.toml)"
    )
    p.add_argument(
        "--takeoff", action="store_true", help="take off once connected (an explicit user action; needs --drone)"
    )
    # the defaults of the options the window does not take, read from the parser (not copied)
    p.set_defaults(func=run, window_ignores={name: p.get_default(name) for name in WINDOW_IGNORES})


def run(args: argparse.Namespace) -> int:
    from emgpilot.app.cli import CLIError
    from emgpilot.app.commands.record import OldRecording, check_output
    from emgpilot.app.sources import open_source
    from emgpilot.build import build_pipeline, load_pipeline_config
    from emgpilot.config import ConfigError
    from emgpilot.signals.device import parse_speed
    from emgpilot.wearer import PROFILE_SOURCES, apply_profile, load_profile

    _check_options(args)  # also settles the defaults that had to stay None to tell "not given"
    if args.wearer and args.source not in PROFILE_SOURCES:
        live = " or ".join(PROFILE_SOURCES)
        raise CLIError(f"--wearer is for live sessions (--source {live}), not --source {args.source}")
    if args.record:
        check_output(args.record, args.overwrite)
    if not args.headless:
        from emgpilot.app.commands import COMMAND_MODULES

        if "gui" in COMMAND_MODULES:
            from emgpilot.app.commands.gui import run_gui_from_run_args

            unused = _window_ignores(args)
            if unused:
                raise CLIError(f"{', '.join(unused)}: not used by the window; add --headless")
            # --overwrite in the window as headless: the old file comes back unless the new one has data
            with OldRecording(args.record, args.overwrite) as old:
                code = run_gui_from_run_args(args)
                if args.record and _has_samples(args.record):
                    old.keep_new()
            return code
        log.warning("GUI not available; running headless")
    if args.takeoff and args.drone == "none":
        raise CLIError("--takeoff needs a drone to take off: add --drone sim (simulator) or --drone bebop")
    if args.mapping and args.drone == "none":
        raise CLIError("--mapping maps gestures to drone commands: it needs --drone sim or --drone bebop")
    try:
        speed = parse_speed(args.speed)
        cfg = load_pipeline_config(args.config)
        profile = load_profile(args.wearer) if args.wearer else None
        if profile is not None:
            cfg = apply_profile(cfg, profile)
    except (ValueError, ConfigError) as e:
        raise CLIError(str(e)) from e
    device = open_source(args, speed=speed)
    try:
        pipeline = build_pipeline(device.streams(), cfg)
    except ValueError as e:  # e.g. a recording of a 10-electrode armband
        device.stop()
        raise CLIError(f"{args.recording or args.source}: {e}") from e
    try:
        old = OldRecording(args.record, args.overwrite)
    except CLIError:
        device.stop()
        raise
    with old:
        return _headless(args, device, pipeline, cfg, profile, old)


def _has_samples(path: str) -> bool:
    """Whether the recording at ``path`` holds any sensor samples (a damaged one: its readable part)."""
    from emgpilot.signals.recording import RecordingError, open_recording

    try:
        rec = open_recording(path, recover=True)
        stats = rec.stream_stats()
    except (RecordingError, OSError):
        return False
    return any(st.samples for name, st in stats.items() if name in rec.streams and not rec.streams[name].is_event)


WINDOW_IGNORES = (
    "upper_arm_protocol",
    "upper_arm_channels",
    "upper_arm_rate",
    "upper_arm_bits",
    "upper_arm_baud",
    "upper_arm_sequence",
    "myo_address",
    "connect_timeout",
    "json",
    "discovery_port",
    "legacy_discovery",
    "handshake_port",
)
"""Options of ``run`` that the window does not take: given with a value other than their default,
run without ``--headless`` refuses them instead of dropping them."""


def _window_ignores(args: argparse.Namespace) -> list[str]:
    """The options in :data:`WINDOW_IGNORES` given a value other than their default."""
    return [f"--{n.replace('_', '-')}" for n, default in args.window_ignores.items() if getattr(args, n) != default]


def _check_options(args: argparse.Namespace) -> None:
    """Refuse options that the chosen source or drone would silently ignore; fill in their defaults.

    Only options the user gave are checked (their defaults are None until here). ``--recording``
    without ``--source`` means a replay of it, so it selects ``--source replay``.
    """
    from emgpilot.app.cli import CLIError

    if args.source is None:
        args.source = "replay" if args.recording else "synthetic"
    args.source = SOURCE_ALIASES.get(args.source, args.source)
    if args.recording and args.source != "replay":
        raise CLIError(f"--recording is replayed with --source replay, not --source {args.source}: drop one of them")
    for option, value in (("--port", args.port), ("--upper-arm-port", args.upper_arm_port)):
        if value is not None and args.source != "myo":
            raise CLIError(f"{option} is for the live devices (--source myo), not --source {args.source}")
    if args.seed is not None and args.source != "synthetic":
        raise CLIError(f"--seed is for the synthetic arm (--source synthetic), not --source {args.source}")
    args.seed = 0 if args.seed is None else args.seed
    if args.drone != "bebop":
        for option, given in (
            ("--ip", args.ip is not None),
            ("--discovery-port", args.discovery_port is not None),
            ("--legacy-discovery", args.legacy_discovery),
            ("--handshake-port", args.handshake_port is not None),
        ):
            if given:
                raise CLIError(f"{option} is for --drone bebop, not --drone {args.drone}")
    if args.handshake_port is not None and not args.legacy_discovery:
        raise CLIError("--handshake-port is only used with --legacy-discovery")
    args.ip = DEFAULT_BEBOP_IP if args.ip is None else args.ip


def _headless(args: argparse.Namespace, device: Any, pipeline: Any, cfg: Any, profile: Any, old: OldRecording) -> int:
    """The headless session once the source is open: record, fly, print the summary."""
    from emgpilot.app.cli import CLIError
    from emgpilot.app.commands.record import discard_empty, missing_streams, print_problems
    from emgpilot.classifiers.calibration import calibration_metadata
    from emgpilot.config import ConfigError, to_mapping
    from emgpilot.signals.runner import NoDataError, SessionRunner, StatusLog
    from emgpilot.wearer import remember_session

    recorder = None
    if args.record:
        from emgpilot.signals.recording import RecordingError, RecordingWriter

        try:
            recorder = RecordingWriter(
                args.record,
                streams=[*device.streams(), *pipeline.output_streams, *_pilot_streams(args)],
                metadata={
                    "device": device.info(),
                    "pipeline_config": to_mapping(cfg),
                    "command": "run",
                    **calibration_metadata(cfg),
                },
                overwrite=args.overwrite,
            )
        except RecordingError as e:
            device.stop()  # nothing was started yet; stop() releases whatever the device opened
            raise CLIError(f"{e}{old.restore()}") from e
    pilot = None
    if getattr(args, "drone", "none") != "none":
        from emgpilot.drone.pilot import pilot_from_args

        try:
            pilot = pilot_from_args(args, recorder=recorder, live=args.source == "myo")
        except (ConfigError, ConnectionError, ImportError, ValueError) as e:
            if recorder is not None:
                recorder.close()
                discard_empty(args.record, None)
            device.stop()
            raise CLIError(f"--drone {args.drone}: {e}{old.restore()}") from e
        if args.takeoff:
            # before any data: the pilot stamps the take-off with the first data time
            pilot.takeoff("cli")
    sinks = [StatusLog(log), *([pilot] if pilot is not None else [])]
    runner = SessionRunner(device, pipeline, recorder=recorder, sinks=sinks, duration_s=args.duration)
    # only a live device can stay silent for ever; synthetic and replayed data always flow
    connect_timeout = args.connect_timeout if args.source == "myo" else None
    wall0 = time.perf_counter()
    no_data: NoDataError | None = None
    try:
        stats = runner.run(connect_timeout_s=connect_timeout)
    except KeyboardInterrupt:
        stats = runner.stats
    except NoDataError as e:
        stats, no_data = runner.stats, e
    finally:
        if pilot is not None:
            pilot.close()
        if recorder is not None:
            recorder.close()
    wall = time.perf_counter() - wall0
    kept = bool(args.record) and not discard_empty(args.record, stats)
    restored = old.keep_new() if kept else old.restore()
    if no_data is not None:
        note = f"; nothing recorded, {args.record} not written{restored}" if args.record else ""
        raise CLIError(f"{no_data}{note}")
    wearer = None
    if profile is not None:
        wearer = _remember(profile, pipeline, cfg, remember_session)
    summary = {
        "source": args.source,
        "duration_s": round(stats.duration_s, 3),
        "wall_s": round(wall, 3),
        "samples": stats.samples,
        "events": stats.events,
        "record": args.record if kept else None,
        "device_problems": {dev: {"status": st, "detail": d} for dev, (st, d) in stats.problems().items()},
    }
    missing = missing_streams(device, stats) if args.source == "myo" else []
    if missing:
        summary["missing_streams"] = missing
    if pilot is not None:
        summary["drone"] = pilot.summary()
    if wearer is not None:
        summary["wearer"] = wearer
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{args.source}: {summary['duration_s']} s of data in {summary['wall_s']} s", file=sys.stdout)
        for name, n in sorted(stats.samples.items()):
            print(f"  {name:28s} {n:9d} samples")
        for name, n in sorted(stats.events.items()):
            print(f"  {name:28s} {n:9d} events")
        if pilot is not None:
            print(_drone_line(summary["drone"]))
        if wearer is not None:
            print(wearer["message"])
        if kept:
            print(f"recorded to {args.record}")
        elif args.record:
            print(f"nothing recorded; {args.record} not written{restored}")
    print_problems(stats, missing)
    return 0


def _remember(profile: Any, pipeline: Any, cfg: Any, remember_session: Callable[..., Any]) -> dict[str, Any]:
    """Save what the session taught the wearer's profile; a summary entry saying what happened."""
    from emgpilot.wearer import MIN_ROTATION_WINDOWS

    windows = next(
        (
            int(getattr(st, "rotation_windows", 0) or 0)
            for st in getattr(pipeline, "stages", ())
            if getattr(st, "name", "") == "detector.activation"
        ),
        0,
    )
    entry: dict[str, Any] = {
        "name": profile.name,
        "updated": False,
        "rotation": profile.wrist_rotation,
        "windows": windows,
    }
    try:
        new = remember_session(profile, pipeline, cfg)
    except OSError as e:  # a failure to write is reported, not fatal: the session itself went through
        log.error("wearer profile %s not saved: %s", profile.name, e)
        entry["message"] = f"wearer {profile.name}: profile not saved ({e})"
        return entry
    if new.sessions > profile.sessions:
        entry.update(updated=True, rotation=new.wrist_rotation)
        entry["message"] = f"wearer {profile.name}: profile updated with armband rotation {new.wrist_rotation}"
    else:
        entry["message"] = (
            f"wearer {profile.name}: armband rotation not updated: only {windows} of the "
            f"{MIN_ROTATION_WINDOWS} taught windows needed (~20 s of gestures)"
        )
    return entry


def _drone_line(drone: dict) -> str:
    """``drone sim: 14 commands sent (take-off, landing, 12 moves/hovers), 3/6 hoops, ...`` for the text summary."""
    counts = drone.get("counts", {})
    state = drone.get("final_state", {})
    parts = [_commands_sent(counts)]
    refused = sum(n for k, n in counts.items() if k.startswith("safety_refuse"))
    if refused:
        parts.append(f"{refused} refused by safety")
    course = drone.get("course")
    if course:
        parts.append(f"{course['hoops_passed']}/{course['hoops_total']} hoops")
    parts.append(f"final state {state.get('flying_state', '?')}")
    if "battery" in state:
        parts.append(f"battery {state['battery']:.0f} %")
    return f"drone {drone.get('backend', '?')}: " + ", ".join(parts)


def _commands_sent(counts: dict[str, int]) -> str:
    """``3 commands sent (take-off, landing, 1 move/hover)``: every command that went to the drone.

    The pilot counts the user's take-off, landing and emergency as safety decisions, apart from
    ``commands_sent`` (the moves and hovers gestures and safety sent): they are added here.
    """
    user_actions = [
        (counts.get("safety_takeoff", 0), "take-off", "take-offs"),
        (counts.get("safety_land", 0), "landing", "landings"),
        (counts.get("safety_emergency", 0), "emergency stop", "emergency stops"),
    ]
    moves = counts.get("commands_sent", 0)
    total = moves + sum(n for n, _, _ in user_actions)
    if not total:
        return "0 commands sent"
    detail = [one if n == 1 else f"{n} {many}" for n, one, many in user_actions if n]
    if moves:
        detail.append(f"{moves} move{'/hover' if moves == 1 else 's/hovers'}")
    return f"{total} command{'s' if total != 1 else ''} sent ({', '.join(detail)})"


def _pilot_streams(args: argparse.Namespace) -> list:
    """Streams the drone pilot adds to a recording (none without ``--drone``)."""
    if getattr(args, "drone", "none") == "none":
        return []
    from emgpilot.drone.pilot import PILOT_STREAMS

    return list(PILOT_STREAMS)
