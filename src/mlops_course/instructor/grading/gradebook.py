"""Reading scores from a derived course's nbgrader gradebook."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["CellScore", "cell_scores"]


@dataclass(frozen=True)
class CellScore:
    """One graded cell of one submission, as nbgrader's gradebook has it."""

    grade_id: str
    score: float
    max_score: float
    needs_manual_grade: bool


def _gradebook(course: Path):
    from nbgrader.api import Gradebook

    return Gradebook(f"sqlite:///{Path(course) / 'gradebook.db'}")


def cell_scores(course: Path, assignment: str, student: str) -> dict[str, CellScore]:
    """Scores of every autograded cell of a student's submission."""
    with _gradebook(course) as gradebook:
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
