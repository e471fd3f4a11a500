"""The nbgrader preprocessor class grading adds to feedback (``grading/nbgrader_config.py``).

:class:`StripTracebacks`: feedback shows what failed, never the code around it (which may be a
hidden test). The judge itself is :mod:`mlops_course.instructor.grading.judge`.
"""

from __future__ import annotations

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

__all__ = ["StripTracebacks"]


class StripTracebacks(Preprocessor):
    """Feedback shows what failed, never the code around it (which may be a hidden test)."""

    enabled = Bool(True)

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources
