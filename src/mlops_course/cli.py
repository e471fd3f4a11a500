"""Command line: ``mlops-course <command>`` (also ``python -m mlops_course <command>``)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from mlops_course import execution


def _course(args: argparse.Namespace) -> int:
    root = execution.repo_root()
    build_dir = Path(args.build_dir or root / "build" / "course").resolve()
    try:
        notebooks = execution.discover(root, args.only)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    print(
        f"Executing {len(notebooks)} notebook(s) into {build_dir} with {args.workers or 'all'} worker(s)"
    )
    started = time.monotonic()
    results = execution.run_course(
        notebooks, build_dir, workers=args.workers, timeout=args.timeout, fresh=not args.keep_stores
    )
    wall = time.monotonic() - started
    report = execution.write_report(results, build_dir, wall)
    failed = [r for r in results if r.status != "ok"]
    print(
        f"{len(results) - len(failed)}/{len(results)} notebooks ran in {wall:.1f} s; report: {report}"
    )
    for r in failed:
        print(f"FAILED {r.notebook}: cell {r.failing_cell}: {r.error} (executed copy: {r.output})")
    if args.bench:
        bench = {
            "wall_seconds": round(wall, 2),
            "notebooks": {
                r.notebook: {
                    "seconds": r.seconds,
                    "overhead_seconds": r.overhead_seconds,
                    "shutdown_seconds": r.shutdown_seconds,
                }
                for r in results
            },
            "max_overhead_seconds": max((r.overhead_seconds for r in results), default=0.0),
        }
        target = build_dir.parent / "bench.json"
        target.write_text(json.dumps(bench, indent=2))
        print(f"Benchmark written to {target}")
    return 1 if failed else 0


KERNEL_ENV = {
    # MLflow 3 sends usage telemetry by default; the course runs offline and sends nothing.
    "MLFLOW_DISABLE_TELEMETRY": "true",
}


def _install_kernel(args: argparse.Namespace) -> int:
    """Install the course kernel into this environment (``sys.prefix``), not the user's home."""
    from ipykernel.kernelspec import install

    path = install(
        kernel_name=execution.KERNEL_NAME,
        display_name="MLOps course (Python 3.11)",
        prefix=sys.prefix,
        env=KERNEL_ENV,
    )
    print(f"Installed the course kernel {execution.KERNEL_NAME!r} in {path}")
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


def _grade(args: argparse.Namespace) -> int:
    from mlops_course import grader
    from mlops_course.errors import CourseError

    try:
        rows = grader.grade_class(
            args.assignment,
            Path(args.submissions),
            Path(args.out),
            workers=args.workers,
            timeout=args.timeout,
            use_sandbox=not args.no_sandbox,
        )
    except CourseError as error:
        print(error, file=sys.stderr)
        return 2
    counts = {status: sum(1 for r in rows if r.status == status) for status in grader.STATUSES}
    print(", ".join(f"{n} {status}" for status, n in counts.items() if n))
    return 0


def _class_server(args: argparse.Namespace) -> int:
    from mlops_course import classroom  # lazily: only this command needs it
    from mlops_course.errors import CourseError

    try:
        return classroom.run(
            Path(args.students), Path(args.data_dir), port=args.port, host=args.host
        )
    except CourseError as error:
        print(f"{type(error).__name__}: {error}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops-course", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    course = commands.add_parser("course", help="execute every solution notebook headless")
    course.add_argument(
        "--only", nargs="*", default=[], help="notebook stems or prefixes (e.g. 01)"
    )
    course.add_argument(
        "--workers", type=int, default=None, help="parallel notebooks (default: cores)"
    )
    course.add_argument(
        "--timeout", type=int, default=execution.DEFAULT_TIMEOUT, help="seconds per cell"
    )
    course.add_argument(
        "--build-dir", default=None, help="where executed notebooks go (default build/course)"
    )
    course.add_argument("--bench", action="store_true", help="also write build/bench.json")
    course.add_argument(
        "--keep-stores",
        action="store_true",
        help="re-run in the stores left by the previous run instead of fresh ones",
    )
    course.set_defaults(handler=_course)

    grade = commands.add_parser(
        "grade", help="autograde a class's submissions (sandboxed, parallel)"
    )
    grade.add_argument("--assignment", required=True, help="assignment id, e.g. 01_mlops_paradigm")
    grade.add_argument("--submissions", required=True, help="student folders or a flat LMS export")
    grade.add_argument(
        "--out", required=True, help="where grades.csv, feedback/ and summary.html go"
    )
    grade.add_argument(
        "--workers", type=int, default=None, help="parallel graders (default: cores)"
    )
    grade.add_argument(
        "--timeout", type=int, default=300, help="seconds per submission (default 300)"
    )
    grade.add_argument(
        "--no-sandbox", action="store_true", help="grade without bubblewrap (trusted code only)"
    )
    grade.set_defaults(handler=_grade)

    strip = commands.add_parser("strip-outputs", help="remove outputs from notebooks (pre-commit)")
    strip.add_argument("paths", nargs="+")
    strip.set_defaults(handler=_strip_outputs)

    kernel = commands.add_parser(
        "install-kernel", help="install the course's Jupyter kernel in this environment"
    )
    kernel.set_defaults(handler=_install_kernel)

    klass = commands.add_parser(
        "class-server",
        help="an MLflow server with accounts for a class (PostgreSQL, proxied artifacts)",
    )
    klass.add_argument(
        "--students", required=True, help="CSV with a student_id and an optional password column"
    )
    klass.add_argument(
        "--data-dir", required=True, help="folder for the database, artifacts and credentials"
    )
    klass.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    klass.add_argument(
        "--host", default="127.0.0.1", help="interface; 0.0.0.0 lets other machines connect"
    )
    klass.set_defaults(handler=_class_server)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except KeyboardInterrupt:
        print("Interrupted; servers started by the course were stopped.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
