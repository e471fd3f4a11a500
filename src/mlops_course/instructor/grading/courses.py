"""nbgrader courses: the course's own (``grading/``) and throw-away ones derived from it.

Every nbgrader setting lives in ``grading/nbgrader_config.py``. A throw-away course (the
three-way grading tests, ``make bench-grading``, each worker of class grading) is a folder
whose ``nbgrader_config.py`` names the folder as the course root (``MLOPS_COURSE_NBGRADER_ROOT``)
and then loads the course's configuration, which gives it nbgrader's default folder names (``source/``, ``release/``,
``submitted/``, ``autograded/``, ``feedback/``, ``gradebook.db``). :func:`make_course` writes it;
a copy of such a folder (:func:`copy_course`) is a course of its own.

:func:`nbgrader` is the one way the package runs nbgrader: as a subprocess, in the course's
folder, with the course's environment (nbgrader shells out to ``alembic`` for its gradebook,
so the environment's ``bin`` must be on ``PATH``) and without the caller's tracking URI (each
submission must get a store of its own).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from mlops_course import environment, paths
from mlops_course.runtime.errors import CourseError

__all__ = [
    "GradingError",
    "copy_course",
    "make_course",
    "nbgrader",
    "release_notebook",
    "source_notebook",
]

ROOT_VARIABLE = "MLOPS_COURSE_NBGRADER_ROOT"  # read by grading/nbgrader_config.py
DERIVED_CONFIG = """\
# A throw-away nbgrader course derived from the course's configuration (written by
# mlops_course.instructor.grading.courses.make_course): this folder is its root.
import os
from pathlib import Path

os.environ[{variable!r}] = str(Path(__file__).resolve().parent)
load_subconfig({config!r})
"""


class GradingError(CourseError, RuntimeError):
    """An nbgrader step failed; the message carries the tail of nbgrader's log."""


def nbgrader(
    course: Path,
    *args: str,
    timeout: float = 1800,
    env: Mapping[str, str] | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``nbgrader <args>`` in ``course`` (where its nbgrader_config.py lives).

    ``env`` adds variables to the course's environment. With ``check`` (the default), a
    non-zero exit raises :class:`GradingError` with the tail of nbgrader's log.
    """
    run_env = environment.child_env(env)
    run_env.pop("MLFLOW_TRACKING_URI", None)  # each submission must get its own store
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-25:])
        raise GradingError(f"`nbgrader {' '.join(args)}` failed in {course}:\n{tail}")
    return result


def make_course(folder: Path, assignments: Iterable[str]) -> Path:
    """A throw-away nbgrader course in ``folder`` whose sources are the course's solutions.

    Only the notebooks are copied: running a solution in place leaves stores and answer files
    beside it, which must never reach a release.
    """
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    for assignment in assignments:
        target = folder / "source" / assignment
        target.mkdir(parents=True, exist_ok=True)
        for notebook in (paths.solutions_dir() / assignment).glob("*.ipynb"):
            shutil.copyfile(notebook, target / notebook.name)
    config = DERIVED_CONFIG.format(variable=ROOT_VARIABLE, config=str(paths.nbgrader_config()))
    (folder / "nbgrader_config.py").write_text(config)
    return folder


def copy_course(course: Path, target: Path) -> Path:
    """A copy of a derived course, gradebook included, that is a course of its own."""
    shutil.copytree(course, target)
    return target


def source_notebook(course: Path, assignment: str) -> Path:
    """The instructor notebook of ``assignment`` in a derived course."""
    return Path(course) / "source" / assignment / f"{assignment}.ipynb"


def release_notebook(course: Path, assignment: str) -> Path:
    """The student notebook ``generate_assignment`` writes in a derived course."""
    return Path(course) / "release" / assignment / f"{assignment}.ipynb"
