"""Helpers for the notebook course "MLOps through cloud services".

The package has two rooms, named after who uses them:

- :mod:`mlops_course.runtime`: what the notebooks import (the start call, store checks,
  datasets, servers, the cloud twins). ``mlops_course.start`` is the start call.
- :mod:`mlops_course.instructor`: what instructors and CI run (``mlops-course`` commands:
  executing the course, building nbgrader courses, class grading in a sandbox, the class
  tracking server).

Both use :mod:`mlops_course.paths` (where the repository and its folders are) and
:mod:`mlops_course.environment` (the variables the course sets). Importing the package
imports no heavy library: MLflow, pandas and the cloud SDKs load when a function needs them.
"""

from mlops_course.runtime.session import CourseContext, start

__all__ = ["CourseContext", "__version__", "start"]


def __getattr__(name: str) -> str:
    # The version comes from the package metadata (pyproject.toml is its one source), read on
    # first use: importlib.metadata costs tens of milliseconds at import.
    if name == "__version__":
        from importlib import metadata

        return metadata.version("mlops-course")
    raise AttributeError(f"module 'mlops_course' has no attribute {name!r}")
