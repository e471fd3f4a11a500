"""Three-way grading of every assignment: the solution gets full marks, the blank release
zero, and each wrong-answer fixture loses exactly the cells it names.

One temporary nbgrader course per assignment: generate the release, submit the three
kinds of notebooks, autograde them together, read the gradebook.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from mlops_course.instructor.grading import courses, fixtures, gradebook, release, submissions

from .conftest import ASSIGNMENTS

pytestmark = pytest.mark.grading


def _grade(assignment: str, workdir) -> dict:
    """Build a course for one assignment, submit solution, blank and fixtures, autograde."""
    course = courses.make_course(workdir / f"course-{assignment}", [assignment])
    courses.nbgrader(course, "generate_assignment", assignment, "--force")
    release_path = courses.release_notebook(course, assignment)
    solution = course / "source" / assignment / f"{assignment}.ipynb"
    submissions.submit(course, "solution", assignment, release.fill_release(release_path, solution))
    submissions.submit(course, "blank", assignment, release_path)
    wrong = fixtures.fixtures(assignment)
    for fixture in wrong:
        submission = release.fill_release(release_path, solution, fixture.replace)
        submissions.submit(course, f"fixture-{fixture.name}", assignment, submission)
    courses.nbgrader(course, "autograde", assignment, "--force")
    return {
        "assignment": assignment,
        "course": course,
        "release": release_path,
        "fixtures": wrong,
        "scores": {
            student: gradebook.cell_scores(course, assignment, student)
            for student in ["solution", "blank", *(f"fixture-{f.name}" for f in wrong)]
        },
    }


@pytest.fixture(scope="session")
def graded_course(tmp_path_factory, request) -> dict[str, dict | BaseException]:
    """Every selected assignment graded once; assignments run in parallel (one per core)."""
    selected = {
        item.callspec.params["assignment"]
        for item in request.session.items
        if "graded" in getattr(item, "fixturenames", ()) and "assignment" in item.callspec.params
    }
    wanted = sorted(selected) or ASSIGNMENTS  # only what `-k` kept
    workdir = tmp_path_factory.mktemp("grading")
    results: dict[str, dict | BaseException] = {}
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = {pool.submit(_grade, a, workdir): a for a in wanted}
        for future, assignment in futures.items():
            try:
                results[assignment] = future.result()
            except Exception as error:  # noqa: BLE001 - reported by that assignment's tests only
                results[assignment] = error
    return results


@pytest.fixture(params=ASSIGNMENTS)
def assignment(request) -> str:
    return request.param


@pytest.fixture
def graded(graded_course, assignment) -> dict:
    result = graded_course[assignment]
    if isinstance(result, BaseException):
        raise result
    return result


def _summary(scores) -> str:
    return ", ".join(f"{s.grade_id}={s.score:g}/{s.max_score:g}" for s in scores.values())


def test_solution_gets_full_marks(graded):
    scores = graded["scores"]["solution"]
    assert scores, f"{graded['assignment']} has no autograded cells."
    lost = [s.grade_id for s in scores.values() if s.score < s.max_score]
    assert not lost, (
        f"The solution of {graded['assignment']} loses points in {lost}: {_summary(scores)}."
    )


def test_blank_release_gets_zero(graded):
    scores = graded["scores"]["blank"]
    earned = [s.grade_id for s in scores.values() if s.score > 0]
    assert not earned, (
        f"The blank release of {graded['assignment']} earns points in {earned}: {_summary(scores)}."
    )


def test_no_cell_needs_manual_grading(graded):
    for student, scores in graded["scores"].items():
        manual = [s.grade_id for s in scores.values() if s.needs_manual_grade]
        assert not manual, f"{student}'s {graded['assignment']} needs manual grading in {manual}."


def test_every_exercise_has_a_wrong_answer_fixture(graded):
    tests = {g for g, s in graded["scores"]["solution"].items() if s.max_score > 0}
    covered = {cell for fixture in graded["fixtures"] for cell in fixture.loses}
    missing = sorted(tests - covered)
    assert not missing, (
        f"No wrong-answer fixture in grading/fixtures/{graded['assignment']}/ loses {missing}."
    )


def test_wrong_answers_lose_exactly_their_cells(graded):
    solution = graded["scores"]["solution"]
    for fixture in graded["fixtures"]:
        scores = graded["scores"][f"fixture-{fixture.name}"]
        for grade_id, score in scores.items():
            if grade_id in fixture.loses:
                assert score.score == 0, (
                    f"Fixture {fixture.name} ({fixture.description}) should score 0 in {grade_id}, "
                    f"found {score.score:g}."
                )
            else:
                assert score.score == solution[grade_id].score, (
                    f"Fixture {fixture.name} should keep {grade_id} ({solution[grade_id].score:g} points), "
                    f"found {score.score:g}."
                )
