"""Checks run outside the student's kernel, after it stopped: ``grading/outside_checks/<assignment>.py``.

A module there defines ``test_<id>(workdir)`` functions named like the assignment's test
cells; each reads the submission's folder (its MLflow store, its files) and raises with a
one-sentence message when the evidence is missing. A test cell that passed in the kernel but
fails its outside check scores zero. A function whose name is not a test cell of the
assignment is refused, so a typo cannot switch a check off.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable
from pathlib import Path

from mlops_course import paths
from mlops_course.runtime.errors import CourseError

__all__ = ["OutsideCheckMisnamed", "load", "run"]

Check = Callable[[Path], None]


class OutsideCheckMisnamed(CourseError):
    """An outside check is named after no test cell of its assignment."""


def load(assignment: str, grade_ids: Iterable[str]) -> dict[str, Check]:
    """The outside checks of ``assignment`` by grade id (none when it has no module)."""
    path = paths.outside_checks_dir() / f"{assignment}.py"
    if not path.exists():
        return {}
    spec = importlib.util.spec_from_file_location(f"outside_checks_{assignment}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    checks = {name: getattr(module, name) for name in dir(module) if name.startswith("test_")}
    unknown = sorted(set(checks) - set(grade_ids))
    if unknown:
        raise OutsideCheckMisnamed(
            f"Expected the checks in {path.name} to be named after test cells of {assignment} "
            f"({', '.join(sorted(grade_ids))}), found {', '.join(unknown)}."
        )
    return checks


def run(checks: dict[str, Check], workdir: Path, passed: set[str]) -> dict[str, str]:
    """Run the checks of the cells that passed in the kernel; return the failures by grade id."""
    failures = {}
    for grade_id in sorted(passed & set(checks)):
        try:
            checks[grade_id](workdir)
        except Exception as error:  # noqa: BLE001 - a failed check of any kind costs the cell
            failures[grade_id] = str(error).splitlines()[0] if str(error) else type(error).__name__
    return failures
