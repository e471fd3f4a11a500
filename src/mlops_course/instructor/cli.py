"""Command line: ``mlops-course <command>`` (also ``python -m mlops_course <command>``).

A thin layer: each command parses its options and calls one function of the package. A
problem the course can explain (a :class:`~mlops_course.runtime.errors.CourseError`) is
printed as one sentence on stderr and exits with status 2; an interrupt exits with 130.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from mlops_course import environment, paths
from mlops_course.runtime.errors import CourseError

__all__ = ["build_parser", "main"]


def _course(args: argparse.Namespace) -> int:
    from mlops_course.instructor import execute, report

    build_dir = Path(args.build_dir or paths.build_dir() / "course").resolve()
    notebooks = paths.solution_notebooks(args.only)
    workers = args.workers or "all"
    print(f"Executing {len(notebooks)} notebook(s) into {build_dir} with {workers} worker(s)")
    started = time.monotonic()
    results = execute.run_course(
        notebooks, build_dir, workers=args.workers, timeout=args.timeout, fresh=not args.keep_stores
    )
    wall = time.monotonic() - started
    written = report.write_report(results, build_dir, wall)
    failed = [r for r in results if r.status != "ok"]
    print(
        f"{len(results) - len(failed)}/{len(results)} notebooks ran in {wall:.1f} s; report: {written}"
    )
    for r in failed:
        print(f"FAILED {r.notebook}: cell {r.failing_cell}: {r.error} (executed copy: {r.output})")
    if args.bench:
        target = report.write_bench(results, build_dir.parent / "bench.json", wall)
        print(f"Benchmark written to {target}")
    return 1 if failed else 0


def _release(args: argparse.Namespace) -> int:
    from mlops_course.instructor.grading import courses

    names = [p.stem for p in paths.solution_notebooks(args.only)]
    # All at once is one nbgrader process (a glob): nbgrader's start-up costs seconds.
    for target in names if args.only else ["*"]:
        courses.nbgrader(paths.grading_dir(), "generate_assignment", target, "--force")
    for name in names:
        # nbgrader copies no file but notebooks (its ignore list is "*": a notebook's run
        # leaves its store beside it); the pictures a notebook shows travel with it.
        images = paths.solutions_dir() / name / "images"
        released = paths.release_dir() / name / "images"
        shutil.rmtree(released, ignore_errors=True)
        if images.is_dir():
            shutil.copytree(images, released)
    print(f"Released {len(names)} notebook(s) into {paths.release_dir()}")
    return 0


def _grade(args: argparse.Namespace) -> int:
    from mlops_course.instructor.grading import classgrade, summary

    rows = classgrade.grade_class(
        args.assignment,
        Path(args.submissions),
        Path(args.out),
        workers=args.workers,
        timeout=args.timeout,
        use_sandbox=not args.no_sandbox,
    )
    counts = {status: sum(1 for r in rows if r.status == status) for status in summary.STATUSES}
    print(", ".join(f"{n} {status}" for status, n in counts.items() if n))
    return 0


def _fixtures(args: argparse.Namespace) -> int:
    from mlops_course.instructor.grading import fixtures

    for notebook_path in paths.solution_notebooks(args.only):
        assignment = notebook_path.stem
        print(fixtures.catalogue(assignment, fixtures.graded_cells(assignment)))
    return 0


def _estimate(args: argparse.Namespace) -> int:
    from mlops_course.instructor import estimate

    if args.record:
        estimate.record_run_seconds(Path(args.record))
    over = 0
    for solution_path in paths.solution_notebooks(args.only):
        result = estimate.estimate(solution_path)
        changed = args.write and estimate.write_title(solution_path, result)
        flag = " (over the limit)" if result.total > estimate.LIMIT_MINUTES else ""
        over += bool(flag)
        print(
            f"{result.notebook}: {estimate.estimate_line(result)}{flag}{' [written]' if changed else ''}"
        )
    if args.write:
        print("Title cells rewritten in solutions/: run `make release` to update notebooks/.")
    return 1 if over else 0


def _screenshots(args: argparse.Namespace) -> int:
    from mlops_course.instructor import screenshots

    build_dir = Path(args.build_dir) if args.build_dir else paths.build_dir() / "course"
    written = screenshots.take(
        build_dir,
        lambda notebook: paths.solutions_dir() / notebook / "images",
        build_dir.parent / "screenshot-logs",
    )
    for path in written:
        print(f"wrote {path.relative_to(paths.repo_root())}")
    print("Run `make release` so notebooks/ carries the new pictures.")
    return 0


def _class_server(args: argparse.Namespace) -> int:
    from mlops_course.instructor import classroom

    return classroom.run(Path(args.students), Path(args.data_dir), port=args.port, host=args.host)


def _install_kernel(args: argparse.Namespace) -> int:
    from mlops_course.instructor import kernel

    print(f"Installed the course kernel {kernel.KERNEL_NAME!r} in {kernel.install()}")
    return 0


def _strip_outputs(args: argparse.Namespace) -> int:
    """Remove outputs and execution counts from notebooks in place (pre-commit hook)."""
    import nbformat

    changed = 0
    for name in args.paths:
        path = Path(name)
        notebook = nbformat.read(path, as_version=4)
        dirty = False
        for cell in notebook.cells:
            if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
                cell.outputs, cell.execution_count, dirty = [], None, True
        if dirty:
            nbformat.write(notebook, path)
            print(f"stripped outputs from {path}")
            changed += 1
    return 1 if changed else 0  # pre-commit convention: a hook that changed files fails


def build_parser() -> argparse.ArgumentParser:
    from mlops_course.instructor.execute import DEFAULT_TIMEOUT

    parser = argparse.ArgumentParser(prog="mlops-course", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    course = commands.add_parser("course", help="execute every solution notebook headless")
    course.add_argument("--only", nargs="*", default=[], help="notebook stems or prefixes (01)")
    course.add_argument("--workers", type=int, default=None, help="parallel notebooks (cores)")
    course.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT, help="seconds per cell")
    course.add_argument("--build-dir", default=None, help="executed notebooks (build/course)")
    course.add_argument("--bench", action="store_true", help="also write build/bench.json")
    course.add_argument(
        "--keep-stores",
        action="store_true",
        help="re-run in the stores left by the previous run instead of fresh ones",
    )
    course.set_defaults(handler=_course)

    release = commands.add_parser("release", help="regenerate notebooks/ from solutions/")
    release.add_argument("--only", nargs="*", default=[], help="notebook stems or prefixes")
    release.set_defaults(handler=_release)

    grade = commands.add_parser("grade", help="autograde a class's submissions (sandboxed)")
    grade.add_argument("--assignment", required=True, help="assignment id: 01_mlops_paradigm")
    grade.add_argument("--submissions", required=True, help="student folders or an LMS export")
    grade.add_argument("--out", required=True, help="where grades.csv, feedback/ and summary go")
    grade.add_argument("--workers", type=int, default=None, help="parallel graders (cores)")
    grade.add_argument("--timeout", type=int, default=300, help="seconds per submission (300)")
    grade.add_argument(
        "--no-sandbox", action="store_true", help="grade without bubblewrap (trusted code only)"
    )
    grade.set_defaults(handler=_grade)

    klass = commands.add_parser(
        "class-server", help="an MLflow server with accounts for a class (PostgreSQL, artifacts)"
    )
    klass.add_argument("--students", required=True, help="CSV: student_id and optional password")
    klass.add_argument("--data-dir", required=True, help="database, artifacts and credentials")
    klass.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    klass.add_argument("--host", default="127.0.0.1", help="0.0.0.0 lets other machines connect")
    klass.set_defaults(handler=_class_server)

    catalogue = commands.add_parser(
        "fixtures", help="list each graded cell's wrong-answer fixtures and what they catch"
    )
    catalogue.add_argument("--only", action="append", default=[], metavar="NN")
    catalogue.set_defaults(handler=_fixtures)
    timing = commands.add_parser(
        "estimate", help="each notebook's estimated minutes by the course's rule (README)"
    )
    timing.add_argument("--only", nargs="*", default=[], help="notebook stems or prefixes")
    timing.add_argument("--write", action="store_true", help="rewrite the title cells' line")
    timing.add_argument("--record", metavar="BENCH_JSON", help="first store run seconds from it")
    timing.set_defaults(handler=_estimate)

    shots = commands.add_parser(
        "screenshots", help="pictures of the MLflow UI on the executed stores of 02 and 03"
    )
    shots.add_argument("--build-dir", default=None, help="executed notebooks (build/course)")
    shots.set_defaults(handler=_screenshots)

    kernel = commands.add_parser("install-kernel", help="install the course's Jupyter kernel")
    kernel.set_defaults(handler=_install_kernel)

    strip = commands.add_parser("strip-outputs", help="remove outputs from notebooks (pre-commit)")
    strip.add_argument("paths", nargs="+")
    strip.set_defaults(handler=_strip_outputs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    environment.apply()
    try:
        return int(args.handler(args))
    except CourseError as error:
        print(f"mlops-course {args.command}: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("Interrupted; servers started by the course were stopped.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
