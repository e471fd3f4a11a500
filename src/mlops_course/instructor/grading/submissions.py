"""Submissions of a class: found in a folder, named safely, checked before anything runs.

Two layouts are accepted: nbgrader's (``DIR/<student>/<assignment>/<notebook>.ipynb``, or the
notebook straight in the student's folder) and a flat LMS export
(``DIR/<student>_<anything>.ipynb``). Student ids are sanitized for file names and nbgrader;
two raw ids that sanitize alike stay apart. Missing, malformed and tampered notebooks (test
cells deleted or edited) are sorted out here.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from mlops_course.runtime.errors import CourseError

__all__ = ["Submission", "discover", "grade_cells", "inspect", "sanitize", "submit"]


class SubmissionsMissing(CourseError):
    """The folder of submissions does not exist."""


@dataclass
class Submission:
    student_id: str
    path: Path | None
    status: str = "ok"
    message: str = ""
    notes: list[str] = field(default_factory=list)


def sanitize(raw: str) -> str:
    """A student id safe for file names and nbgrader: letters, digits, '-' and '_'."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", raw.strip()).strip("_-")
    return cleaned[:64] or "student"


def discover(submissions: Path, assignment: str) -> list[Submission]:
    """Submissions in nbgrader's layout (student folders) or a flat LMS export."""
    if not submissions.is_dir():
        raise SubmissionsMissing(f"Expected a folder of submissions at {submissions}, found none.")
    found: list[tuple[str, Path | None]] = []
    for entry in sorted(submissions.iterdir()):
        if entry.is_dir():
            notebooks = sorted((entry / assignment).glob("*.ipynb")) or sorted(
                entry.glob("*.ipynb")
            )
            found.append((entry.name, notebooks[0] if notebooks else None))
        elif entry.suffix == ".ipynb":
            found.append((entry.stem.split("_", 1)[0], entry))
    taken: set[str] = set()
    result = []
    for raw, path in found:
        student = sanitize(raw)
        base, n = student, 2
        while student in taken:  # two raw ids that sanitize alike stay apart
            student, n = f"{base}-{n}", n + 1
        taken.add(student)
        result.append(Submission(student, path))
    return result


def grade_cells(notebook: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    return {
        cell.metadata["nbgrader"]["grade_id"]: cell
        for cell in notebook.cells
        if cell.metadata.get("nbgrader", {}).get("grade")
        and cell.metadata["nbgrader"].get("grade_id")
    }


def inspect(submission: Submission, release: nbformat.NotebookNode) -> None:
    """Sort out missing, malformed and tampered notebooks before anything runs."""
    if submission.path is None:
        submission.status, submission.message = (
            "missing",
            "No notebook was found in the submission.",
        )
        return
    try:
        notebook = nbformat.read(submission.path, as_version=4)
        nbformat.validate(notebook)
    except Exception as error:  # noqa: BLE001 - any unreadable file is "malformed"
        submission.status = "malformed"
        submission.message = f"The notebook is not valid notebook JSON ({type(error).__name__})."
        return
    expected, found = grade_cells(release), grade_cells(notebook)
    deleted = sorted(set(expected) - set(found))
    edited = sorted(g for g in expected if g in found and found[g].source != expected[g].source)
    if deleted:
        submission.notes.append(f"test cell(s) {', '.join(deleted)} deleted (scored zero)")
    if edited:
        submission.notes.append(
            f"test cell(s) {', '.join(edited)} edited (the original was restored and run)"
        )


def submit(
    course: Path, student: str, assignment: str, notebook: nbformat.NotebookNode | Path
) -> Path:
    """Place a submission where ``nbgrader autograde`` looks for it in a derived course."""
    target = Path(course) / "submitted" / student / assignment / f"{assignment}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(notebook, Path):
        shutil.copyfile(notebook, target)
    else:
        nbformat.write(notebook, target)
    return target
