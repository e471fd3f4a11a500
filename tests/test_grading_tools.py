"""The grading tools that need no nbgrader run: the sandbox probe, the grader's refusals and the
outside checks' names (``grading/outside_checks/<assignment>.py``)."""

from __future__ import annotations

import ast
import inspect
import os
import shutil
from pathlib import Path

import nbformat
import pytest

from mlops_course import paths
from mlops_course.instructor.grading import classgrade, outside, sandbox

from .conftest import ASSIGNMENTS, REPO

OUTSIDE_CHECKS = sorted((REPO / "grading" / "outside_checks").glob("*.py"))


def grade_ids_of(assignment: str) -> set[str]:
    """Grade ids of the solution notebook's test cells (``nbgrader.grade`` true)."""
    notebook = nbformat.read(paths.solutions_dir() / assignment / f"{assignment}.ipynb", 4)
    return {
        cell.metadata["nbgrader"]["grade_id"]
        for cell in notebook.cells
        if cell.metadata.get("nbgrader", {}).get("grade")
    }


def _without(monkeypatch, program: str) -> None:
    real_which = shutil.which

    def which(name, *args, **kwargs):
        return None if name == program else real_which(name, *args, **kwargs)

    monkeypatch.setattr(sandbox.shutil, "which", which)


@pytest.mark.parametrize("program", ["bwrap", "setpriv", "prlimit"])
def test_sandbox_unavailable_without_a_tool(monkeypatch, program):
    _without(monkeypatch, program)
    assert sandbox.available() is False


def test_sandbox_unavailable_with_bwrap_off_path(monkeypatch, tmp_path):
    """PATH holds setpriv and prlimit but no bwrap: the probe answers False without running it."""
    for name in ("setpriv", "prlimit"):
        found = shutil.which(name)
        if found is None:
            pytest.skip(f"{name} is not installed here")
        (tmp_path / name).symlink_to(found)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert shutil.which("bwrap") is None
    assert sandbox.available() is False


def test_grade_refuses_without_sandbox_before_writing(monkeypatch, tmp_path):
    _without(monkeypatch, "bwrap")
    submissions, out = tmp_path / "submissions", tmp_path / "out"
    (submissions / "ada").mkdir(parents=True)
    with pytest.raises(classgrade.GradingRefused, match="--no-sandbox") as refused:
        classgrade.grade_class("01_mlops_paradigm", submissions, out, use_sandbox=True)
    assert "\n" not in str(refused.value) and str(refused.value).endswith(".")
    assert not out.exists(), f"the grader wrote {sorted(out.rglob('*'))} before refusing"
    assert sorted(os.listdir(tmp_path)) == ["submissions"]


@pytest.mark.parametrize("module", OUTSIDE_CHECKS, ids=lambda p: p.stem)
def test_outside_checks_are_named_after_test_cells(module: Path):
    assignment = module.stem
    assert assignment in ASSIGNMENTS, f"{module.name} belongs to no solution notebook"
    grade_ids = grade_ids_of(assignment)
    checks = outside.load(assignment, grade_ids)
    tree = ast.parse(module.read_text())
    defined = {
        node.name
        for node in tree.body
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")
    }
    assert defined, f"{module.name} defines no check"
    assert set(checks) == defined, "outside.load did not return every check of the module"
    assert set(checks) <= grade_ids, (
        f"checks {sorted(set(checks) - grade_ids)} of {module.name} name no test cell of "
        f"{assignment} ({sorted(grade_ids)})"
    )
    for name, check in checks.items():
        assert list(inspect.signature(check).parameters) == ["workdir"], name


@pytest.fixture
def checks_folder(monkeypatch, tmp_path) -> Path:
    monkeypatch.setattr(paths, "outside_checks_dir", lambda: tmp_path)
    return tmp_path


def test_misspelled_outside_check_is_refused(checks_folder):
    assignment = "01_mlops_paradigm"
    (checks_folder / f"{assignment}.py").write_text(
        "def test_record_baseline_run(workdir):\n    pass\n\n\n"
        "def test_promote_if_beter(workdir):\n    pass\n"
    )
    with pytest.raises(outside.OutsideCheckMisnamed) as misnamed:
        outside.load(assignment, grade_ids_of(assignment))
    message = str(misnamed.value)
    assert "test_promote_if_beter" in message and f"{assignment}.py" in message
    assert "found test_promote_if_beter." in message, "a correct name was reported as unknown"


def test_outside_checks_from_the_patched_folder(checks_folder):
    """The control of the test above: the same folder with correct names loads."""
    assignment = "01_mlops_paradigm"
    (checks_folder / f"{assignment}.py").write_text(
        "def test_promote_if_better(workdir):\n    pass\n"
    )
    assert list(outside.load(assignment, grade_ids_of(assignment))) == ["test_promote_if_better"]
    assert outside.load("00_start_here", grade_ids_of("00_start_here")) == {}  # no module there
