"""nbgrader from Python: temporary courses, releases, submissions, autograding, scores.

The three-way grading tests and ``make release`` use these functions; so will the
class grading command. nbgrader runs as a subprocess with the environment's
``bin`` first on PATH (it shells out to ``alembic`` for its gradebook).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

from mlops_course.servers import lean_mlflow_env

__all__ = [
    "CellScore",
    "Fixture",
    "build_course",
    "cell_scores",
    "fill_release",
    "fixtures",
    "nbgrader",
    "normalized",
    "release_notebook",
    "solution_code",
    "submit",
]

SOLUTION_MARKERS = re.compile(r"^[ \t]*### (BEGIN|END) SOLUTION[ \t]*\n?", re.M)
HIDDEN_BLOCK = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS", re.S)


class GradingError(RuntimeError):
    """An nbgrader step failed; the message carries the tail of nbgrader's log."""


def repo_config(repo: Path) -> Path:
    return repo / "grading" / "nbgrader_config.py"


def nbgrader(course: Path, *args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """Run ``nbgrader <args>`` in ``course`` (where its nbgrader_config.py lives)."""
    command = [sys.executable, "-m", "nbgrader", *args]
    env = lean_mlflow_env()
    env.pop("MLFLOW_TRACKING_URI", None)  # each submission must get its own store
    result = subprocess.run(
        command,
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
        raise GradingError(f"`nbgrader {' '.join(args)}` failed in {course}:\n{tail}")
    return result


def build_course(course: Path, repo: Path, assignments: list[str]) -> Path:
    """A throw-away nbgrader course in ``course`` whose sources are the repo's solutions.

    It loads the repo's nbgrader configuration (ignore list, feedback without hidden
    tests, solution stubs) and only moves the folders into ``course``.
    """
    course.mkdir(parents=True, exist_ok=True)
    for assignment in assignments:
        # Only the notebooks: running a solution in place leaves stores and answer files beside it.
        target = course / "source" / assignment
        target.mkdir(parents=True, exist_ok=True)
        for notebook in (repo / "solutions" / assignment).glob("*.ipynb"):
            shutil.copyfile(notebook, target / notebook.name)
    config = f"""\
c = get_config()
load_subconfig({str(repo_config(repo))!r})
c.CourseDirectory.root = {str(course)!r}
c.CourseDirectory.source_directory = "source"
c.CourseDirectory.release_directory = "release"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.solution_directory = "solution"
c.CourseDirectory.db_url = "sqlite:///{course / "gradebook.db"}"
"""
    (course / "nbgrader_config.py").write_text(config)
    return course


def release_notebook(course: Path, assignment: str) -> Path:
    return course / "release" / assignment / f"{assignment}.ipynb"


def solution_code(source: str) -> str:
    """The code of a solution cell as a student who solved it would have it (markers removed)."""
    return SOLUTION_MARKERS.sub("", source)


def fill_release(
    release: Path, solution: Path, replacements: dict[str, str] | None = None
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
            f"Fixture replaces unknown answer cells {sorted(unknown)}; known: {sorted(answers)}."
        )
    notebook = nbformat.read(release, as_version=4)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in answers:
            cell.source = replacements.get(grade_id, answers[grade_id])
    return notebook


def submit(
    course: Path, student: str, assignment: str, notebook: nbformat.NotebookNode | Path
) -> Path:
    """Place a submission where ``nbgrader autograde`` looks for it."""
    target = course / "submitted" / student / assignment / f"{assignment}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(notebook, Path):
        shutil.copyfile(notebook, target)
    else:
        nbformat.write(notebook, target)
    return target


@dataclass(frozen=True)
class CellScore:
    """One graded cell of one submission, as nbgrader's gradebook has it."""

    grade_id: str
    score: float
    max_score: float
    needs_manual_grade: bool


def cell_scores(course: Path, assignment: str, student: str) -> dict[str, CellScore]:
    """Scores of every autograded cell of a student's submission."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission_notebook(assignment, assignment, student)
        return {
            grade.name: CellScore(
                grade_id=grade.name,
                score=float(grade.score or 0.0),
                max_score=float(grade.max_score or 0.0),
                needs_manual_grade=bool(grade.needs_manual_grade),
            )
            for grade in submission.grades
        }


@dataclass(frozen=True)
class Fixture:
    """A plausible wrong answer: which answer cells it replaces and which tests it must lose."""

    assignment: str
    name: str
    description: str
    replace: dict[str, str]
    loses: list[str]


def fixtures(repo: Path, assignment: str) -> list[Fixture]:
    """Wrong-answer fixtures in ``grading/fixtures/<assignment>/*.json``."""
    folder = repo / "grading" / "fixtures" / assignment
    found = []
    for path in sorted(folder.glob("*.json")):
        spec = json.loads(path.read_text())
        found.append(
            Fixture(
                assignment=assignment,
                name=path.stem,
                description=spec["description"],
                replace={
                    k: "\n".join(v) if isinstance(v, list) else v
                    for k, v in spec["replace"].items()
                },
                loses=list(spec["loses"]),
            )
        )
    return found


VOLATILE_METADATA = ("papermill", "execution", "collapsed", "scrolled", "ExecuteTime")


def normalized(notebook: nbformat.NotebookNode) -> list[dict]:
    """Cells as comparable dicts: type, source and metadata without run-time noise."""
    cells = []
    for cell in notebook.cells:
        metadata = {k: v for k, v in cell.metadata.items() if k not in VOLATILE_METADATA}
        cells.append({"type": cell.cell_type, "source": cell.source, "metadata": metadata})
    return cells


def hidden_test_texts(solution: Path) -> list[str]:
    """Lines that only occur inside hidden-test blocks of a solution notebook.

    Lines that also appear in visible code (``evidence.check(``, say) are left out, so a
    hit in the release is a real leak.
    """
    hidden: list[str] = []
    visible: set[str] = set()
    for cell in nbformat.read(solution, as_version=4).cells:
        for block in HIDDEN_BLOCK.findall(cell.source):
            hidden.extend(line.strip() for line in block.splitlines()[1:-1])
        visible.update(line.strip() for line in HIDDEN_BLOCK.sub("", cell.source).splitlines())
    return [line for line in dict.fromkeys(hidden) if len(line) > 12 and line not in visible]
