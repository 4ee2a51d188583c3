"""``emgpilot run``: acquire from a source, run the pipeline, optionally record (and fly)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    from emgpilot.app.sources import add_live_device_args

    p = sub.add_parser("run", help="stream a source through the pipeline (headless or with the GUI)")
    p.add_argument("--headless", action="store_true", help="no window: log a summary instead")
    p.add_argument(
        "--source",
        default="synthetic",
        choices=["synthetic", "myo", "replay"],
        help="where data comes from (default: synthetic arm)",
    )
    p.add_argument("--recording", help="recording to replay with --source replay")
    add_live_device_args(p)
    p.add_argument("--duration", type=float, default=None, help="stop after this many data-seconds")
    p.add_argument("--record", metavar="PATH", help="write every stream to this recording (.mcap)")
    p.add_argument("--speed", default="1", help="1 (real time), N (N x faster) or max (synthetic/replay)")
    p.add_argument("--seed", type=int, default=0, help="synthetic arm: wearer and schedule seed")
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
    p.add_argument("--ip", default="192.168.42.1", help="Bebop 2 address (--drone bebop); 127.0.0.1 = virtual Bebop")
    p.add_argument("--discovery-port", type=int, default=None, help="Bebop discovery TCP port (default 44445)")
    p.add_argument("--mapping", metavar="TOML", help="gesture-to-command mapping (default: the shipped mapping.toml)")
    p.add_argument("--takeoff", action="store_true", help="take off once connected (an explicit user action)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from emgpilot.app.cli import CLIError
    from emgpilot.app.sources import open_source
    from emgpilot.build import build_pipeline, load_pipeline_config
    from emgpilot.classifiers.calibration import calibration_metadata
    from emgpilot.config import ConfigError, to_mapping
    from emgpilot.signals.device import parse_speed
    from emgpilot.signals.runner import SessionRunner
    from emgpilot.wearer import PROFILE_SOURCES, apply_profile, load_profile, remember_session

    if args.wearer and args.source not in PROFILE_SOURCES:
        live = " or ".join(PROFILE_SOURCES)
        raise CLIError(f"--wearer is for live sessions (--source {live}), not --source {args.source}")
    if not args.headless:
        from emgpilot.app.commands import COMMAND_MODULES

        if "gui" in COMMAND_MODULES:
            from emgpilot.app.commands.gui import run_gui_from_run_args

            return run_gui_from_run_args(args)
        log.warning("GUI not available; running headless")
    try:
        speed = parse_speed(args.speed)
        cfg = load_pipeline_config(args.config)
        profile = load_profile(args.wearer) if args.wearer else None
        if profile is not None:
            cfg = apply_profile(cfg, profile)
    except (ValueError, ConfigError) as e:
        raise CLIError(str(e)) from e
    device = open_source(args, speed=speed)
    pipeline = build_pipeline(device.streams(), cfg)
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
            )
        except RecordingError as e:
            device.stop()  # nothing was started yet; stop() releases whatever the device opened
            raise CLIError(str(e)) from e
    pilot = None
    if getattr(args, "drone", "none") != "none":
        from emgpilot.drone.pilot import pilot_from_args

        try:
            pilot = pilot_from_args(args, recorder=recorder, live=args.source == "myo")
        except (ConfigError, ConnectionError, ImportError, ValueError) as e:
            if recorder is not None:
                recorder.close()
            raise CLIError(f"--drone {args.drone}: {e}") from e
        if args.takeoff:
            pilot.takeoff("cli")
    sinks = [pilot] if pilot is not None else []
    runner = SessionRunner(device, pipeline, recorder=recorder, sinks=sinks, duration_s=args.duration)
    wall0 = time.perf_counter()
    try:
        stats = runner.run()
    except KeyboardInterrupt:
        stats = runner.stats
    finally:
        if pilot is not None:
            pilot.close()
        if recorder is not None:
            recorder.close()
    wall = time.perf_counter() - wall0
    if profile is not None:
        try:  # a failure to write is reported, not fatal: the session itself went through
            remember_session(profile, pipeline, cfg)
        except OSError as e:
            log.error("wearer profile %s not saved: %s", profile.name, e)
    summary = {
        "source": args.source,
        "duration_s": round(stats.duration_s, 3),
        "wall_s": round(wall, 3),
        "samples": stats.samples,
        "events": stats.events,
        "record": args.record,
    }
    if pilot is not None:
        summary["drone"] = pilot.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"{args.source}: {summary['duration_s']} s of data in {summary['wall_s']} s", file=sys.stdout)
        for name, n in sorted(stats.samples.items()):
            print(f"  {name:28s} {n:9d} samples")
        for name, n in sorted(stats.events.items()):
            print(f"  {name:28s} {n:9d} events")
        if args.record:
            print(f"recorded to {args.record}")
    return 0


def _pilot_streams(args: argparse.Namespace) -> list:
    """Streams the drone pilot adds to a recording (none without ``--drone``)."""
    if getattr(args, "drone", "none") == "none":
        return []
    from emgpilot.drone.pilot import PILOT_STREAMS

    return list(PILOT_STREAMS)
