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

from mlops_course import paths
from mlops_course.instructor.grading import classgrade, courses, fixtures, release, sandbox
from mlops_course.instructor.grading.submissions import submit


def make_class(folder: Path, assignment: str, count: int) -> Path:
    """`count` submissions cycling through the solution, the blank release and each fixture."""
    author = courses.make_course(folder / "author", [assignment])
    courses.nbgrader(author, "generate_assignment", assignment, "--force")
    release_path = courses.release_notebook(author, assignment)
    solution = author / "source" / assignment / f"{assignment}.ipynb"
    variants = [release.fill_release(release_path, solution), release_path]
    variants += [
        release.fill_release(release_path, solution, f.replace)
        for f in fixtures.fixtures(assignment)
    ]
    class_dir = folder / "submissions"
    for i in range(count):
        submit(folder / "tmp", f"student{i:03d}", assignment, variants[i % len(variants)])
    shutil.move(str(folder / "tmp" / "submitted"), class_dir)
    return class_dir


def sequential(folder: Path, assignment: str, class_dir: Path) -> float:
    course = courses.make_course(folder / "sequential", [assignment])
    courses.nbgrader(course, "generate_assignment", assignment, "--force")
    shutil.copytree(class_dir, course / "submitted")
    started = time.monotonic()
    courses.nbgrader(course, "autograde", assignment, "--force", timeout=7200)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assignment", default="01_mlops_paradigm")
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    folder = paths.build_dir() / "bench-grading"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    class_dir = make_class(folder, args.assignment, args.submissions)
    print(
        f"{args.submissions} submissions of {args.assignment}; plain sequential nbgrader autograde ..."
    )
    plain = sequential(folder, args.assignment, class_dir)
    print(f"  {plain:.1f} s; mlops-course grade with {args.workers} workers and the sandbox ...")
    started = time.monotonic()
    classgrade.grade_class(
        args.assignment,
        class_dir,
        folder / "out",
        workers=args.workers,
        use_sandbox=sandbox.available(),
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
    (paths.build_dir() / "bench-grading.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
