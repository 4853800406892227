"""Aggregate per-sample metric values into a VidChatBench report: JSON and a markdown table.

Each cell is the mean over the samples where the metric was available, with a 95% interval
(normal approximation, 1.96 standard errors); dataset-level metrics (FID, FVD) have no interval.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from vidchat.utils.atomic import atomic_write_json, atomic_write_text


def summarize(values: Sequence[float]) -> dict[str, Any]:
    """mean, 95% interval half-width and count of the finite values."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return {"mean": None, "ci95": None, "n": 0}
    mean = sum(xs) / len(xs)
    if len(xs) < 2:
        return {"mean": mean, "ci95": None, "n": 1}
    var = sum((x - mean) ** 2 for x in xs) / (len(xs) - 1)
    return {"mean": mean, "ci95": 1.96 * math.sqrt(var / len(xs)), "n": len(xs)}


def aggregate(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str]) -> dict[str, Any]:
    """rows: one per sample, `{"branch": str, "metrics": {name: value|None}}` ->
    `{"overall": {metric: summary}, "by_branch": {branch: {metric: summary}}}`."""
    by_branch: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        by_branch[row["branch"]].append(row)

    def table(subset: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return {m: summarize([r["metrics"].get(m) for r in subset]) for m in metrics}

    return {
        "overall": table(rows),
        "by_branch": {b: table(rs) for b, rs in sorted(by_branch.items())},
    }


def _cell(summary: Mapping[str, Any] | None) -> str:
    if not summary or summary.get("mean") is None:
        return "–"
    text = f"{summary['mean']:.3g}"
    return text + (f" ± {summary['ci95']:.2g}" if summary.get("ci95") is not None else "")


def markdown_table(report: Mapping[str, Any], metrics: Sequence[str]) -> str:
    """One row per system (and per system × branch), one column per metric."""
    header = "| system | branch | n | " + " | ".join(metrics) + " |"
    lines = [header, "|" + "---|" * (len(metrics) + 3)]
    for system, result in report["systems"].items():
        groups = [("all", result["overall"])] + list(result["by_branch"].items())
        for branch, table in groups:
            n = max((table.get(m, {}).get("n", 0) for m in metrics), default=0)
            cells = [_cell(table.get(m)) for m in metrics]
            lines.append(f"| {system} | {branch} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_report(
    report: Mapping[str, Any], metrics: Sequence[str], out_dir: Path
) -> tuple[Path, Path]:
    """`report.json` and `report.md` in `out_dir`, each written atomically."""
    paths = (out_dir / "report.json", out_dir / "report.md")
    atomic_write_json(paths[0], report, indent=2, default=str)
    atomic_write_text(paths[1], markdown_table(report, metrics))
    return paths
