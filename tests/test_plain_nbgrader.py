"""Plain `nbgrader autograde` still grades the course: the hidden tests run inside the kernel
there (the same code the judge runs outside it under `mlops-course grade`).

Plain nbgrader trusts the kernel, so only the honest cases are graded right here: the solution
gets full marks and the blank release zero. The cheap notebooks are enough to show the
in-kernel path of the hidden tests works under nbgrader; every notebook's hidden tests also
run in the kernel when `make course` executes the solutions (tests/test_notebooks.py).

And the control of tests/test_grading.py's attack tests: one of those attacks (an input
transformer that turns every later cell into `pass`) gives a blank notebook points under plain
nbgrader, so the attacks there are real and the trusted path is what stops them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import nbformat
import pytest

from mlops_course.instructor.grading import attacks, courses, gradebook, release, submissions

pytestmark = pytest.mark.grading

PLAIN = ["00_start_here", "01_mlops_paradigm", "07_search_runs", "11_quiz"]


def _grade_plain(folder, assignments: list[str]):
    """One plain nbgrader course: solution, blank and the input attack of each assignment."""
    course = courses.make_course(folder, assignments)
    courses.nbgrader(course, "generate_assignment", "*", "--force")
    for assignment in assignments:
        blank = courses.release_notebook(course, assignment)
        solved = release.fill_release(blank, courses.source_notebook(course, assignment))
        submissions.submit(course, "solution", assignment, solved)
        submissions.submit(course, "blank", assignment, blank)
        attacked = attacks.attack(nbformat.read(blank, as_version=4), "input")
        submissions.submit(course, "attack-input", assignment, attacked)
        courses.nbgrader(course, "autograde", assignment, "--force")
    return course


@pytest.fixture(scope="module")
def plain_course(tmp_path_factory) -> dict:
    """The course that graded each assignment: two courses, one per core, since each kernel
    mostly waits (one course's gradebook takes one autograde at a time)."""
    halves = [PLAIN[0::2], PLAIN[1::2]]
    folders = [tmp_path_factory.mktemp(f"plain-{i}") for i in range(len(halves))]
    with ThreadPoolExecutor(max_workers=len(halves)) as pool:
        graded = list(pool.map(_grade_plain, folders, halves))
    return {a: course for course, half in zip(graded, halves, strict=True) for a in half}


@pytest.mark.parametrize("assignment", PLAIN)
def test_plain_nbgrader_grades_solution_and_blank(plain_course, assignment):
    solution = gradebook.cell_scores(plain_course[assignment], assignment, "solution")
    blank = gradebook.cell_scores(plain_course[assignment], assignment, "blank")
    lost = {g: s.score for g, s in solution.items() if s.score < s.max_score}
    earned = {g: s.score for g, s in blank.items() if s.score > 0}
    assert not lost, f"Plain nbgrader: the solution of {assignment} loses points in {lost}."
    assert not earned, f"Plain nbgrader: the blank release of {assignment} earns {earned}."


@pytest.mark.parametrize("assignment", PLAIN)
def test_plain_nbgrader_is_fooled_by_an_input_transformer(plain_course, assignment):
    attacked = gradebook.cell_scores(plain_course[assignment], assignment, "attack-input")
    earned = sum(s.score for s in attacked.values())
    assert earned > 0, (
        f"Plain nbgrader gave the attacked blank {assignment} no points: the attack is not "
        "what the trusted path's tests think it is."
    )
