"""The grading tools that need no nbgrader run: the sandbox probe, the grader's refusals and
the fixture catalogue."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from mlops_course.instructor.grading import classgrade, fixtures, sandbox


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


def _fixture_folder(tmp_path, monkeypatch, specs: dict[str, dict]) -> str:
    folder = tmp_path / "fixtures" / "99_demo"
    folder.mkdir(parents=True)
    for name, spec in specs.items():
        (folder / f"{name}.json").write_text(json.dumps(spec))
    monkeypatch.setattr(fixtures.paths, "fixtures_dir", lambda assignment: folder)
    return "99_demo"


def test_catalogue_splits_a_bundle_by_cell(tmp_path, monkeypatch):
    assignment = _fixture_folder(
        tmp_path,
        monkeypatch,
        {
            "bundle": {
                "description": "gate: promotes ties; best_run: picks the minimum",
                "replace": {"gate": "pass", "best_run": "pass"},
                "loses": ["test_gate", "test_best_run"],
            },
            "other_way": {
                "description": "correct alternative: the fluent API",
                "replace": {"gate": "pass"},
                "loses": [],
            },
        },
    )
    table = fixtures.catalogue(assignment, {"test_gate": 3, "test_best_run": 2})
    assert "| test_gate | 3 | bundle | promotes ties |" in table
    assert "| test_best_run | 2 | bundle | picks the minimum |" in table
    assert "| (all) | | other_way | accepted: the fluent API |" in table


def test_a_fixture_that_loses_nothing_must_say_it_is_right(tmp_path, monkeypatch):
    assignment = _fixture_folder(
        tmp_path,
        monkeypatch,
        {"silent": {"description": "forgets the alias", "replace": {"gate": "pass"}, "loses": []}},
    )
    with pytest.raises(ValueError, match="correct alternative"):
        fixtures.fixtures(assignment)
