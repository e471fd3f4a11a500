"""nbgrader preprocessors that class grading adds (configured in ``grading/nbgrader_config.py``).

- :class:`InjectCanary` and :class:`CheckCanary`: every test cell prints a secret only the
  grader knows; a test cell whose secret did not print did not run as written (the kernel was
  altered), and scores zero.
- :class:`StripTracebacks`: feedback shows what failed, never the code around it (which may be
  a hidden test).
"""

from __future__ import annotations

import os

import nbformat
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

__all__ = ["CANARY_VARIABLE", "TAMPER_KEY", "CheckCanary", "InjectCanary", "StripTracebacks"]

CANARY_VARIABLE = "MLOPS_COURSE_CANARY"
TAMPER_KEY = "mlops_course_tampered"


class InjectCanary(Preprocessor):
    """Prepend a line to every test cell that prints a secret only the grader knows."""

    enabled = Bool(True)  # nbconvert preprocessors are off unless enabled

    def preprocess_cell(self, cell, resources, index):
        nonce = os.environ.get(CANARY_VARIABLE)
        if nonce and cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            cell.source = f'print("{nonce}")\n' + cell.source
        return cell, resources


class CheckCanary(Preprocessor):
    """After execution: a test cell whose canary did not print did not run as written."""

    enabled = Bool(True)

    def preprocess_cell(self, cell, resources, index):
        nonce = os.environ.get(CANARY_VARIABLE)
        if not (
            nonce and cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade")
        ):
            return cell, resources
        cell.source = cell.source.replace(f'print("{nonce}")\n', "", 1)
        seen = False
        for output in cell.outputs:
            if output.output_type == "stream" and nonce in output.text:
                seen = True
                output.text = output.text.replace(nonce + "\n", "", 1)
        cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and o.text == "")]
        ran = any(o.output_type == "error" for o in cell.outputs) or seen
        if not seen and not ran:
            cell.metadata[TAMPER_KEY] = True
            cell.outputs = [
                nbformat.v4.new_output(
                    "error",
                    ename="TamperingDetected",
                    evalue="this test cell did not run as written: the kernel was altered",
                    traceback=["TamperingDetected: this test cell did not run as written"],
                )
            ]
        return cell, resources


class StripTracebacks(Preprocessor):
    """Feedback shows what failed, never the code around it (which may be a hidden test)."""

    enabled = Bool(True)

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources
