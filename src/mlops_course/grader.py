"""Grading a whole class: sandboxed, parallel, evidence-checked, with feedback that leaks nothing.

``mlops-course grade --assignment ID --submissions DIR --out DIR`` does, in order:

1. finds the submissions (nbgrader's ``DIR/<student>/<assignment>/<nb>.ipynb`` layout or a
   flat LMS export ``<student>_<anything>.ipynb``), sanitizes the student ids and sorts out
   the malformed, missing and tampered ones (deleted or edited test cells);
2. builds an nbgrader course for the assignment and one copy per worker, splits the
   submissions over the workers, and runs ``nbgrader autograde`` in each, in parallel, with
   every kernel in the sandbox of :mod:`mlops_course.sandbox` (no network, read-only system,
   limits, a deadline) and a canary in every test cell, so a kernel altered by the student
   cannot pass a test cell it did not run;
3. re-checks, from outside the kernel, the evidence that the assignment's exercises leave in
   the MLflow store or on disk (``grading/evidence/<assignment>.py``): a test cell that passed
   in the kernel while its evidence is missing scores zero;
4. writes ``OUT/grades.csv``, one feedback HTML per student (hidden tests and tracebacks
   removed) and ``OUT/summary.html`` (grade distribution, pass rate per exercise).
"""

from __future__ import annotations

import csv
import html
import importlib.util
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from mlops_course import grading, sandbox
from mlops_course.errors import CourseError
from mlops_course.servers import lean_mlflow_env

__all__ = ["CheckCanary", "GradeRow", "InjectCanary", "StripTracebacks", "discover", "grade_class"]

STATUSES = ("ok", "timeout", "crashed", "malformed", "tampered", "missing")
CANARY_VARIABLE = "MLOPS_COURSE_CANARY"
TAMPER_KEY = "mlops_course_tampered"
NETWORK_ERRORS = re.compile(
    r"Network is unreachable|Temporary failure in name resolution|Name or service not known|"
    r"Failed to establish a new connection|getaddrinfo failed|NameResolutionError"
)


class GradingRefused(CourseError):
    """The grade command cannot run as asked (the message says why and what to do)."""


# --------------------------------------------------------------------------- submissions


@dataclass
class Submission:
    student_id: str
    path: Path | None
    status: str = "ok"
    message: str = ""
    notes: list[str] = field(default_factory=list)


def sanitize(raw: str) -> str:
    """A student id safe for file names and nbgrader: letters, digits, '-' and '_'."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "_", raw.strip()).strip("_-")
    return cleaned[:64] or "student"


def discover(submissions: Path, assignment: str) -> list[Submission]:
    """Submissions in nbgrader's layout (student folders) or a flat LMS export."""
    if not submissions.is_dir():
        raise GradingRefused(f"Expected a folder of submissions at {submissions}, found none.")
    found: list[tuple[str, Path | None]] = []
    for entry in sorted(submissions.iterdir()):
        if entry.is_dir():
            notebooks = sorted((entry / assignment).glob("*.ipynb")) or sorted(
                entry.glob("*.ipynb")
            )
            found.append((entry.name, notebooks[0] if notebooks else None))
        elif entry.suffix == ".ipynb":
            found.append((entry.stem.split("_", 1)[0], entry))
    taken: set[str] = set()
    result = []
    for raw, path in found:
        student = sanitize(raw)
        base, n = student, 2
        while student in taken:  # two raw ids that sanitize alike stay apart
            student, n = f"{base}-{n}", n + 1
        taken.add(student)
        result.append(Submission(student, path))
    return result


def _grade_cells(notebook: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    return {
        cell.metadata["nbgrader"]["grade_id"]: cell
        for cell in notebook.cells
        if cell.metadata.get("nbgrader", {}).get("grade")
        and cell.metadata["nbgrader"].get("grade_id")
    }


def inspect(submission: Submission, release: nbformat.NotebookNode) -> None:
    """Sort out missing, malformed and tampered notebooks before anything runs."""
    if submission.path is None:
        submission.status, submission.message = (
            "missing",
            "No notebook was found in the submission.",
        )
        return
    try:
        notebook = nbformat.read(submission.path, as_version=4)
        nbformat.validate(notebook)
    except Exception as error:  # noqa: BLE001 - any unreadable file is "malformed"
        submission.status = "malformed"
        submission.message = f"The notebook is not valid notebook JSON ({type(error).__name__})."
        return
    expected, found = _grade_cells(release), _grade_cells(notebook)
    deleted = sorted(set(expected) - set(found))
    edited = sorted(g for g in expected if g in found and found[g].source != expected[g].source)
    if deleted:
        submission.notes.append(f"test cell(s) {', '.join(deleted)} deleted (scored zero)")
    if edited:
        submission.notes.append(
            f"test cell(s) {', '.join(edited)} edited (the original was restored and run)"
        )


# --------------------------------------------------------------------------- nbgrader hooks


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


# --------------------------------------------------------------------------- the course


GRADER_CONFIG = """
# Added by mlops_course.grader for class grading.
c.Execute.timeout = {timeout}
c.Execute.interrupt_on_timeout = True
c.Execute.kernel_manager_class = "mlops_course.sandbox.SandboxedKernelManager"
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput", "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec", "nbgrader.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata", "mlops_course.grader.InjectCanary",
]
c.Autograde.autograde_preprocessors = [
    "nbgrader.preprocessors.Execute", "mlops_course.grader.CheckCanary",
    "nbgrader.preprocessors.IgnorePattern", "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput", "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties", "nbgrader.preprocessors.CheckCellMetadata",
]
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades", "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "nbgrader.preprocessors.ClearHiddenTests", "mlops_course.grader.StripTracebacks",
]
"""


def _worker_course(base: Path, target: Path) -> Path:
    """A copy of the generated course with its own gradebook (workers never share a database)."""
    shutil.copytree(base, target)
    config = (target / "nbgrader_config.py").read_text().replace(str(base), str(target))
    (target / "nbgrader_config.py").write_text(config)
    return target


def _nbgrader(
    course: Path, env: dict[str, str], *args: str, timeout: float
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", *args],
        cwd=course,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# --------------------------------------------------------------------------- evidence


def load_evidence(repo: Path, assignment: str) -> dict[str, Callable[[Path], None]]:
    """Checks ``test_<id>(workdir)`` from ``grading/evidence/<assignment>.py`` (may be none)."""
    path = repo / "grading" / "evidence" / f"{assignment}.py"
    if not path.exists():
        return {}
    spec = importlib.util.spec_from_file_location(f"evidence_{assignment}", path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return {name: getattr(module, name) for name in dir(module) if name.startswith("test_")}


def _check_evidence(
    checks: dict[str, Callable[[Path], None]], workdir: Path, passed: set[str]
) -> dict[str, str]:
    """Run the outside checks for cells that passed in the kernel; return failures by cell."""
    failures = {}
    for grade_id in sorted(passed & set(checks)):
        try:
            checks[grade_id](workdir)
        except Exception as error:  # noqa: BLE001 - a failed check of any kind costs the cell
            failures[grade_id] = str(error).splitlines()[0] if str(error) else type(error).__name__
    return failures


# --------------------------------------------------------------------------- grading


@dataclass
class GradeRow:
    student_id: str
    assignment: str
    notebook: str
    score: float
    max_score: float
    status: str
    message: str
    cells: dict[str, float] = field(default_factory=dict)


def _outputs_text(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(
                output.get("text", "")
                if output.output_type == "stream"
                else f"{output.get('ename', '')}: {output.get('evalue', '')}"
            )
    return "\n".join(parts)


def grade_class(
    assignment: str,
    submissions: Path,
    out: Path,
    *,
    workers: int | None = None,
    timeout: int = 300,
    use_sandbox: bool = True,
    repo: Path | None = None,
    progress: Callable[[str], None] = print,
) -> list[GradeRow]:
    """Grade every submission of ``assignment`` in ``submissions``; write results to ``out``."""
    from mlops_course import execution

    repo = repo or execution.repo_root()
    if not (repo / "solutions" / assignment / f"{assignment}.ipynb").exists():
        known = ", ".join(p.stem for p in execution.discover(repo))
        raise GradingRefused(f"Expected an assignment named {assignment!r}, found only: {known}.")
    if use_sandbox and not sandbox.available():
        raise GradingRefused(
            "Sandboxed grading needs bubblewrap (bwrap), setpriv and prlimit, and bwrap could not run here: "
            "install it with `apt-get install bubblewrap`, or pass --no-sandbox to grade without isolation."
        )
    out = out.resolve()
    submissions = submissions.resolve()
    work = out / "work"
    if work.exists():
        shutil.rmtree(work)  # the grader's own scratch space from an earlier run
    work.mkdir(parents=True)
    started = time.monotonic()

    base = grading.build_course(work / "base", repo, [assignment])
    base_env = lean_mlflow_env()
    base_env.pop("MLFLOW_TRACKING_URI", None)
    generated = _nbgrader(base, base_env, "generate_assignment", assignment, "--force", timeout=600)
    if generated.returncode != 0:
        raise GradingRefused(
            f"nbgrader could not generate {assignment}: {generated.stderr.strip().splitlines()[-1:]}"
        )
    release = nbformat.read(grading.release_notebook(base, assignment), as_version=4)
    max_scores = {
        g: float(c.metadata["nbgrader"].get("points", 0)) for g, c in _grade_cells(release).items()
    }
    total = sum(max_scores.values())

    found = discover(submissions, assignment)
    for submission in found:
        inspect(submission, release)
    runnable = [s for s in found if s.status == "ok"]
    progress(
        f"{len(found)} submission(s) of {assignment}; {len(runnable)} to run on "
        f"{workers or os.cpu_count()} worker(s){' in the sandbox' if use_sandbox else ' WITHOUT sandbox'}"
    )

    n_workers = max(1, min(workers or os.cpu_count() or 1, len(runnable) or 1))
    courses = [_worker_course(base, work / f"worker-{i}") for i in range(n_workers)]
    for i, submission in enumerate(runnable):
        grading.submit(courses[i % n_workers], submission.student_id, assignment, submission.path)
    nonce = secrets.token_hex(16)
    policy = sandbox.SandboxPolicy(
        timeout_seconds=timeout,
        cpu_seconds=timeout * 2,
        hide=[str(repo), str(out), str(submissions)],
        records=str(work),
        expose=[
            str(repo / "src"),
            str(repo / "data"),
            sys.prefix,
            *(
                [os.environ["MLOPS_COURSE_DATA_MIRROR"]]
                if os.environ.get("MLOPS_COURSE_DATA_MIRROR")
                else []
            ),
        ],
        enabled=use_sandbox,
    )
    env = dict(base_env, **{CANARY_VARIABLE: nonce, sandbox.POLICY_VARIABLE: policy.to_env()})
    for course in courses:
        with open(course / "nbgrader_config.py", "a") as config:
            config.write(GRADER_CONFIG.format(timeout=timeout))

    def autograde(course: Path) -> subprocess.CompletedProcess:
        count = len(list((course / "submitted").glob("*")))
        result = _nbgrader(
            course,
            env,
            "autograde",
            assignment,
            "--force",
            timeout=(timeout + 60) * max(count, 1) + 120,
        )
        (course / "autograde.log").write_text(result.stdout + result.stderr)
        return result

    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        list(pool.map(autograde, courses))
    progress(
        f"autograded in {time.monotonic() - started:.1f} s; checking evidence and writing feedback"
    )

    checks = load_evidence(repo, assignment)
    rows: list[GradeRow] = []
    for submission in found:
        rows.append(
            _grade_row(
                submission,
                assignment,
                courses[runnable.index(submission) % n_workers] if submission in runnable else None,
                max_scores,
                total,
                checks,
                timeout,
            )
        )

    feedback_dir = out / "feedback"
    feedback_dir.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=n_workers) as pool:
        list(
            pool.map(
                lambda c: _nbgrader(
                    c, env, "generate_feedback", assignment, "--force", timeout=1800
                ),
                courses,
            )
        )
    for submission in runnable:
        course = courses[runnable.index(submission) % n_workers]
        page = course / "feedback" / submission.student_id / assignment / f"{assignment}.html"
        if page.exists():
            shutil.copyfile(page, feedback_dir / f"{submission.student_id}.html")
    _write_outputs(rows, out, assignment, max_scores)
    progress(
        f"graded {len(rows)} submission(s) in {time.monotonic() - started:.1f} s: {out / 'grades.csv'}"
    )
    return rows


def _grade_row(
    submission: Submission,
    assignment: str,
    course: Path | None,
    max_scores: dict[str, float],
    total: float,
    checks,
    timeout: float,
) -> GradeRow:
    row = GradeRow(
        submission.student_id,
        assignment,
        f"{assignment}.ipynb",
        0.0,
        total,
        submission.status,
        submission.message,
    )
    if course is None:
        return row
    workdir = course / "autograded" / submission.student_id / assignment
    executed_path = workdir / f"{assignment}.ipynb"
    if not executed_path.exists():
        if sandbox.timed_out(course.parent / "kernels", submission.student_id, timeout):
            row.status, row.message = (
                "timeout",
                "The notebook did not finish within the time limit.",
            )
        else:
            row.status, row.message = (
                "crashed",
                "The kernel died before the notebook finished (it crashed or was killed).",
            )
        return row
    scores = grading.cell_scores(course, assignment, submission.student_id)
    cells = {g: (scores[g].score if g in scores else 0.0) for g in max_scores}
    executed = nbformat.read(executed_path, as_version=4)
    notes = list(submission.notes)
    altered = [
        c.metadata["nbgrader"]["grade_id"]
        for c in executed.cells
        if c.metadata.get(TAMPER_KEY) and "nbgrader" in c.metadata
    ]
    if altered:
        notes.append(
            f"test cell(s) {', '.join(altered)} did not run as written (kernel altered; scored zero)"
        )
    passed = {g for g, s in cells.items() if s > 0}
    for grade_id, reason in _check_evidence(checks, workdir, passed).items():
        cells[grade_id] = 0.0
        notes.append(f"{grade_id} passed in the kernel but its evidence is missing ({reason})")
        _zero_in_gradebook(course, assignment, submission.student_id, grade_id)
    if NETWORK_ERRORS.search(_outputs_text(executed)):
        notes.append("the notebook tried to reach the network (blocked by the sandbox)")
    row.cells = cells
    row.score = round(sum(cells.values()), 2)
    if notes:
        row.status, row.message = "tampered", "; ".join(notes).capitalize() + "."
    else:
        row.message = f"{sum(1 for s in cells.values() if s > 0)}/{len(cells)} test cells passed."
    return row


def _zero_in_gradebook(course: Path, assignment: str, student: str, grade_id: str) -> None:
    """Record the evidence verdict in nbgrader too, so the feedback shows the same score."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        grade = gradebook.find_grade(grade_id, assignment, assignment, student)
        grade.manual_score = 0.0
        gradebook.db.commit()


def _write_outputs(
    rows: list[GradeRow], out: Path, assignment: str, max_scores: dict[str, float]
) -> None:
    with open(out / "grades.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            ["student_id", "assignment", "notebook", "score", "max_score", "status", "message"]
        )
        for r in rows:
            writer.writerow(
                [
                    r.student_id,
                    r.assignment,
                    r.notebook,
                    f"{r.score:g}",
                    f"{r.max_score:g}",
                    r.status,
                    r.message,
                ]
            )
    (out / "summary.html").write_text(_summary_html(rows, assignment, max_scores))


def _summary_html(rows: list[GradeRow], assignment: str, max_scores: dict[str, float]) -> str:
    import base64
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3))
    total = sum(max_scores.values()) or 1
    axis.hist(
        [r.score for r in rows], bins=min(20, int(total) + 1), range=(0, total), color="#3b7dd8"
    )
    axis.set_xlabel(f"score (out of {total:g})")
    axis.set_ylabel("students")
    axis.set_title(f"{assignment}: grade distribution")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    image = base64.b64encode(buffer.getvalue()).decode()
    graded = [r for r in rows if r.cells]
    rates = "".join(
        f"<tr><td>{html.escape(g)}</td><td>{m:g}</td>"
        f"<td>{(sum(1 for r in graded if r.cells.get(g, 0) >= m) / len(graded) * 100 if graded else 0):.0f}%</td></tr>"
        for g, m in max_scores.items()
    )
    statuses = "".join(
        f"<tr><td>{s}</td><td>{sum(1 for r in rows if r.status == s)}</td></tr>" for s in STATUSES
    )
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(assignment)}: class summary</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.2em .8em;border-bottom:1px solid #ddd}}</style></head>
<body><h1>{html.escape(assignment)}: class summary</h1>
<p>{len(rows)} submissions, mean score {sum(r.score for r in rows) / max(len(rows), 1):.2f} of {sum(max_scores.values()):g}.</p>
<img alt="grade distribution" src="data:image/png;base64,{image}">
<h2>Pass rate per exercise</h2><table><tr><th>test cell</th><th>points</th><th>passed</th></tr>{rates}</table>
<h2>Statuses</h2><table><tr><th>status</th><th>submissions</th></tr>{statuses}</table>
</body></html>"""
