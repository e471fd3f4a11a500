"""The environment variables the course sets, in one place.

- ``MLFLOW_DISABLE_TELEMETRY=true``: MLflow 3 reports usage over the network by default; the
  course runs offline and sends nothing.
- ``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``: ``mlflow server`` otherwise starts a job runner
  that costs seconds at start-up and memory; the course never schedules jobs.

They are applied to this process by :func:`apply` (the start call of a notebook, the command
line, the test suite), written into the course kernel's spec, and given to every process the
course starts through :func:`child_env`, which also puts the environment's ``bin`` first on
``PATH`` (``mlflow models serve`` looks for ``uvicorn`` there, nbgrader for ``alembic``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path

__all__ = ["COURSE_VARIABLES", "apply", "child_env", "environment_bin"]

COURSE_VARIABLES: dict[str, str] = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
}


def environment_bin() -> str:
    """The ``bin`` folder of the running Python environment."""
    return str(Path(sys.executable).parent)


def apply(environ: MutableMapping[str, str] | None = None) -> None:
    """Set the course's variables in ``environ`` (default: this process's environment)."""
    target = os.environ if environ is None else environ
    target.update(COURSE_VARIABLES)


def child_env(
    extra: Mapping[str, str] | None = None, *, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment for a process the course starts: ``base`` (default: this process's),
    the course's variables, the environment's ``bin`` first on ``PATH``, unbuffered output,
    then ``extra``."""
    env = dict(os.environ if base is None else base)
    apply(env)
    env["PATH"] = environment_bin() + os.pathsep + env.get("PATH", "")
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update(extra or {})
    return env
