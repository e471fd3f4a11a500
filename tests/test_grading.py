"""Three-way grading of every assignment through the trusted path of `mlops-course grade`:
the solution gets full marks, the blank release zero, and each wrong-answer fixture loses
exactly the cells it names. Every kernel runs in the sandbox (when bubblewrap is here) and
every hidden test is judged outside it (mlops_course.instructor.grading.judge).

Every submission (solution, blank release, one per fixture, for every selected assignment) is
dealt in turn to one of two throw-away nbgrader courses, one per core, which autograde in
parallel. Dealing submissions rather than whole assignments keeps both cores busy to the end:
the cloud walkthroughs (08-10) take several times longer than the short notebooks, so the
second course takes the assignments in reverse order.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat
import pytest

from mlops_course.instructor.grading import (
    attacks,
    classgrade,
    courses,
    fixtures,
    gradebook,
    release,
    sandbox,
    submissions,
)

from .conftest import ASSIGNMENTS, REPO

pytestmark = pytest.mark.grading


def _variants(assignment: str, course: Path) -> list[tuple[str, object]]:
    """(student id, notebook) for the solution, the blank release and every fixture."""
    release_path = courses.release_notebook(course, assignment)
    solution = courses.source_notebook(course, assignment)
    found = [
        ("solution", release.fill_release(release_path, solution)),
        ("blank", release_path),
    ]
    for fixture in fixtures.fixtures(assignment):
        wrong = release.fill_release(release_path, solution, fixture.replace)
        found.append((f"fixture-{fixture.name}", wrong))
    return found


TIMEOUT = 300  # seconds per submission, as the grade command's default
# The sandbox's deadline for a whole attacked kernel. The attacks here have no endless loop
# (test_class_grading proves the deadline ends one), so it only has to be long enough never to
# end a kernel that is still working: 25 s once ended a loaded CI machine's 05 before its
# tests, 60 s the 00 pack on a machine running both grading pools at once.
ATTACK_TIMEOUT = 300
# Assignments whose wrong-answer fixtures are also graded with the kernel attacks added (full
# notebooks: the cheap ones; every assignment gets the attacks on its blank release).
TAMPERED = ["00_start_here", "01_mlops_paradigm", "07_search_runs", "11_quiz"]


def _autograde_share(
    course: Path, share: dict[str, list[tuple[str, object]]], timeout: int = TIMEOUT
) -> dict:
    """Autograde this course's share of the submissions; scores (or the error) per assignment."""
    results: dict[str, dict | BaseException] = {}
    env = classgrade.grading_env(
        course / "records", timeout, [course.parent], use_sandbox=sandbox.available()
    )
    for assignment, students in share.items():
        try:
            for student, notebook in students:
                submissions.submit(course, student, assignment, notebook)
            courses.nbgrader(course, "autograde", assignment, "--force", env=env)
            results[assignment] = {
                student: gradebook.cell_scores(course, assignment, student)
                for student, _ in students
            }
        except Exception as error:  # noqa: BLE001 - reported by that assignment's tests only
            results[assignment] = error
    return results


def _selected(request, fixture: str) -> list[str]:
    """The assignments of the tests that use ``fixture`` and that `-k` kept."""
    selected = {
        item.callspec.params["assignment"]
        for item in request.session.items
        if fixture in getattr(item, "fixturenames", ()) and "assignment" in item.callspec.params
    }
    return sorted(selected)


def _grade_all(workdir: Path, wanted: list[str], variants, timeout: int, workers: int) -> dict:
    """Deal every variant of every assignment over ``workers`` courses; grade; scores."""
    worker_courses = [courses.make_course(workdir / f"worker-{i}", wanted) for i in range(workers)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(
            pool.map(
                lambda c: courses.nbgrader(c, "generate_assignment", "*", "--force"), worker_courses
            )
        )
    shares: list[dict[str, list]] = [{} for _ in worker_courses]
    dealt = 0
    for assignment in wanted:
        for variant in variants(assignment, worker_courses[0]):
            shares[dealt % workers].setdefault(assignment, []).append(variant)
            dealt += 1
    # Every other course grades its assignments in reverse order: one starts with the cloud
    # walkthroughs (CPU-bound) while the other grades the short notebooks (mostly waiting on
    # kernels and servers), instead of both reaching the walkthroughs at the same time.
    shares = [
        dict(reversed(share.items())) if index % 2 else share for index, share in enumerate(shares)
    ]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(lambda c, s: _autograde_share(c, s, timeout), worker_courses, shares))
    results: dict[str, dict | BaseException] = {}
    for assignment in wanted:
        scores: dict = {}
        for part in parts:
            found = part.get(assignment, {})
            if isinstance(found, BaseException):
                results[assignment] = found
                break
            scores.update(found)
        else:
            results[assignment] = {
                "assignment": assignment,
                "fixtures": fixtures.fixtures(assignment),
                "scores": scores,
                "courses": worker_courses,
            }
    return results


def _attack_variants(assignment: str, course: Path) -> list[tuple[str, object]]:
    blank = nbformat.read(courses.release_notebook(course, assignment), as_version=4)
    solution_path = courses.source_notebook(course, assignment)
    solution = nbformat.read(solution_path, as_version=4)
    found = [
        (f"attack-{kind}", attacks.attack(blank, kind, solution, endless=False))
        for kind in ("pack", "input", "exit")
    ]
    if assignment in TAMPERED:
        release_path = courses.release_notebook(course, assignment)
        for fixture in fixtures.fixtures(assignment):
            if fixture.is_alternative:
                continue  # tampering with a right answer proves nothing about wrong ones
            wrong = release.fill_release(release_path, solution_path, fixture.replace)
            found.append((f"tamper-{fixture.name}", attacks.attack(wrong, "tamper", endless=False)))
    return found


@pytest.fixture(scope="session")
def graded_runs(tmp_path_factory, request) -> dict[str, dict[str, dict | BaseException]]:
    """Every selected assignment graded: its honest variants (solution, blank, fixtures) and
    its attacks, both at once.

    The honest variants go to one course per core. The attacks go to one more course at the
    same time: they are trimmed releases (no servers, no walkthrough), a fraction of the
    honest variants' work, so they finish within the honest pool's time."""
    jobs = {  # fixture name: (folder, variants, deadline, workers)
        "graded": ("grading", _variants, TIMEOUT, max(1, min(os.cpu_count() or 1, 2))),
        "attacked": ("attacks", _attack_variants, ATTACK_TIMEOUT, 1),
    }
    wanted = {name: _selected(request, name) for name in jobs}
    wanted = {name: found for name, found in wanted.items() if found}
    with ThreadPoolExecutor(max_workers=len(wanted)) as pool:
        futures = {
            name: pool.submit(
                _grade_all, tmp_path_factory.mktemp(jobs[name][0]), wanted[name], *jobs[name][1:]
            )
            for name in wanted
        }
        return {name: future.result() for name, future in futures.items()}


@pytest.fixture(params=ASSIGNMENTS)
def assignment(request) -> str:
    return request.param


def _result_of(graded_runs, kind: str, assignment: str) -> dict:
    """One assignment's result; its grading error is raised in its own tests only."""
    result = graded_runs[kind][assignment]
    if isinstance(result, BaseException):
        raise result
    return result


@pytest.fixture
def graded(graded_runs, assignment) -> dict:
    return _result_of(graded_runs, "graded", assignment)


@pytest.fixture
def attacked(graded_runs, assignment) -> dict:
    return _result_of(graded_runs, "attacked", assignment)


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


@pytest.mark.parametrize("assignment_name", ASSIGNMENTS)
def test_every_exercise_has_two_wrong_answer_fixtures(assignment_name):
    """Read from the source notebook, so it costs no grading run."""
    graded_cells = list(fixtures.graded_cells(assignment_name))
    found = fixtures.fixtures(assignment_name)
    unknown = sorted({cell for f in found for cell in f.loses} - set(graded_cells))
    assert not unknown, (
        f"Fixtures of {assignment_name} lose test cells the notebook does not have: {unknown}."
    )
    thin = {cell: [f.name for f in found if cell in f.loses] for cell in graded_cells}
    thin = {cell: names for cell, names in thin.items() if len(names) < 2}
    assert not thin, (
        f"Expected every graded cell of {assignment_name} to be lost by at least two fixtures "
        f"in grading/fixtures/{assignment_name}/, found fewer for {thin}."
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


def test_attacks_score_what_the_blank_scores(attacked):
    """Whatever a student's cells do to their kernel, a blank notebook earns nothing."""
    for student, scores in attacked["scores"].items():
        if student.startswith("attack-"):
            earned = {g: s.score for g, s in scores.items() if s.score > 0}
            assert not earned, (
                f"{student} of {attacked['assignment']} earns points the blank release does not: "
                f"{earned}."
            )


def test_tampering_keeps_a_wrong_answer_wrong(attacked):
    """A wrong answer plus every kernel attack scores what the wrong answer scores alone."""
    for fixture in attacked["fixtures"]:
        scores = attacked["scores"].get(f"tamper-{fixture.name}")
        if scores is None:
            continue
        for grade_id, score in scores.items():
            if grade_id in fixture.loses:
                assert score.score == 0, (
                    f"Fixture {fixture.name} with the kernel attacks scores {score.score:g} in "
                    f"{grade_id}, which the wrong answer loses."
                )


def test_attacks_leak_no_hidden_test(attacked):
    """Nothing an attack prints (history, files, environment) holds a line of a hidden test."""
    assignment = attacked["assignment"]
    hidden = release.hidden_test_texts(REPO / "solutions" / assignment / f"{assignment}.ipynb")
    # A line the attack's own code holds ("except Exception:") is printed with its history.
    attack_code = attacks.SNOOP + attacks.TAMPER + attacks.LIAR
    hidden = [line for line in hidden if line not in attack_code]
    for course in attacked["courses"]:
        for path in (course / "autograded").glob(f"*/{assignment}/{assignment}.ipynb"):
            if not path.parent.parent.name.startswith(("attack-", "tamper-")):
                continue
            executed = nbformat.read(path, as_version=4)
            shown = "\n".join(
                str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
                for cell in executed.cells
                for output in cell.get("outputs", [])
            )
            leaked = [line for line in hidden if line in shown]
            assert not leaked, (
                f"{path.parent.parent.name} of {assignment} printed hidden test text: {leaked[:2]}."
            )


def test_packed_attack_reaches_the_judge(attacked):
    """The control of the attack tests: in the `pack` attack the kernel survives the tampering
    to its last cell, so the judge really meets the lying answers and the patched kernel
    (a kernel that died at once would score zero for another reason)."""
    assignment = attacked["assignment"]
    records = [
        course / "records" / "judge" / assignment / "attack-pack.json"
        for course in attacked["courses"]
    ]
    found = [json.loads(path.read_text()) for path in records if path.exists()]
    assert found, f"No judge record of attack-pack for {assignment}."
    died = [
        name
        for name, verdict in found[0]["verdicts"].items()
        if verdict["message"].startswith("The kernel died before")
    ]
    assert not died, f"The kernel of attack-pack in {assignment} died before {died}."
