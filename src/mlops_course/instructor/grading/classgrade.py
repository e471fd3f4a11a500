"""Grading a whole class: ``mlops-course grade --assignment ID --submissions DIR --out DIR``.

The life cycle, one module per step:

1. **assign**: a throw-away nbgrader course generates the release (:mod:`.courses`);
2. **collect**: the submissions are found, their ids sanitized, the malformed, missing and
   tampered ones sorted out (:mod:`.submissions`);
3. **run**: the submissions are split over worker courses that ``nbgrader autograde`` in
   parallel, every kernel in the sandbox of :mod:`.sandbox` (no network, read-only system,
   limits, a deadline);
4. **check**: every hidden test runs in the grader's own process, outside the kernel, and
   alone decides its cell's points (:mod:`.judge`); the kernel only runs the student's cells
   and the visible tests;
5. **feedback**: one HTML page per student, hidden tests and tracebacks removed (:mod:`.hooks`),
   and ``grades.csv`` with ``summary.html`` (:mod:`.summary`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from mlops_course import paths
from mlops_course.instructor.grading import courses, gradebook, sandbox, submissions, summary
from mlops_course.runtime.errors import CourseError

__all__ = ["GradeRow", "GradingRefused", "grade_class", "grading_env"]

NETWORK_ERRORS = re.compile(
    r"Network is unreachable|Temporary failure in name resolution|Name or service not known|"
    r"Failed to establish a new connection|getaddrinfo failed|NameResolutionError"
)


class GradingRefused(CourseError):
    """The grade command cannot run as asked (the message says why and what to do)."""


@dataclass
class GradeRow:
    """One line of ``grades.csv``, with the score of every test cell."""

    student_id: str
    assignment: str
    notebook: str
    score: float
    max_score: float
    status: str
    message: str
    cells: dict[str, float] = field(default_factory=dict)


@dataclass
class _Run:
    """What one grading run knows once the release is generated."""

    assignment: str
    out: Path
    work: Path
    timeout: int
    max_scores: dict[str, float]
    env: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.max_scores.values())


def grade_class(
    assignment: str,
    submissions_dir: Path,
    out: Path,
    *,
    workers: int | None = None,
    timeout: int = 300,
    use_sandbox: bool = True,
    progress: Callable[[str], None] = print,
) -> list[GradeRow]:
    """Grade every submission of ``assignment`` in ``submissions_dir``; write results to ``out``."""
    _refuse_unless_ready(assignment, use_sandbox)
    out, submissions_dir = Path(out).resolve(), Path(submissions_dir).resolve()
    started = time.monotonic()
    found = submissions.discover(submissions_dir, assignment)  # a missing folder: before any work
    run, base, release = _assign(assignment, out, timeout)

    for submission in found:
        submissions.inspect(submission, release)
    runnable = [s for s in found if s.status == "ok"]
    n_workers = max(1, min(workers or os.cpu_count() or 1, len(runnable) or 1))
    where = " in the sandbox" if use_sandbox else " WITHOUT sandbox"
    progress(
        f"{len(found)} submission(s) of {assignment}; {len(runnable)} to run on "
        f"{n_workers} worker(s){where}"
    )
    worker_of = _distribute(base, runnable, n_workers, run)
    run.env = _grading_env(run, [out, submissions_dir], use_sandbox)
    _in_parallel(lambda course: _autograde(course, run), sorted(set(worker_of.values())))
    progress(f"autograded in {time.monotonic() - started:.1f} s; writing feedback")

    rows = [_grade_row(s, worker_of.get(s.student_id), run) for s in found]
    _feedback(run, worker_of)
    summary.write_grades(rows, out, assignment, run.max_scores)
    seconds = time.monotonic() - started
    progress(f"graded {len(rows)} submission(s) in {seconds:.1f} s: {out / 'grades.csv'}")
    return rows


def _refuse_unless_ready(assignment: str, use_sandbox: bool) -> None:
    known = [p.stem for p in paths.solution_notebooks()]
    if assignment not in known:
        raise GradingRefused(
            f"Expected an assignment named {assignment!r}, found only: {', '.join(known)}."
        )
    if use_sandbox and not sandbox.available():
        raise GradingRefused(
            "Expected bubblewrap (bwrap), setpriv and prlimit for sandboxed grading, found bwrap "
            "missing or unable to run here: install it with `apt-get install bubblewrap`, or pass "
            "--no-sandbox to grade without isolation."
        )


def _assign(assignment: str, out: Path, timeout: int) -> tuple[_Run, Path, nbformat.NotebookNode]:
    """A fresh work folder, a course for the assignment and its generated release."""
    work = out / "work"
    if work.exists():
        shutil.rmtree(work)  # the grader's own scratch space from an earlier run
    work.mkdir(parents=True)
    base = courses.make_course(work / "base", [assignment])
    generated = courses.nbgrader(
        base, "generate_assignment", assignment, "--force", timeout=600, check=False
    )
    if generated.returncode != 0:
        last = (generated.stderr.strip().splitlines() or ["no output"])[-1]
        raise GradingRefused(f"Expected nbgrader to generate {assignment}, found an error: {last}")
    release = nbformat.read(courses.release_notebook(base, assignment), as_version=4)
    max_scores = {
        grade_id: float(cell.metadata["nbgrader"].get("points", 0))
        for grade_id, cell in submissions.grade_cells(release).items()
    }
    return _Run(assignment, out, work, timeout, max_scores), base, release


def _distribute(
    base: Path, runnable: list[submissions.Submission], n_workers: int, run: _Run
) -> dict[str, Path]:
    """One copy of the course per worker (own gradebook); submissions dealt out in turn."""
    worker_courses = [courses.copy_course(base, run.work / f"worker-{i}") for i in range(n_workers)]
    worker_of = {}
    for i, submission in enumerate(runnable):
        course = worker_courses[i % n_workers]
        assert submission.path is not None
        submissions.submit(course, submission.student_id, run.assignment, submission.path)
        worker_of[submission.student_id] = course
    return worker_of


def _grading_env(run: _Run, hidden: list[Path], use_sandbox: bool) -> dict[str, str]:
    return grading_env(run.work, run.timeout, hidden, use_sandbox=use_sandbox)


def grading_env(
    records: Path, timeout: int, hidden: list[Path], *, use_sandbox: bool = True
) -> dict[str, str]:
    """The variable that turns on trusted grading in ``grading/nbgrader_config.py``: the sandbox
    policy (the judge runs whether or not the kernel is sandboxed). ``records`` is where the
    sandbox and the judge write what happened; ``hidden`` are folders the kernel must not see."""
    repo = paths.repo_root()
    mirror = os.environ.get("MLOPS_COURSE_DATA_MIRROR")
    policy = sandbox.SandboxPolicy(
        timeout_seconds=timeout,
        cpu_seconds=timeout * 2,
        hide=[str(repo), *map(str, hidden)],
        records=str(records),
        # Bound back read-only: the package, the data cache, the walkthroughs (notebooks 08-10
        # read them) and the Python environment; solutions/ and grading/ stay hidden.
        expose=[
            str(repo / "src"),
            str(repo / "data"),
            str(repo / "walkthroughs"),
            sys.prefix,
            *([mirror] if mirror else []),
        ],
        enabled=use_sandbox,
    )
    return {sandbox.POLICY_VARIABLE: policy.to_env()}


def _in_parallel(job: Callable[[Path], object], worker_courses: list[Path]) -> None:
    with ThreadPoolExecutor(max_workers=max(1, len(worker_courses))) as pool:
        list(pool.map(job, worker_courses))


def _autograde(course: Path, run: _Run) -> subprocess.CompletedProcess:
    count = len(list((course / "submitted").glob("*")))
    deadline = (run.timeout + 60) * max(count, 1) + 120
    result = courses.nbgrader(
        course,
        "autograde",
        run.assignment,
        "--force",
        timeout=deadline,
        env=run.env,
        check=False,
    )
    (course / "autograde.log").write_text(result.stdout + result.stderr)
    return result


def _outputs_text(notebook: nbformat.NotebookNode) -> str:
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.get("text", ""))
            else:
                parts.append(f"{output.get('ename', '')}: {output.get('evalue', '')}")
    return "\n".join(parts)


def _grade_row(
    submission: submissions.Submission,
    course: Path | None,
    run: _Run,
) -> GradeRow:
    assignment = run.assignment
    row = GradeRow(
        submission.student_id,
        assignment,
        f"{assignment}.ipynb",
        0.0,
        run.total,
        submission.status,
        submission.message,
    )
    if course is None:
        return row
    workdir = course / "autograded" / submission.student_id / assignment
    executed_path = workdir / f"{assignment}.ipynb"
    record = _judge_record(run, submission.student_id)
    timed_out = sandbox.timed_out(run.work / "kernels", submission.student_id, run.timeout)
    if not executed_path.exists() or record is None:
        row.status = "timeout" if timed_out else "crashed"
        row.message = (
            "The notebook did not finish within the time limit."
            if timed_out
            else "The kernel died before the notebook finished (it crashed or was killed)."
        )
        return row
    scores = gradebook.cell_scores(course, assignment, submission.student_id)
    cells = {g: (scores[g].score if g in scores else 0.0) for g in run.max_scores}
    executed = nbformat.read(executed_path, as_version=4)
    notes = list(submission.notes)
    if NETWORK_ERRORS.search(_outputs_text(executed)):
        notes.append("the notebook tried to reach the network (blocked by the sandbox)")
    row.cells = cells
    row.score = round(sum(cells.values()), 2)
    passed = sum(1 for s in cells.values() if s > 0)
    if record.get("kernel_died"):
        row.status = "timeout" if timed_out else "crashed"
        cause = (
            "The notebook did not finish within the time limit"
            if timed_out
            else "The kernel died before the notebook finished"
        )
        row.message = f"{cause}; {passed}/{len(cells)} test cells passed before that."
    elif notes:
        row.status, row.message = "tampered", "; ".join(notes).capitalize() + "."
    else:
        row.message = f"{passed}/{len(cells)} test cells passed."
    return row


def _judge_record(run: _Run, student_id: str) -> dict | None:
    """What the judge wrote about a submission (None when it never finished)."""
    path = run.work / "judge" / run.assignment / f"{student_id}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _feedback(run: _Run, worker_of: dict[str, Path]) -> None:
    """nbgrader's feedback in every worker course, one page per student copied to ``out``."""
    folder = run.out / "feedback"
    folder.mkdir(parents=True, exist_ok=True)

    def generate(course: Path) -> None:
        args = ("generate_feedback", run.assignment, "--force")
        courses.nbgrader(course, *args, timeout=1800, env=run.env, check=False)

    _in_parallel(generate, sorted(set(worker_of.values())))
    for student, course in worker_of.items():
        page = course / "feedback" / student / run.assignment / f"{run.assignment}.html"
        if page.exists():
            shutil.copyfile(page, folder / f"{student}.html")
