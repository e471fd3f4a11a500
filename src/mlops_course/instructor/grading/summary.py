"""What class grading writes: ``grades.csv`` and ``summary.html`` (grade distribution and each
exercise's pass rate)."""

from __future__ import annotations

import csv
import html
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlops_course.instructor.grading.classgrade import GradeRow

__all__ = ["STATUSES", "summary_html", "write_grades"]

STATUSES = ("ok", "timeout", "crashed", "malformed", "tampered", "missing")


def write_grades(
    rows: list[GradeRow], out: Path, assignment: str, max_scores: dict[str, float]
) -> None:
    with open(out / "grades.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["student_id", "assignment", "notebook", "score", "max_score", "status", "message"]
        )
        for r in rows:
            writer.writerow(
                [
                    r.student_id,
                    r.assignment,
                    r.notebook,
                    f"{r.score:g}",
                    f"{r.max_score:g}",
                    r.status,
                    r.message,
                ]
            )
    (out / "summary.html").write_text(summary_html(rows, assignment, max_scores))


def summary_html(rows: list[GradeRow], assignment: str, max_scores: dict[str, float]) -> str:
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3))
    total = sum(max_scores.values()) or 1
    axis.hist(
        [r.score for r in rows], bins=min(20, int(total) + 1), range=(0, total), color="#3b7dd8"
    )
    axis.set_xlabel(f"score (out of {total:g})")
    axis.set_ylabel("students")
    axis.set_title(f"{assignment}: grade distribution")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    image = base64.b64encode(buffer.getvalue()).decode()
    graded = [r for r in rows if r.cells]
    rates = "".join(
        f"<tr><td>{html.escape(g)}</td><td>{m:g}</td>"
        f"<td>{(sum(1 for r in graded if r.cells.get(g, 0) >= m) / len(graded) * 100 if graded else 0):.0f}%</td></tr>"
        for g, m in max_scores.items()
    )
    statuses = "".join(
        f"<tr><td>{s}</td><td>{sum(1 for r in rows if r.status == s)}</td></tr>" for s in STATUSES
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(assignment)}: class summary</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .8em;border-bottom:1px solid #ddd}}</style></head>
<body><h1>{html.escape(assignment)}: class summary</h1>
<p>{len(rows)} submissions, mean score {sum(r.score for r in rows) / max(len(rows), 1):.2f} of {sum(max_scores.values()):g}.</p>
<img alt="grade distribution" src="data:image/png;base64,{image}">
<h2>Pass rate per exercise</h2><table><tr><th>test cell</th><th>points</th><th>passed</th></tr>{rates}</table>
<h2>Statuses</h2><table><tr><th>status</th><th>submissions</th></tr>{statuses}</table>
</body></html>"""
