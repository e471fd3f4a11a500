"""What a release holds, and submissions built from it.

The three-way grading tests fill the release's answer cells with the solution (or with a
wrong answer of a fixture), compare a generated release with the committed one, and look for
hidden-test text that leaked into it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import nbformat

__all__ = ["fill_release", "hidden_test_texts", "normalized", "solution_code"]

SOLUTION_MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.M)
HIDDEN_BLOCK = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", re.S)
VOLATILE_METADATA = ("papermill", "execution", "collapsed", "scrolled", "ExecuteTime")


def solution_code(source: str) -> str:
    """The code of a solution cell as a student who solved it would have it (markers removed)."""
    return SOLUTION_MARKERS.sub("", source)


def fill_release(
    release: Path, solution: Path, replacements: Mapping[str, str] | None = None
) -> nbformat.NotebookNode:
    """The release notebook with every answer cell filled from the solution.

    ``replacements`` maps an answer cell's grade id to other code (a wrong answer).
    """
    replacements = dict(replacements or {})
    answers = {
        cell.metadata["nbgrader"]["grade_id"]: solution_code(cell.source)
        for cell in nbformat.read(solution, as_version=4).cells
        if cell.metadata.get("nbgrader", {}).get("solution")
    }
    unknown = set(replacements) - set(answers)
    if unknown:
        raise ValueError(
            f"Expected a fixture to replace answer cells among {sorted(answers)}, "
            f"found unknown ones {sorted(unknown)}."
        )
    notebook = nbformat.read(release, as_version=4)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in answers:
            cell.source = replacements.get(grade_id, answers[grade_id])
    return notebook


def normalized(notebook: nbformat.NotebookNode) -> list[dict]:
    """Cells as comparable dicts: type, source and metadata without run-time noise."""
    cells = []
    for cell in notebook.cells:
        metadata = {k: v for k, v in cell.metadata.items() if k not in VOLATILE_METADATA}
        cells.append({"type": cell.cell_type, "source": cell.source, "metadata": metadata})
    return cells


def hidden_test_texts(solution: Path) -> list[str]:
    """Lines that only occur inside hidden-test blocks of a solution notebook.

    A line that also occurs anywhere in the notebook's visible text (visible code, markdown,
    a message; ``checks.check(``, say, or a short line of a formatted list) is left out, so a
    hit in the release or in feedback is a real leak.
    """
    hidden: list[str] = []
    visible: list[str] = []
    for cell in nbformat.read(solution, as_version=4).cells:
        for block in HIDDEN_BLOCK.findall(cell.source):
            hidden.extend(line.strip() for line in block.splitlines()[1:-1])
        visible.append(HIDDEN_BLOCK.sub("", cell.source))
    visible_text = "\n".join(visible)
    return [line for line in dict.fromkeys(hidden) if len(line) > 12 and line not in visible_text]
