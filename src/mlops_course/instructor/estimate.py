"""How long a notebook takes a student: one rule, written into each title cell.

The estimate is computed from the student's release of the notebook and one measured figure:

- **reading**: the markdown's words at ``WORDS_PER_MINUTE`` (technical prose read closely);
- **code**: the non-blank lines of the code cells a student reads and runs, at
  ``CODE_LINES_PER_MINUTE``; left out are test cells (run, not studied), answer cells (counted
  as exercises) and read-only cells tagged ``shared`` (the data and calls the hidden tests
  share with the visible ones);
- **exercises**: ``MINUTES_PER_POINT`` for each point of a written answer, and
  ``MINUTES_PER_CHOICE`` for each point of a multiple-choice answer (a letter);
- **running**: the notebook's measured run time (``make bench``), kept in the source
  notebook's metadata under ``mlops_course.run_seconds``.

The sum is rounded up to a multiple of five minutes. ``mlops-course estimate --write``
rewrites the ``**Estimated time:**`` line of each title cell from the rule, and a test checks
that every title cell says what the rule gives and that no notebook exceeds ``LIMIT_MINUTES``.
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from mlops_course import paths
from mlops_course.instructor.grading import release

__all__ = [
    "LIMIT_MINUTES",
    "Estimate",
    "estimate",
    "estimate_line",
    "record_run_seconds",
    "run_seconds",
    "title_line",
    "write_title",
]

WORDS_PER_MINUTE = 180
CODE_LINES_PER_MINUTE = 20
MINUTES_PER_POINT = 3
MINUTES_PER_CHOICE = 1
LIMIT_MINUTES = 45
METADATA_KEY = "mlops_course"
ESTIMATE_LINE = re.compile(r"^\*\*Estimated time:\*\*.*$", re.M)


@dataclass(frozen=True)
class Estimate:
    """The parts of a notebook's estimate, in minutes (``total`` rounded up to five)."""

    notebook: str
    reading: float
    code: float
    exercises: float
    running: float

    @property
    def total(self) -> int:
        raw = self.reading + self.code + self.exercises + self.running
        return max(5, 5 * math.ceil(raw / 5))


def _is_choice(solution_source: str) -> bool:
    """A multiple-choice answer: the solution is one assignment of a string (a letter)."""
    try:
        body = ast.parse(release.solution_code(solution_source)).body
    except SyntaxError:
        return False
    return (
        len(body) == 1
        and isinstance(body[0], ast.Assign)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    )


def _points(solution: nbformat.NotebookNode) -> tuple[float, float]:
    """(written points, choice points): each test cell's points, by the answer cell before it."""
    written = choice = 0.0
    last_answer = ""
    for cell in solution.cells:
        grading = cell.metadata.get("nbgrader", {})
        if grading.get("solution"):
            last_answer = cell.source
        if grading.get("grade"):
            points = float(grading.get("points", 0))
            if _is_choice(last_answer):
                choice += points
            else:
                written += points
    return written, choice


def _read_by_student(cell: nbformat.NotebookNode) -> bool:
    """A code cell a student reads line by line: not shared check code, a test or an answer."""
    grading = cell.metadata.get("nbgrader", {})
    shared = "shared" in cell.metadata.get("tags", [])
    return not (shared or grading.get("grade") or grading.get("solution"))


def run_seconds(solution: nbformat.NotebookNode) -> float:
    """The measured run time recorded in the source notebook (0 when never measured)."""
    return float(solution.metadata.get(METADATA_KEY, {}).get("run_seconds", 0.0))


def estimate(solution_path: Path, release_path: Path | None = None) -> Estimate:
    """The estimate of one notebook, from its source and its student release."""
    solution = nbformat.read(solution_path, as_version=4)
    release_path = release_path or paths.release_dir() / solution_path.stem / solution_path.name
    student = nbformat.read(release_path, as_version=4)
    # The estimate's own line is left out, so writing it does not change the estimate.
    words = sum(
        len(ESTIMATE_LINE.sub("", c.source).split())
        for c in student.cells
        if c.cell_type == "markdown"
    )
    lines = sum(
        sum(1 for line in c.source.splitlines() if line.strip())
        for c in student.cells
        if c.cell_type == "code" and _read_by_student(c)
    )
    written, choice = _points(solution)
    return Estimate(
        notebook=solution_path.stem,
        reading=words / WORDS_PER_MINUTE,
        code=lines / CODE_LINES_PER_MINUTE,
        exercises=written * MINUTES_PER_POINT + choice * MINUTES_PER_CHOICE,
        running=run_seconds(solution) / 60,
    )


def estimate_line(result: Estimate) -> str:
    """The title cell's line for an estimate, with its parts."""
    return (
        f"**Estimated time:** {result.total} minutes (reading {round(result.reading)}, "
        f"code {round(result.code)}, exercises {round(result.exercises)}, running "
        f"{math.ceil(result.running)}; how this is estimated: the course's README)."
    )


def title_line(solution_path: Path) -> str | None:
    """The ``**Estimated time:**`` line of a source notebook's title cell, if it has one."""
    first = nbformat.read(solution_path, as_version=4).cells[0].source
    match = ESTIMATE_LINE.search(first)
    return match.group(0) if match else None


def write_title(solution_path: Path, result: Estimate) -> bool:
    """Put the rule's line into the title cell (replacing the old one); True when it changed."""
    notebook = nbformat.read(solution_path, as_version=4)
    title = notebook.cells[0]
    line = estimate_line(result)
    if ESTIMATE_LINE.search(title.source):
        new = ESTIMATE_LINE.sub(line.replace("\\", "\\\\"), title.source, count=1)
    else:
        new = f"{title.source.rstrip()}\n\n{line}"
    if new == title.source:
        return False
    title.source = new
    nbformat.write(notebook, solution_path)
    return True


def record_run_seconds(bench_file: Path) -> dict[str, float]:
    """Copy each notebook's measured seconds from ``make bench``'s JSON into its metadata."""
    bench = json.loads(bench_file.read_text())
    measured = {name: float(row["seconds"]) for name, row in bench["notebooks"].items()}
    for solution_path in paths.solution_notebooks():
        seconds = measured.get(solution_path.stem)
        if seconds is None:
            continue
        notebook = nbformat.read(solution_path, as_version=4)
        notebook.metadata.setdefault(METADATA_KEY, {})["run_seconds"] = round(seconds)
        nbformat.write(notebook, solution_path)
    return measured
