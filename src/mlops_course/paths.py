"""Where the course's files are: the repository, its folders, and the defaults for logs and data.

Every other module asks here, so there is one answer to "where is the repository?". The
package is installed editable from a clone (``make`` does it), so the repository is the folder
two levels above ``src/mlops_course``; it is recognised by its ``solutions/`` folder and its
nbgrader configuration.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from mlops_course.runtime.errors import CourseError

__all__ = [
    "DATA_CACHE_VARIABLE",
    "build_dir",
    "data_cache",
    "find_repo",
    "fixtures_dir",
    "grading_dir",
    "log_dir",
    "nbgrader_config",
    "release_dir",
    "repo_root",
    "solution_notebooks",
    "solutions_dir",
    "walkthrough",
]

DATA_CACHE_VARIABLE = "MLOPS_COURSE_DATA_CACHE"
WALKTHROUGHS = ("aws", "azure", "gcp")


def _checkout() -> Path:
    """The folder two levels above the package: the clone, when installed editable from one."""
    return Path(__file__).resolve().parents[2]


def find_repo() -> Path | None:
    """The course repository this package was installed from, or None (installed elsewhere, or
    inside the grading sandbox, which hides the instructor's folders)."""
    candidate = _checkout()
    if (candidate / "solutions").is_dir() and (
        candidate / "grading" / "nbgrader_config.py"
    ).is_file():
        return candidate
    return None


def repo_root() -> Path:
    """The course repository; one clear sentence when the package was not installed from it."""
    root = find_repo()
    if root is None:
        raise CourseError(
            f"Expected the course repository around {_checkout()}, found no "
            "solutions/ and grading/ folders there; install the package editable from a clone "
            "(`make course` does this)."
        )
    return root


def solutions_dir() -> Path:
    """``solutions/``: the instructor notebooks, the single source of truth."""
    return repo_root() / "solutions"


def solution_notebooks(only: Iterable[str] = ()) -> list[Path]:
    """The course's notebooks ``solutions/<stem>/<stem>.ipynb`` in course order; ``only`` keeps
    those whose stem starts with one of the given prefixes (``["01", "08_aws"]``)."""
    found = sorted(p for p in solutions_dir().glob("*/*.ipynb") if p.stem == p.parent.name)
    wanted = list(only)
    if not wanted:
        return found
    missing = [w for w in wanted if not any(p.stem.startswith(w) for p in found)]
    if missing:
        names = ", ".join(p.stem for p in found)
        raise CourseError(f"Expected notebooks matching {', '.join(missing)}, found only: {names}.")
    return [p for p in found if any(p.stem.startswith(w) for w in wanted)]


def release_dir() -> Path:
    """``notebooks/``: the student release, generated from ``solutions/``."""
    return repo_root() / "notebooks"


def grading_dir() -> Path:
    """``grading/``: nbgrader's configuration, the wrong-answer fixtures, the grading bench."""
    return repo_root() / "grading"


def nbgrader_config() -> Path:
    """``grading/nbgrader_config.py``: the one place for nbgrader settings."""
    return grading_dir() / "nbgrader_config.py"


def fixtures_dir(assignment: str) -> Path:
    """``grading/fixtures/<assignment>/``: the assignment's wrong-answer fixtures."""
    return grading_dir() / "fixtures" / assignment


def build_dir() -> Path:
    """``build/``: everything the course's commands write (git ignores it)."""
    return repo_root() / "build"


def walkthrough(cloud: str) -> Path:
    """``walkthroughs/<cloud>/``: the files of a cloud walkthrough (``aws``, ``azure``, ``gcp``)."""
    if cloud not in WALKTHROUGHS:
        raise CourseError(
            f"Expected a walkthrough among {', '.join(WALKTHROUGHS)}, found {cloud!r}."
        )
    # Not through repo_root(): the grading sandbox shows the walkthroughs but hides solutions/.
    folder = _checkout() / "walkthroughs" / cloud
    if not folder.is_dir():
        raise CourseError(f"Expected the {cloud} walkthrough in {folder}, found no such folder.")
    return folder


def data_cache() -> Path:
    """Where downloads are kept: ``$MLOPS_COURSE_DATA_CACHE``, the repository's ``data/``, or
    ``~/.cache/mlops-course`` when the package is installed outside a clone."""
    if os.environ.get(DATA_CACHE_VARIABLE):
        return Path(os.environ[DATA_CACHE_VARIABLE]).expanduser()
    root = find_repo()
    return root / "data" if root is not None else Path.home() / ".cache" / "mlops-course"


def log_dir(given: Path | str | None = None) -> Path:
    """The folder server logs go to: ``given``, else ``./logs`` of the working folder (the
    notebook's own folder, next to its store)."""
    return Path(given) if given else Path.cwd() / "logs"
