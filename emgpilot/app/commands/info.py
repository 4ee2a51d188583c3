"""``emgpilot info``: what a recording holds."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info",
        help="show the streams, sample counts, durations and labels of a recording",
        description="Validates a recording and lists its streams (samples, rate, duration), cue labels and metadata.",
    )
    p.add_argument("path", nargs="?", help="recording (.mcap); omit with --sample")
    p.add_argument("--sample", action="store_true", help="describe the sample recording shipped with emgpilot")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    p.add_argument("--recover", action="store_true", help="read the intact part of a damaged file")
    p.set_defaults(func=run)


def describe(path: str, recover: bool = False) -> dict:
    """The ``info --json`` object of a recording (raises RecordingError)."""
    from emgpilot.signals.recording import open_recording

    rec = open_recording(path, recover=recover)
    stats = rec.stream_stats()
    streams = {}
    for name, info in rec.streams.items():
        st = stats.get(name)
        entry = {
            "kind": info.kind,
            "samples": st.samples if st else 0,
            "rate_hz": info.rate_hz,
            "duration_s": round(st.duration_s, 6) if st else 0.0,
            "messages": st.messages if st else 0,
        }
        if info.channels:
            entry["channels"] = list(info.channels)
        if st and st.messages:
            entry["t_first"], entry["t_last"] = st.t_first, st.t_last
        streams[name] = entry
    labels: dict[str, int] = {}
    if "cue" in rec.streams:
        for ev in rec.events("cue"):
            label = getattr(ev, "label", "?")
            labels[label] = labels.get(label, 0) + 1
    meta = dict(rec.metadata)
    meta.pop("streams", None)
    return {
        "path": str(path),
        "duration_s": round(rec.duration_s, 6),
        "streams": streams,
        "labels": labels,
        "complete": rec.complete,
        "recovered": rec.recovered,
        "warnings": rec.warnings,
        "metadata": meta,
    }


def run(args: argparse.Namespace) -> int:
    from emgpilot.app.cli import CLIError
    from emgpilot.app.commands.replay import resolve_path
    from emgpilot.signals.recording import RecordingError

    path = resolve_path(args)
    try:
        d = describe(path, recover=args.recover)
    except RecordingError as e:
        raise CLIError(str(e)) from e
    if args.json:
        from emgpilot.classifiers.metrics import json_safe

        # Strict JSON: a non-finite number (a damaged file's timestamps) becomes null, not Infinity.
        print(json.dumps(json_safe(d), default=str, allow_nan=False))
        return 0
    meta = d["metadata"]
    version, created = meta.get("emgpilot_version", "?"), meta.get("created_utc", "?")
    print(f"{path}: {d['duration_s']:.3f} s, emgpilot {version}, created {created}")
    for w in d["warnings"]:
        print(f"  warning: {w}")
    for name, s in d["streams"].items():
        if s["rate_hz"]:
            print(f"  {name:28s} {s['samples']:10d} samples  {s['rate_hz']:8.2f} Hz  {s['duration_s']:10.3f} s")
        else:
            print(f"  {name:28s} {s['samples']:10d} events")
    if d["labels"]:
        print("  cue labels: " + ", ".join(f"{k} x{v}" for k, v in sorted(d["labels"].items())))
    device = meta.get("device")
    if isinstance(device, dict) and device:
        print("  device:")
        for line in _fields(device, "    "):
            print(line)
    elif device:
        print(f"  device: {_value(device)}")
    return 0


def _value(v: object) -> str:
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list | tuple):
        return ", ".join(_value(x) for x in v) or "-"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_value(x)}" for k, x in v.items()) or "-"
    return "-" if v is None or v == "" else str(v)


def _fields(d: dict, indent: str) -> list[str]:
    """``key  value`` lines, keys aligned; a nested table indented under its key."""
    width = max(len(str(k)) for k in d)
    lines = []
    for k, v in d.items():
        if isinstance(v, dict) and v:
            lines += [f"{indent}{k}:", *_fields(v, indent + "  ")]
        else:
            lines.append(f"{indent}{str(k).ljust(width)}  {_value(v)}")
    return lines
