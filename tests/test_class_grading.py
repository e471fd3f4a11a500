"""`mlops-course grade` on a fixture class: every kind of submission gets exactly its score and status.

The class is built from the release of 01_mlops_paradigm: correct, blank, partly wrong,
endless, crashing, malformed, test-cell-deleting, test-cell-editing, kernel-altering,
evidence-faking, network-using and solution-snooping notebooks.
"""

from __future__ import annotations

import csv
import re

import nbformat
import pytest

from mlops_course.instructor.grading import (
    classgrade,
    courses,
    fixtures,
    release,
    sandbox,
    submissions,
    summary,
)

from .conftest import REPO

pytestmark = pytest.mark.grading
ASSIGNMENT = "01_mlops_paradigm"
FULL = 7.0


def _add_cell(notebook, source: str, after_setup: bool = True) -> None:
    index = 3 if after_setup else len(notebook.cells)  # after the set-up cell
    code = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code"]
    position = code[1] + 1 if after_setup else index
    notebook.cells.insert(position, nbformat.v4.new_code_cell(source))


def _fixture_class(tmp_path):
    course = courses.make_course(tmp_path / "author", [ASSIGNMENT])
    courses.nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
    release_path = courses.release_notebook(course, ASSIGNMENT)
    solution = course / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    gate_ties = next(f for f in fixtures.fixtures(ASSIGNMENT) if f.name == "gate_promotes_ties")
    submissions = tmp_path / "submissions"

    def put(student: str, notebook) -> None:
        target = submissions / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        target.parent.mkdir(parents=True)
        if isinstance(notebook, str):
            target.write_text(notebook)
        else:
            nbformat.write(notebook, target)

    put("alice", release.fill_release(release_path, solution))
    put("bob", nbformat.read(release_path, as_version=4))
    put("carol", release.fill_release(release_path, solution, gate_ties.replace))
    endless = release.fill_release(release_path, solution)
    _add_cell(endless, "import time\nwhile True:\n    time.sleep(1)")
    put("dave", endless)
    crash = release.fill_release(release_path, solution)
    _add_cell(crash, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    put("erin", crash)
    put("frank", '{"cells": [ this is not json')
    deleted = release.fill_release(release_path, solution)
    deleted.cells = [
        c
        for c in deleted.cells
        if c.metadata.get("nbgrader", {}).get("grade_id") != "test_pipeline_of"
    ]
    put("grace", deleted)
    altered = nbformat.read(release_path, as_version=4)
    _add_cell(altered, "get_ipython().input_transformers_cleanup.append(lambda lines: ['pass\\n'])")
    put("heidi", altered)
    network = release.fill_release(release_path, solution)
    _add_cell(
        network,
        "import urllib.request\ntry:\n    urllib.request.urlopen('http://example.com', timeout=5)\n"
        "except Exception as error:\n    print('network:', error)",
    )
    put("ivan", network)
    snoop = release.fill_release(release_path, solution)
    _add_cell(
        snoop,
        f"import os\nprint('SOLUTIONS-VISIBLE:', os.path.exists({str(REPO / 'solutions')!r}))",
    )
    put("judy", snoop)
    edited = release.fill_release(
        release_path,
        solution,
        {"pipeline_of": "PIPELINE_OF = {task: 'training' for task in TASKS}"},
    )
    for cell in edited.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_pipeline_of":
            cell.source = "print('all good')"
    put("kim", edited)
    faked = release.fill_release(
        release_path,
        solution,
        {
            "record_baseline_run": "\n".join(
                [
                    "def record_baseline_run():",
                    "    class Fake:",
                    "        class info: run_id = 'fake'",
                    "        class data: metrics = {'accuracy': 1.0}; params = {}",
                    "    checks.latest_run = lambda *a, **k: Fake",
                    "    checks.expect_params = checks.expect_metrics = lambda *a, **k: None",
                    "    return 'fake'",
                ]
            )
        },
    )
    put("mallory", faked)
    put("Niño O'Brien", release.fill_release(release_path, solution))  # an id that needs sanitizing
    (submissions / "oscar").mkdir()  # a folder without a notebook
    return submissions


EXPECTED = {
    # student: (score, status, a word the message must contain)
    "alice": (FULL, "ok", "passed"),
    "bob": (0.0, "ok", "passed"),
    "carol": (4.0, "ok", "passed"),
    "dave": (0.0, "timeout", "did not finish"),
    "erin": (0.0, "crashed", "kernel died"),
    "frank": (0.0, "malformed", "not valid"),
    "grace": (5.0, "tampered", "deleted"),
    # A kernel that skips every later cell earns what it runs: nothing (no flag is needed,
    # the hidden tests run outside it).
    "heidi": (0.0, "ok", "passed"),
    "ivan": (FULL, "tampered", "network"),
    "judy": (FULL, "ok", "passed"),
    "kim": (5.0, "tampered", "edited"),
    # Patched check helpers in the kernel change nothing: the judge runs outside it.
    "mallory": (5.0, "ok", "passed"),
    "Ni_o_O_Brien": (FULL, "ok", "passed"),
    "oscar": (0.0, "missing", "no notebook"),
}


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    if not sandbox.available():
        pytest.skip(
            "bubblewrap is not available here (CI installs it): the sandboxed grader cannot run"
        )
    tmp = tmp_path_factory.mktemp("class")
    submissions = _fixture_class(tmp)
    out = tmp / "out"
    rows = classgrade.grade_class(
        ASSIGNMENT, submissions, out, workers=2, timeout=30
    )  # 01 needs about 10 s in the sandbox; the endless one waits this long
    return {"rows": {r.student_id: r for r in rows}, "out": out}


def test_every_submission_gets_its_score_and_status(graded_class):
    rows = graded_class["rows"]
    assert set(rows) == set(EXPECTED), (
        f"Expected students {sorted(EXPECTED)}, found {sorted(rows)}."
    )
    for student, (score, status, word) in EXPECTED.items():
        row = rows[student]
        assert (row.score, row.status) == (score, status), (
            f"{student}: expected {score:g} points and status {status}, found {row.score:g} and {row.status} ({row.message})"
        )
        assert word.lower() in row.message.lower(), (
            f"{student}: the message should mention '{word}': {row.message}"
        )


def test_grades_csv(graded_class):
    with open(graded_class["out"] / "grades.csv") as handle:
        table = list(csv.DictReader(handle))
    assert list(table[0]) == [
        "student_id",
        "assignment",
        "notebook",
        "score",
        "max_score",
        "status",
        "message",
    ]
    assert len(table) == len(EXPECTED)
    assert {r["status"] for r in table} <= set(summary.STATUSES)


def test_feedback_has_no_hidden_tests_or_tracebacks(graded_class):
    hidden = release.hidden_test_texts(REPO / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    pages = sorted((graded_class["out"] / "feedback").glob("*.html"))
    assert {p.stem for p in pages} >= {"alice", "bob", "carol", "judy"}, (
        f"feedback pages: {[p.stem for p in pages]}"
    )
    for page in pages:
        text = page.read_text()
        plain = re.sub(r"<[^>]+>", "", text)
        import html as html_module

        plain = html_module.unescape(plain)
        for line in hidden:
            assert line not in plain, f"{page.name} leaks hidden test text: {line!r}"
        assert (
            "BEGIN HIDDEN TESTS" not in plain and "Traceback (most recent call last)" not in plain
        )


def test_solutions_are_invisible_to_submissions(graded_class):
    page = (graded_class["out"] / "feedback" / "judy.html").read_text()
    assert "SOLUTIONS-VISIBLE: False" in page, (
        "a submission could see the course's solutions/ folder"
    )


def test_summary_page(graded_class):
    page = (graded_class["out"] / "summary.html").read_text()
    assert "data:image/png;base64," in page and "test_promote_if_better" in page


SAFE_ID = re.compile(r"[A-Za-z0-9_-]+")


def _assert_safe_id(student_id: str, raw: str) -> None:
    """A student id names files and nbgrader folders: one harmless path component."""
    assert SAFE_ID.fullmatch(student_id), f"{raw!r} gave the unsafe id {student_id!r}"
    assert "/" not in student_id and ".." not in student_id and student_id not in (".", "")


def test_flat_export_and_id_sanitizing(tmp_path):
    for raw in ("../../etc/passwd", "a/b", "..", ".", "/", "ana maria", " ", "..\\..\\x", ""):
        _assert_safe_id(submissions.sanitize(raw), raw)
    assert submissions.sanitize("ana maria") == "ana_maria"
    assert submissions.sanitize("../../etc/passwd") == "etc_passwd"

    export = tmp_path / "export"
    export.mkdir()
    (export / "ana.maria_attempt1_01.ipynb").write_text("{}")
    (export / "ana.maria_attempt2.ipynb").write_text("{}")
    # Names an LMS export could hold: no "/" in a file name, but dots, backslashes, spaces.
    (export / ".._attempt1.ipynb").write_text("{}")
    (export / "..\\..\\etc passwd_attempt1.ipynb").write_text("{}")
    found = submissions.discover(export, ASSIGNMENT)
    assert {s.path.name: s.student_id for s in found} == {
        "ana.maria_attempt1_01.ipynb": "ana_maria",
        "ana.maria_attempt2.ipynb": "ana_maria-2",  # two raw ids that sanitize alike stay apart
        ".._attempt1.ipynb": "student",  # nothing left of ".."
        "..\\..\\etc passwd_attempt1.ipynb": "etc_passwd",
    }
    feedback = tmp_path / "out" / "feedback"
    for submission in found:
        _assert_safe_id(submission.student_id, submission.path.name)
        page = (feedback / f"{submission.student_id}.html").resolve()
        assert page.parent == feedback.resolve(), page  # never outside the feedback folder


def test_refuses_without_sandbox(monkeypatch, tmp_path):
    monkeypatch.setattr(sandbox, "available", lambda: False)
    with pytest.raises(classgrade.GradingRefused, match="--no-sandbox"):
        classgrade.grade_class(ASSIGNMENT, tmp_path, tmp_path / "out")
