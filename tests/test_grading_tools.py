"""The grading tools that need no nbgrader run: the sandbox probe and the grader's refusals."""

from __future__ import annotations

import os
import shutil

import pytest

from mlops_course.instructor.grading import classgrade, sandbox


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
