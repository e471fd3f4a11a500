"""The one call at the top of every notebook: versions, an isolated tracking store, seeds, paths.

``mlops_course.start`` is this module's :func:`start`.

The store lives in the folder the notebook runs in (Jupyter, papermill and
nbgrader all run a notebook from its own folder), so a solution, a student's
copy and each submission in an nbgrader course get stores of their own without
any ``../..`` path. ``MLFLOW_TRACKING_URI``, when the user sets it, wins.
"""

from __future__ import annotations

import os
import platform
import random
import sys
from dataclasses import dataclass
from pathlib import Path

from mlops_course import environment, paths
from mlops_course.runtime.errors import CourseError, show_without_traceback

__all__ = ["STORE_DB", "CourseContext", "start", "store_uri"]

STORE_DB = "mlflow.db"
# MLflow's own default for a local store: artifacts go to ./mlruns of the working folder.
STORE_ARTIFACTS = "mlruns"
_OURS = "MLOPS_COURSE_OWN_TRACKING_URI"
SHOWN_PACKAGES = ("mlflow", "scikit-learn", "pandas", "numpy", "matplotlib")


@dataclass(frozen=True)
class CourseContext:
    """What a notebook needs to know about where it runs."""

    notebook: str
    workdir: Path
    tracking_uri: str
    isolated_store: bool
    data_dir: Path
    seed: int

    @property
    def artifacts_dir(self) -> Path:
        return self.workdir / STORE_ARTIFACTS

    def walkthrough(self, cloud: str) -> Path:
        """The files of a cloud walkthrough: ``walkthrough("aws")`` is ``walkthroughs/aws``."""
        return paths.walkthrough(cloud)


def store_uri(workdir: Path) -> str:
    """The SQLite tracking URI of the course's store in ``workdir``."""
    return f"sqlite:///{(Path(workdir) / STORE_DB).resolve()}"


def check_python() -> None:
    """Stop with one sentence unless this Python is one the package declares (``requires-python``)."""
    from importlib import metadata

    from packaging.specifiers import SpecifierSet

    required = metadata.metadata("mlops-course").get("Requires-Python") or ""
    found = platform.python_version()
    if required and found not in SpecifierSet(required):
        raise CourseError(
            f"Expected Python {required} (the course's requires-python), found {found}; "
            "choose the 'MLOps course' kernel."
        )


def package_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        return
    np.random.seed(seed)


def _stderr_to_stdout() -> None:
    """While nbgrader autogrades, send warnings and log lines to stdout.

    nbgrader scores a test cell that writes anything to stderr as failed, so a library
    warning (MLflow's "Creating a new experiment", a ConvergenceWarning) would cost a
    student points for a right answer. Students still see these lines, on stdout.
    """
    import logging

    previous = sys.stderr
    sys.stderr = sys.stdout
    loggers = [
        logging.getLogger(),
        *(logging.getLogger(n) for n in logging.root.manager.loggerDict),
    ]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and handler.stream is previous:
                handler.setStream(sys.stdout)


def start(notebook: str, *, seed: int = 42, quiet: bool = False) -> CourseContext:
    """Prepare a notebook run and return its :class:`CourseContext`.

    Prints the versions that matter, points MLflow at an isolated store in the
    working folder (unless ``MLFLOW_TRACKING_URI`` is set), and seeds Python's
    and NumPy's random generators.
    """
    check_python()
    environment.apply()
    workdir = Path.cwd().resolve()
    user_uri = os.environ.get("MLFLOW_TRACKING_URI")
    if user_uri and user_uri == os.environ.get(_OURS):
        user_uri = None  # set by an earlier start() in this kernel, not by the user
    tracking_uri = user_uri or store_uri(workdir)
    # Exported so that command-line tools started from the notebook use the same store.
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri
    if user_uri is None:
        os.environ[_OURS] = tracking_uri
    import mlflow  # after the variable is set, so every client in this kernel agrees

    mlflow.set_tracking_uri(tracking_uri)
    seed_everything(seed)
    show_without_traceback()
    if os.environ.get("NBGRADER_EXECUTION") == "autograde":
        _stderr_to_stdout()
    context = CourseContext(
        notebook=notebook,
        workdir=workdir,
        tracking_uri=tracking_uri,
        isolated_store=user_uri is None,
        data_dir=paths.data_cache(),
        seed=seed,
    )
    if not quiet:
        versions = ", ".join(f"{name} {package_version(name)}" for name in SHOWN_PACKAGES)
        print(f"{notebook}: Python {platform.python_version()}, {versions}")
        origin = (
            "isolated store in this folder"
            if context.isolated_store
            else "your MLFLOW_TRACKING_URI"
        )
        print(f"Tracking URI: {tracking_uri} ({origin}); random seed {seed}")
    return context
