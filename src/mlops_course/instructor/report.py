"""The report of a headless course run: ``build/course/report.md`` and ``report.json``, and the
benchmark ``build/bench.json`` (``make bench``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlops_course.instructor.execute import NotebookResult

__all__ = ["previous_seconds", "write_bench", "write_report"]


def previous_seconds(build_dir: Path) -> dict[str, float]:
    """Seconds per notebook from the last report in ``build_dir`` (empty when there is none)."""
    try:
        report = json.loads((build_dir / "report.json").read_text())
        return {entry["notebook"]: float(entry["seconds"]) for entry in report["notebooks"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def write_report(results: Sequence[NotebookResult], build_dir: Path, wall_seconds: float) -> Path:
    """Write ``report.json`` and ``report.md`` under ``build_dir``; return the markdown path."""
    payload = {
        "wall_seconds": round(wall_seconds, 2),
        "python": sys.version.split()[0],
        "notebooks": [asdict(r) for r in results],
    }
    (build_dir / "report.json").write_text(json.dumps(payload, indent=2))
    lines = [
        "# Course execution report",
        "",
        f"Wall time: {wall_seconds:.1f} s for {len(results)} notebooks.",
        "",
        "Overhead: kernel start and the cells up to the set-up cell (imports); shutdown: kernel exit.",
        "",
        "| notebook | status | seconds | overhead s | shutdown s | failing cell | error |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        cell = "" if r.failing_cell is None else str(r.failing_cell)
        error = (r.error or "").replace("|", "\\|").replace("\n", " ")[:200]
        lines.append(
            f"| {r.notebook} | {r.status} | {r.seconds:.1f} | {r.overhead_seconds:.1f} | {r.shutdown_seconds:.1f} | {cell} | {error} |"
        )
    report = build_dir / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def write_bench(results: Sequence[NotebookResult], target: Path, wall_seconds: float) -> Path:
    """Per-notebook seconds, overhead and shutdown as JSON (``make bench``)."""
    bench = {
        "wall_seconds": round(wall_seconds, 2),
        "notebooks": {
            r.notebook: {
                "seconds": r.seconds,
                "overhead_seconds": r.overhead_seconds,
                "shutdown_seconds": r.shutdown_seconds,
            }
            for r in results
        },
        "max_overhead_seconds": max((r.overhead_seconds for r in results), default=0.0),
    }
    target.write_text(json.dumps(bench, indent=2))
    return target
