"""Wrong-answer fixtures: ``grading/fixtures/<assignment>/<name>.json``.

A fixture names the answer cells it replaces (by grade id) with the code a careless student
could plausibly write, and the test cells that code must lose. One file may bundle wrong
answers to several independent cells. A fixture that loses nothing is a correct alternative:
another right answer the hidden tests must accept. See CONTRIBUTING.md.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from mlops_course import paths

__all__ = ["Fixture", "catalogue", "fixtures", "graded_cells"]


@dataclass(frozen=True)
class Fixture:
    """A plausible wrong answer: which answer cells it replaces and which tests it must lose."""

    assignment: str
    name: str
    description: str
    replace: dict[str, str]
    loses: list[str]

    @property
    def is_alternative(self) -> bool:
        """A different correct answer: it must keep every point."""
        return not self.loses

    def catches(self, test_id: str) -> str:
        """What this fixture's wrong answer does in ``test_id``'s exercise.

        A bundle describes each cell as ``"<answer cell>: <what it does>; ..."``; the part whose
        answer cell ``test_id`` tests is returned, else the whole description."""
        answer = test_id.removeprefix("test_")
        for part in self.description.split("; "):
            cell, sep, what = part.partition(": ")
            if sep and cell.strip() in (answer, test_id):
                return what.strip()
        return self.description


def fixtures(assignment: str) -> list[Fixture]:
    """The wrong-answer fixtures of ``assignment``, sorted by name."""
    found = []
    for path in sorted(paths.fixtures_dir(assignment).glob("*.json")):
        spec = json.loads(path.read_text())
        if not spec["loses"] and not spec["description"].startswith("correct alternative:"):
            raise ValueError(
                f"Expected fixture {path.name} of {assignment} to name the cells it loses or to "
                f"describe itself as 'correct alternative: ...', found neither."
            )
        replace = {
            k: "\n".join(v) if isinstance(v, list) else v for k, v in spec["replace"].items()
        }
        found.append(
            Fixture(assignment, path.stem, spec["description"], replace, list(spec["loses"]))
        )
    return found


def graded_cells(assignment: str) -> dict[str, float]:
    """The test cells of ``assignment``'s source notebook with their points, in notebook order."""
    import nbformat

    notebook = nbformat.read(paths.solutions_dir() / assignment / f"{assignment}.ipynb", 4)
    infos = (cell.metadata.get("nbgrader", {}) for cell in notebook.cells)
    return {info["grade_id"]: float(info.get("points", 0)) for info in infos if info.get("grade")}


def catalogue(assignment: str, graded_cells: dict[str, float]) -> str:
    """A Markdown table: for every graded cell (test id: points) the fixtures that lose it and
    what each catches, then the correct alternatives the hidden tests must accept."""
    found = fixtures(assignment)
    lines = [
        f"### {assignment}",
        "",
        "| cell | points | fixture | what it catches |",
        "|---|---:|---|---|",
    ]
    for cell, points in graded_cells.items():
        for fixture in (f for f in found if cell in f.loses):
            lines.append(f"| {cell} | {points:g} | {fixture.name} | {fixture.catches(cell)} |")
    for fixture in (f for f in found if f.is_alternative):
        what = fixture.description.removeprefix("correct alternative:").strip()
        lines.append(f"| (all) | | {fixture.name} | accepted: {what} |")
    return "\n".join(lines) + "\n"
