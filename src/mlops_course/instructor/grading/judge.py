"""The trusted judge: hidden tests run in the grader's process, never in the student's kernel.

:class:`TrustedExecute` replaces nbgrader's ``Execute`` preprocessor when ``mlops-course grade``
autogrades (``grading/nbgrader_config.py`` switches it on with the sandbox policy). For every
cell of a submission, in order:

- an ordinary cell (the student's answers, the instructor's code) runs in the sandboxed kernel;
- a test cell's **visible** part runs in the kernel too, for the student's feedback, but its
  hidden part is never sent there (so no history, file or transformer in the kernel ever
  sees it);
- then the test's **hidden** part, taken from the instructor's source notebook, runs here in
  a namespace of the judge's own: the cells tagged ``shared`` in the source (imports,
  constants, pure helpers), ``checks``, ``student`` and ``course``, with MLflow pointed at the
  submission's store. ``student.value/call/evaluate/assign`` reach the kernel through a
  data-only channel (:mod:`mlops_course.runtime.student`, :mod:`mlops_course.runtime.wire`).

The cell's points are decided by the hidden part alone: its verdict is written as the cell's
first output (an error when it failed), and everything the kernel printed follows as plain
text, so nothing the kernel does can add or keep points (nbgrader scores a cell from its
outputs). Each hidden test has a time limit; a student function that hangs or raises fails
that test alone; a dead kernel fails every later test. A record per submission
(``<records>/judge/<assignment>/<student>.json``) tells class grading what happened.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import re
import textwrap
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbgrader.preprocessors import Execute
from traitlets import Integer

from mlops_course import paths
from mlops_course.instructor.grading.channel import KernelChannel
from mlops_course.runtime import checks, student, wire
from mlops_course.runtime.errors import CourseError
from mlops_course.runtime.session import CourseContext, store_uri

__all__ = ["HIDDEN_BLOCK", "SHARED_TAG", "TrustedExecute", "hidden_part", "visible_part"]

HIDDEN_BLOCK = re.compile(
    r"^[ \t]*### BEGIN HIDDEN TESTS.*?^[ \t]*### END HIDDEN TESTS[ \t]*\n?", re.S | re.M
)
SHARED_TAG = "shared"
ROOT_VARIABLE = "MLOPS_COURSE_NBGRADER_ROOT"
POLICY_VARIABLE = "MLOPS_COURSE_SANDBOX"


def hidden_part(source: str) -> str:
    """The code between the HIDDEN TESTS markers of a test cell (empty when there is none)."""
    blocks = HIDDEN_BLOCK.findall(source)
    return "\n".join(textwrap.dedent("\n".join(block.splitlines()[1:-1])) for block in blocks)


def visible_part(source: str) -> str:
    """A test cell without its hidden blocks: what the student's kernel is allowed to run."""
    return HIDDEN_BLOCK.sub("", source)


class HiddenTestFailed(CourseError):
    """A hidden test found a wrong answer (its message is the one sentence shown)."""


class TrustedExecute(Execute):
    """nbgrader's Execute, with every test cell's hidden part judged outside the kernel."""

    hidden_test_timeout = Integer(
        120, help="Seconds one hidden test may take, calls into the kernel included."
    ).tag(config=True)
    output_limit = Integer(
        2_000_000, help="Characters of output kept per cell; the rest is dropped."
    ).tag(config=True)

    # ------------------------------------------------------------------ the whole notebook

    def preprocess(self, nb, resources=None, km=None):
        resources = resources if resources is not None else {}
        self.kernel_dead = False
        self._sizes: dict[int, int] = {}
        self._verdicts: dict[str, dict] = {}
        self._workdir = Path(resources.get("metadata", {}).get("path") or os.getcwd()).resolve()
        self._assignment = resources.get("nbgrader", {}).get("assignment", "")
        self._source = self._source_notebook(resources)
        self._namespace = None
        policy = json.loads(os.environ.get(POLICY_VARIABLE) or "{}")
        self._records = Path(policy.get("records") or self._workdir.parent)
        self._student_id = resources.get("nbgrader", {}).get("student", "student")
        self._assignment = resources.get("nbgrader", {}).get("assignment", "assignment")
        self._channel = KernelChannel(self, self._workdir, self._records, self._student_id)
        previous_uri = os.environ.get("MLFLOW_TRACKING_URI")
        student.use(self._channel)
        self._hide_tests_on_disk(nb, resources)
        try:
            return super().preprocess(nb, resources, km)
        finally:
            student.use(None)
            if previous_uri is None:
                os.environ.pop("MLFLOW_TRACKING_URI", None)
            else:
                os.environ["MLFLOW_TRACKING_URI"] = previous_uri
            self._write_record(resources)

    def _hide_tests_on_disk(self, nb: nbformat.NotebookNode, resources: dict) -> None:
        """Rewrite the notebook file in the kernel's folder without hidden tests.

        nbgrader's first pass writes the submission into the autograded folder with the test
        cells restored from the source, hidden blocks included, and the kernel runs in that
        folder: left there, any cell could read the hidden tests (and print them into the
        feedback). nbgrader writes the graded notebook over this file once the kernel is gone.
        """
        name = resources.get("nbgrader", {}).get("notebook", "")
        path = self._workdir / f"{name}.ipynb"
        if not name or not path.is_file():
            return
        visible = copy.deepcopy(nb)
        for cell in visible.cells:
            if cell.cell_type == "code":
                cell.source = visible_part(cell.source)
        partial = path.with_name(f".{path.name}.visible")
        nbformat.write(visible, partial)
        partial.replace(path)

    def _source_notebook(self, resources: dict) -> nbformat.NotebookNode:
        """The instructor's notebook of this assignment: the hidden tests and shared cells."""
        info = resources.get("nbgrader", {})
        root = Path(os.environ.get(ROOT_VARIABLE) or ".")
        path = root / "source" / info.get("assignment", "") / f"{info.get('notebook', '')}.ipynb"
        if not path.is_file():
            raise CourseError(f"Expected the source notebook at {path}, found no such file.")
        return nbformat.read(path, as_version=4)

    def _source_tests(self) -> dict[str, str]:
        return {
            cell.metadata["nbgrader"]["grade_id"]: hidden_part(cell.source)
            for cell in self._source.cells
            if cell.metadata.get("nbgrader", {}).get("grade") and cell.cell_type == "code"
        }

    def _trusted_namespace(self) -> dict:
        """The names hidden tests may use: shared cells of the source, the interface, course."""
        import mlflow

        uri = store_uri(self._workdir)
        os.environ["MLFLOW_TRACKING_URI"] = uri
        mlflow.set_tracking_uri(uri)
        namespace: dict[str, Any] = {
            "__name__": "__hidden_tests__",
            "checks": checks,
            "student": student,
        }
        for cell in self._source.cells:
            tags = cell.metadata.get("tags", [])
            if cell.cell_type == "code" and (SHARED_TAG in tags or "parameters" in tags):
                with contextlib.redirect_stdout(io.StringIO()):
                    exec(compile(cell.source, "<shared cell>", "exec"), namespace)
        namespace["course"] = CourseContext(
            notebook=self._assignment,
            workdir=self._workdir,
            tracking_uri=uri,
            isolated_store=True,
            data_dir=paths.data_cache(),
            seed=int(namespace.get("SEED", 42)),
        )
        return namespace

    # ------------------------------------------------------------------ one cell

    def preprocess_cell(self, cell, resources, index):
        info = cell.metadata.get("nbgrader", {})
        is_test = cell.cell_type == "code" and info.get("grade") and not info.get("solution")
        if not is_test:
            if not self.kernel_dead:
                self._execute(cell, resources, index)
            return cell, self.resources
        full_source = cell.source
        cell.source = visible_part(full_source)
        if not self.kernel_dead:
            self._execute(cell, resources, index)
        cell.source = full_source
        verdict = self._judge(info.get("grade_id", ""))
        cell.outputs = self._compose(verdict, cell.get("outputs", []))
        return cell, self.resources

    def _execute(self, cell, resources, index) -> None:
        try:
            super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self.kernel_dead = True
            cell.outputs = [
                nbformat.v4.new_output(
                    "stream", name="stdout", text="[The kernel died while this cell ran.]\n"
                )
            ]

    def run_in_kernel(self, code: str, timeout: float) -> list:
        """Run channel code in the kernel (not stored in its history); the answers it showed."""
        probe = nbformat.v4.new_code_cell(code)
        index = len(self.nb.cells) - 1
        original, saved_timeout = self.nb.cells[index], self.timeout
        self.timeout = int(timeout)
        try:
            self.execute_cell(probe, index, store_history=False)
        except CellTimeoutError as error:
            raise TimeoutError(f"your notebook did not answer within {int(timeout)} s") from error
        except DeadKernelError:
            self.kernel_dead = True
            raise
        finally:
            self.nb.cells[index] = original
            self.timeout = saved_timeout
        if any(out.get("ename") == "CellTimeoutError" for out in probe.get("outputs", [])):
            raise TimeoutError(f"your notebook did not answer within {int(timeout)} s")
        return [
            out.get("data", {}).get(wire.MIME_TYPE)
            for out in probe.get("outputs", [])
            if out.get("output_type") == "display_data"
        ]

    def _judge(self, grade_id: str) -> dict:
        """Run the source's hidden part of ``grade_id`` here; the verdict and what it printed."""
        started = time.monotonic()
        hidden = self._source_tests().get(grade_id, "")
        printed = io.StringIO()
        verdict: dict[str, Any] = {"grade_id": grade_id, "passed": False, "message": ""}
        try:
            if not hidden.strip():
                raise HiddenTestFailed(
                    f"Expected hidden tests for {grade_id} in the source notebook, found none."
                )
            if self.kernel_dead:
                raise HiddenTestFailed("The kernel died before this test, so it could not run.")
            if self._namespace is None:
                self._namespace = self._trusted_namespace()
            self._channel.deadline = started + self.hidden_test_timeout
            with contextlib.redirect_stdout(printed):
                exec(compile(hidden, f"<hidden tests of {grade_id}>", "exec"), self._namespace)
            verdict["passed"] = True
        except DeadKernelError:
            verdict["message"] = "The kernel died while this test used it."
        except TimeoutError as error:
            verdict["message"] = f"This test took too long: {error}."
        except (CourseError, AssertionError) as error:
            verdict["message"] = str(error).strip() or f"{type(error).__name__} in the checks."
        except Exception as error:  # noqa: BLE001 - any failure of a hidden test costs the cell
            verdict["message"] = (
                f"The test could not check your answer: {type(error).__name__}: {error}"
            )
        self._channel.hand_back()  # before the kernel runs its next cell
        verdict["seconds"] = round(time.monotonic() - started, 2)
        verdict["printed"] = printed.getvalue()[-5000:]
        self._verdicts[grade_id] = verdict
        return verdict

    def _compose(self, verdict: dict, kernel_outputs: list) -> list:
        """The cell's outputs: the verdict first, then what the kernel showed, as plain text."""
        outputs = []
        if verdict["passed"]:
            text = verdict["printed"] + "Graded outside your kernel: passed.\n"
            outputs.append(nbformat.v4.new_output("stream", name="stdout", text=text))
        else:
            if verdict["printed"]:
                outputs.append(
                    nbformat.v4.new_output("stream", name="stdout", text=verdict["printed"])
                )
            message = verdict["message"].splitlines()[0] if verdict["message"] else "failed"
            outputs.append(
                nbformat.v4.new_output(
                    "error", ename="HiddenTestFailed", evalue=message, traceback=[message]
                )
            )
        shown = _as_text(kernel_outputs)
        if shown:
            note = "--- what your kernel printed for the visible checks ---\n"
            outputs.append(nbformat.v4.new_output("stream", name="stdout", text=note + shown))
        return outputs

    # ------------------------------------------------------------------ output limits

    def output(self, outs, msg, display_id, cell_index):
        size = len(json.dumps(msg.get("content", {}), default=str))
        total = self._sizes.get(id(outs), 0) + size
        self._sizes[id(outs)] = total
        if total > self.output_limit:
            if total - size <= self.output_limit:
                outs.append(
                    nbformat.v4.new_output(
                        "stream", name="stdout", text="[output truncated by the grader]\n"
                    )
                )
            return None
        return super().output(outs, msg, display_id, cell_index)

    # ------------------------------------------------------------------ the record

    def _write_record(self, resources: dict) -> None:
        folder = self._records / "judge" / self._assignment
        folder.mkdir(parents=True, exist_ok=True)
        record = {"kernel_died": self.kernel_dead, "verdicts": self._verdicts}
        (folder / f"{self._student_id}.json").write_text(json.dumps(record, indent=2))


def _as_text(outputs: list) -> str:
    """Everything a list of kernel outputs showed, as text (errors and stderr included)."""
    parts = []
    for output in outputs:
        kind = output.get("output_type")
        if kind == "stream":
            parts.append(output.get("text", ""))
        elif kind == "error":
            parts.append(f"{output.get('ename', 'Error')}: {output.get('evalue', '')}\n")
        elif kind in ("execute_result", "display_data"):
            text = output.get("data", {}).get("text/plain")
            if text:
                parts.append(("".join(text) if isinstance(text, list) else text) + "\n")
    return "".join(parts)[-20000:]
