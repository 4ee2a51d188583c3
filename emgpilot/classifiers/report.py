"""Human-readable evaluation report: Markdown tables (README-ready) and PNG plots.

Plots use matplotlib's Agg backend (no display needed): the pooled window confusion matrix,
per-gesture event accuracy bars, and one timeline per session (forearm envelope, cue windows,
detected gestures: green = answered its cue correctly, red = anything else).
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

from emgpilot.classifiers.evaluation import SessionResult

log = logging.getLogger(__name__)


def _pct(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{100 * x:.1f} %"


def _num(x: Any, fmt: str = "{:.2f}") -> str:
    return "n/a" if x is None or (isinstance(x, float) and not math.isfinite(x)) else fmt.format(x)


def _row(name: str, d: dict[str, Any]) -> str:
    ev = d["events"]
    w = d["window"]
    lat = d["latency_ms"]
    return (
        f"| {name} | {_num(d['duration_s'] / 60, '{:.1f}')} | {ev['cued']} | {_pct(d['event_accuracy'])} "
        f"| {ev['wrong']} | {ev['missed']} | {_num(d['false_events_per_min'])} | {_num(lat['median'], '{:.0f}')} "
        f"| {_num(lat['p90'], '{:.0f}')} | {_pct(d['other_motion_event_rate'])} | {_pct(w['CA'])} | {_pct(w['AER'])} "
        f"| {_pct(w['INS'])} | {_pct(w['REJ'])} | {_pct(d.get('window_CA_on_baseline_test'))} "
        f"| {_pct(d['baseline_window_CA'])} | {_num(d['realtime_factor'], '{:.0f}')} |"
    )


HEADER = (
    "| set | min | cued | event acc. | wrong | missed | false/min rest | latency med. ms | latency p90 ms "
    "| other-motion event rate | window CA | AER | INS | REJ | CA on baseline test windows | baseline CA (Hudgins+LDA) "
    "| x real time |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


def _source_name(source: str) -> str:
    return source.split("/")[-1].removesuffix(".npz").removesuffix(".mcap")


def summary_table(summary: dict[str, Any], per_file: bool = True, per_session: bool = False) -> str:
    """Markdown table: one row per dataset, the pooled row, then one row per input file (its
    sessions pooled) and, optionally, one per session."""
    lines = [HEADER]
    for name, d in summary.get("per_dataset", {}).items():
        lines.append(_row(f"{name} (pooled)", d))
    lines.append(_row("**all**", summary))
    if per_file:
        for source, d in summary.get("per_source", {}).items():
            lines.append(_row(f"{d.get('dataset', '')} / {_source_name(source)}", d))
    if per_session:
        for d in summary["per_file"]:
            if "error" not in d:
                lines.append(_row(d["name"], d))
    return "\n".join(lines)


def per_gesture_table(summary: dict[str, Any]) -> str:
    lines = ["| cued | count | correct | wrong | missed | accuracy |", "|---|---|---|---|---|---|"]
    for g, d in summary["per_gesture"].items():
        acc = d["correct"] / d["cued"] if d["cued"] else math.nan
        lines.append(f"| {g} | {d['cued']} | {d['correct']} | {d['wrong']} | {d['missed']} | {_pct(acc)} |")
    return "\n".join(lines)


def confusion_table(confusion: dict[str, Any]) -> str:
    labels = confusion["labels"]
    if not labels:
        return "(no labelled decision windows)"
    lines = ["| true \\ predicted | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for name, row in zip(labels, confusion["matrix"], strict=True):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def markdown(summary: dict[str, Any], command: str = "", images: dict[str, str] | None = None) -> str:
    """The whole report as Markdown."""
    parts = ["# emgpilot evaluation", ""]
    if command:
        parts += ["Produced by:", "", "```", command, "```", ""]
    parts += ["## Results", "", summary_table(summary), ""]
    parts += ["## Per session", "", summary_table(summary, per_file=False, per_session=True), ""]
    parts += ["## Events per cued gesture (pooled)", "", per_gesture_table(summary), ""]
    parts += ["## Window confusion matrix (pooled, rows = truth)", "", confusion_table(summary["confusion"]), ""]
    if summary.get("failed"):
        parts += ["## Inputs that could not be evaluated", ""]
        parts += [f"- {d['error']}" for d in summary["failed"]] + [""]
    for title, path in (images or {}).items():
        parts += [f"### {title}", "", f"![{title}]({path})", ""]
    return "\n".join(parts)


# --------------------------------------------------------------------------- plots
def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def plot_confusion(confusion: dict[str, Any], path: Path) -> None:
    from matplotlib.figure import Figure

    labels = confusion["labels"]
    m = np.asarray(confusion["matrix"], dtype=float)
    fig = Figure(figsize=(1.2 + 0.8 * max(2, len(labels)), 1.0 + 0.7 * max(2, len(labels))))
    ax = fig.add_subplot()
    if len(labels):
        rows = m.sum(axis=1, keepdims=True)
        share = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
        ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
        for r in range(len(labels)):
            for c in range(len(labels)):
                ax.text(c, r, f"{int(m[r, c])}", ha="center", va="center", fontsize=7)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("window confusion (colour = row share)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_per_gesture(summary: dict[str, Any], path: Path) -> None:
    from matplotlib.figure import Figure

    names = list(summary["per_gesture"])
    acc = [d["correct"] / d["cued"] if d["cued"] else 0.0 for d in summary["per_gesture"].values()]
    fig = Figure(figsize=(1.5 + 0.9 * max(2, len(names)), 3.2))
    ax = fig.add_subplot()
    ax.bar(range(len(names)), acc, color="tab:blue")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("event accuracy")
    ax.axhline(0.976, color="grey", linestyle="--", linewidth=1, label="Conduct-A-Bot 97.6 %")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def plot_timeline(result: SessionResult, path: Path, max_minutes: float = 10.0) -> None:
    """Envelope (channel mean), cue windows as shaded spans, gesture events as markers."""
    from matplotlib.figure import Figure

    tl = result.timeline
    fig = Figure(figsize=(12, 3))
    ax = fig.add_subplot()
    if tl is not None:
        t0 = float(tl.t_env[0]) if len(tl.t_env) else (tl.cues[0][0] if tl.cues else 0.0)
        t_stop = t0 + 60.0 * max_minutes
        keep = tl.t_env < t_stop
        ax.plot(tl.t_env[keep] - t0, tl.envelope[keep], color="black", linewidth=0.6, label="envelope")
        top = float(np.max(tl.envelope[keep])) if keep.any() else 1.0
        colours: dict[str, Any] = {}
        cmap = __import__("matplotlib").colormaps["tab10"]
        for onset, offset, label in tl.cues:
            if onset >= t_stop:
                break
            colour = colours.setdefault(label, cmap(len(colours) % 10))
            ax.axvspan(onset - t0, min(offset, t_stop) - t0, color=colour, alpha=0.25, linewidth=0)
            ax.text(onset - t0, top * 1.02, label, fontsize=6, rotation=90, va="bottom")
        for t, name, good in tl.events:
            if t < t_stop:
                ax.plot([t - t0], [top * 1.2], marker="v", color="tab:green" if good else "tab:red", markersize=5)
                ax.text(t - t0, top * 1.25, name, fontsize=5, rotation=90, va="bottom")
        ax.set_ylim(0, top * 1.5 if top > 0 else 1)
    ax.set_xlabel("data time (s)")
    ax.set_ylabel("forearm envelope")
    ax.set_title(f"{result.name}: cues (shaded), detections (green = correct, red = other)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def write_report(summary: dict[str, Any], results: list[SessionResult], out_dir: Path, command: str = "") -> Path:
    """Write ``report.md``, ``table.md`` (README-ready) and PNG plots into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    images = {}
    plot_confusion(summary["confusion"], out_dir / "confusion.png")
    images["Window confusion matrix"] = "confusion.png"
    plot_per_gesture(summary, out_dir / "per_gesture.png")
    images["Event accuracy per gesture"] = "per_gesture.png"
    plotted: set[str] = set()
    for r in results:
        # One timeline per input file (its first session) keeps the report quick to write and read.
        if r.ok and r.timeline is not None and r.source not in plotted:
            plotted.add(r.source)
            name = f"timeline_{_safe(r.name)}.png"
            plot_timeline(r, out_dir / name)
            images[f"Timeline {r.name}"] = name
    report = out_dir / "report.md"
    report.write_text(markdown(summary, command, images), encoding="utf-8")
    table = "\n".join(
        [
            *(["```", command, "```", ""] if command else []),
            summary_table(summary),
            "",
            per_gesture_table(summary),
            "",
        ]
    )
    (out_dir / "table.md").write_text(table, encoding="utf-8")
    log.info("report written to %s", report)
    return report
