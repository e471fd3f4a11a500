"""Helpers for the notebook course "MLOps through cloud services".

One module per responsibility: ``setup`` (the call at the top of each notebook),
``data`` (external datasets), ``servers`` (processes the course starts),
``evidence`` (reading what a notebook left in the MLflow store),
``execution`` (running notebooks headless) and ``grading`` (nbgrader).
"""

__version__ = "0.1.0"

from mlops_course.setup import CourseContext, start

__all__ = ["CourseContext", "start", "__version__"]
