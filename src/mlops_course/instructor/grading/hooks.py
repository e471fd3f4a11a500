"""The nbgrader preprocessor class grading adds to feedback (``grading/nbgrader_config.py``).

:class:`StripTracebacks`: feedback shows what failed, never the code around it (which may be a
hidden test). The judge itself is :mod:`mlops_course.instructor.grading.judge`.
"""

from __future__ import annotations

import re

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

__all__ = ["PRINTED_TRACEBACK", "StripTracebacks"]

# A traceback printed as text: its header and the indented frame lines (the final
# "Error: message" line stays).
PRINTED_TRACEBACK = re.compile(r"Traceback \(most recent call last\):\n(?:[ \t].*(?:\n|$))*")


class StripTracebacks(Preprocessor):
    """Feedback shows what failed, never the code around it (which may be a hidden test)."""

    enabled = Bool(True)

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                output.traceback = [f"{output.ename}: {output.evalue}"]
            elif output.output_type == "stream":
                # A library's log may print a traceback as text (MLflow logs SQLAlchemy's).
                output.text = PRINTED_TRACEBACK.sub(
                    "[traceback removed by the grader]\n", output.text
                )
        return cell, resources
