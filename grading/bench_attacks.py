"""Report: what the grader's attacks score under `mlops-course grade` and under plain nbgrader.

    make bench-attacks                                   # every assignment
    python grading/bench_attacks.py --assignment 11_quiz --assignment 07_search_runs

For each assignment it builds the blank release, the blank release with each attack of
mlops_course.instructor.grading.attacks (pack, input, exit; an endless loop on its own), one
wrong-answer fixture alone and the same fixture with the kernel attacks (tamper), then grades
them twice: with the course's
grade command (sandboxed kernel, hidden tests judged outside it) and with plain sequential
`nbgrader autograde` (hidden tests inside the student's kernel, which is what plain nbgrader
and otter-grader do). Writes build/bench-attacks.json and build/bench-attacks.md (the table
of the README's instructor section).
"""

from __future__ import annotations

import argparse
import copy
import json
import shutil
import time
from pathlib import Path

import nbformat

from mlops_course import paths
from mlops_course.instructor.grading import (
    attacks,
    classgrade,
    courses,
    fixtures,
    gradebook,
    release,
    sandbox,
)
from mlops_course.instructor.grading.submissions import submit

DEADLINE = 25  # seconds per cell; the endless loop's cell is interrupted after it
ROWS = ["blank", "attack-pack", "attack-input", "attack-exit", "endless", "wrong", "tamper"]


def attack_class(folder: Path, assignment: str) -> tuple[Path, str]:
    """The submissions of ROWS for ``assignment``; their folder and the fixture used."""
    author = courses.make_course(folder / "author", [assignment])
    courses.nbgrader(author, "generate_assignment", assignment, "--force")
    release_path = courses.release_notebook(author, assignment)
    solution_path = courses.source_notebook(author, assignment)
    blank = nbformat.read(release_path, as_version=4)
    solution = nbformat.read(solution_path, as_version=4)
    fixture = next(f for f in fixtures.fixtures(assignment) if not f.is_alternative)
    wrong = release.fill_release(release_path, solution_path, fixture.replace)
    endless = copy.deepcopy(blank)
    endless.cells.append(nbformat.v4.new_code_cell(attacks.ENDLESS))
    notebooks = {
        "blank": blank,
        # Without their endless loop, which is a row of its own here: plain nbgrader gives no
        # grade at all to a notebook whose cell times out, which would hide the other attacks.
        "attack-pack": attacks.attack(blank, "pack", solution, endless=False),
        "attack-input": attacks.attack(blank, "input"),
        "attack-exit": attacks.attack(blank, "exit"),
        "endless": endless,
        "wrong": wrong,
        "tamper": attacks.attack(wrong, "tamper", endless=False),
    }
    for student, notebook in notebooks.items():
        submit(folder / "tmp", student, assignment, notebook)
    class_dir = folder / "submissions"
    shutil.move(str(folder / "tmp" / "submitted"), class_dir)
    return class_dir, fixture.name


def plain(folder: Path, assignment: str, class_dir: Path) -> dict[str, float | None]:
    """Total score per student under plain `nbgrader autograde` (None: nbgrader recorded none)."""
    course = courses.make_course(folder / "plain", [assignment])
    courses.nbgrader(course, "generate_assignment", assignment, "--force")
    shutil.copytree(class_dir, course / "submitted")
    finished = courses.nbgrader(
        course,
        "autograde",
        assignment,
        "--force",
        f"--Execute.timeout={DEADLINE}",
        "--Execute.interrupt_on_timeout=True",
        timeout=7200,
        check=False,  # nbgrader exits non-zero when one submission fails; the others count
    )
    if finished.returncode:
        print(f"  plain nbgrader exited with {finished.returncode} (a submission failed)")
    totals: dict[str, float | None] = {}
    for student in ROWS:
        try:
            scores = gradebook.cell_scores(course, assignment, student)
            totals[student] = sum(s.score for s in scores.values())
        except Exception:  # noqa: BLE001 - no submission notebook in the gradebook
            totals[student] = None
    return totals


def trusted(folder: Path, assignment: str, class_dir: Path, workers: int) -> dict[str, float]:
    """Total score per student under the course's grade command."""
    rows = classgrade.grade_class(
        assignment,
        class_dir,
        folder / "out",
        workers=workers,
        timeout=DEADLINE,
        use_sandbox=sandbox.available(),
        progress=lambda m: print("  " + m),
    )
    return {row.student_id: row.score for row in rows}


def max_score(folder: Path) -> float:
    """Points of the assignment (the solution's test cells), read from the author course."""
    author = folder / "author"
    notebook = nbformat.read(next((author / "release").glob("*/*.ipynb")), as_version=4)
    return sum(
        float(cell.metadata["nbgrader"].get("points", 0))
        for cell in notebook.cells
        if cell.metadata.get("nbgrader", {}).get("grade")
    )


def table(results: dict) -> str:
    """Markdown: one row per submission kind, one column per assignment, `trusted / plain`."""
    names = list(results)
    lines = [
        "| submission | " + " | ".join(f"{n[:2]} ({results[n]['max']:g})" for n in names) + " |",
        "| --- |" + " ---: |" * len(names),
    ]
    for row in ROWS:
        cells = []
        for name in names:
            ours = results[name]["trusted"].get(row)
            theirs = results[name]["plain"].get(row)
            shown = "-" if theirs is None else f"{theirs:g}"
            cells.append(f"{ours:g} / {shown}" if ours is not None else f"? / {shown}")
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assignment", action="append", help="repeat; default: every one")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    wanted = args.assignment or sorted(
        p.name for p in paths.solutions_dir().iterdir() if p.is_dir()
    )
    results: dict[str, dict] = {}
    for assignment in wanted:
        folder = paths.build_dir() / "bench-attacks" / assignment
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        started = time.monotonic()
        class_dir, fixture = attack_class(folder, assignment)
        print(f"{assignment}: the grade command ...")
        ours = trusted(folder, assignment, class_dir, args.workers)
        print(f"{assignment}: plain nbgrader autograde ...")
        theirs = plain(folder, assignment, class_dir)
        results[assignment] = {
            "max": max_score(folder),
            "fixture": fixture,
            "trusted": ours,
            "plain": theirs,
            "seconds": round(time.monotonic() - started, 1),
        }
        print(json.dumps(results[assignment]))
    (paths.build_dir() / "bench-attacks.json").write_text(json.dumps(results, indent=2))
    report = table(results)
    (paths.build_dir() / "bench-attacks.md").write_text(report)
    print(report)


if __name__ == "__main__":
    main()
