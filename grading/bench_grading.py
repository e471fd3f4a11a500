"""Benchmark: plain sequential `nbgrader autograde` versus `mlops-course grade` (2 workers, sandbox).

    make bench-grading            # 40 submissions of 01_mlops_paradigm, one run of each
    python grading/bench_grading.py --submissions 10 --assignment 00_start_here

Writes build/bench-grading.json with both wall times, their ratio and seconds per submission.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from mlops_course import grader, grading, sandbox

REPO = Path(__file__).resolve().parents[1]


def make_class(folder: Path, assignment: str, count: int) -> Path:
    """`count` submissions cycling through the solution, the blank release and each fixture."""
    author = grading.build_course(folder / "author", REPO, [assignment])
    grading.nbgrader(author, "generate_assignment", assignment, "--force")
    release = grading.release_notebook(author, assignment)
    solution = author / "source" / assignment / f"{assignment}.ipynb"
    variants = [grading.fill_release(release, solution), release]
    variants += [
        grading.fill_release(release, solution, f.replace)
        for f in grading.fixtures(REPO, assignment)
    ]
    submissions = folder / "submissions"
    for i in range(count):
        grading.submit(
            submissions.parent / "tmp", f"student{i:03d}", assignment, variants[i % len(variants)]
        )
    shutil.move(str(submissions.parent / "tmp" / "submitted"), submissions)
    return submissions


def sequential(folder: Path, assignment: str, submissions: Path) -> float:
    course = grading.build_course(folder / "sequential", REPO, [assignment])
    grading.nbgrader(course, "generate_assignment", assignment, "--force")
    shutil.copytree(submissions, course / "submitted")
    started = time.monotonic()
    grading.nbgrader(course, "autograde", assignment, "--force", timeout=7200)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assignment", default="01_mlops_paradigm")
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    folder = REPO / "build" / "bench-grading"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    submissions = make_class(folder, args.assignment, args.submissions)
    print(
        f"{args.submissions} submissions of {args.assignment}; plain sequential nbgrader autograde ..."
    )
    plain = sequential(folder, args.assignment, submissions)
    print(f"  {plain:.1f} s; mlops-course grade with {args.workers} workers and the sandbox ...")
    started = time.monotonic()
    grader.grade_class(
        args.assignment,
        submissions,
        folder / "out",
        workers=args.workers,
        use_sandbox=sandbox.available(),
        repo=REPO,
        progress=lambda m: print("  " + m),
    )
    ours = time.monotonic() - started
    result = {
        "assignment": args.assignment,
        "submissions": args.submissions,
        "workers": args.workers,
        "sandbox": sandbox.available(),
        "sequential_nbgrader_seconds": round(plain, 1),
        "grade_command_seconds": round(ours, 1),
        "speedup": round(plain / ours, 2),
        "seconds_per_submission": {
            "sequential": round(plain / args.submissions, 2),
            "grade_command": round(ours / args.submissions, 2),
        },
    }
    (REPO / "build" / "bench-grading.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
