"""Running the course's notebooks headless with papermill, each in a fresh store.

``make course`` and the notebook tests both call :func:`run_course`, so what CI
checks is exactly what an instructor runs. Each notebook runs in its own folder
under ``build/course/<stem>/`` (the folder is its MLflow store, see
:mod:`mlops_course.runtime.session`); independent notebooks run in parallel, the longest
first (by the last report, :mod:`mlops_course.instructor.report`).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from mlops_course.instructor import kernel, report

__all__ = ["DEFAULT_TIMEOUT", "NotebookResult", "run_course", "run_notebook"]

DEFAULT_TIMEOUT = 600  # seconds per cell


@dataclass
class NotebookResult:
    """How one notebook ran."""

    notebook: str
    status: str  # "ok" or "failed"
    seconds: float
    output: str
    failing_cell: int | None = None
    error: str | None = None
    overhead_seconds: float = 0.0  # kernel start, then every cell up to the set-up cell (imports)
    shutdown_seconds: float = 0.0  # from the last cell's end to the kernel's exit


def run_notebook(
    notebook: Path,
    build_dir: Path,
    *,
    parameters: dict | None = None,
    timeout: int = DEFAULT_TIMEOUT,
    fresh: bool = True,
) -> NotebookResult:
    """Execute one notebook in ``build_dir/<stem>/`` and write ``<stem>.ipynb`` there."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    workdir = build_dir / notebook.stem
    if fresh and workdir.exists():
        shutil.rmtree(workdir)  # our own build folder, never a student's
    workdir.mkdir(parents=True, exist_ok=True)
    output = workdir / notebook.name
    env_backup = os.environ.pop("MLFLOW_TRACKING_URI", None)  # each run gets its own store
    started = time.monotonic()
    status, failing_cell, error = "ok", None, None
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=parameters or {},
            cwd=str(workdir),
            kernel_name=kernel.kernel_name(),
            progress_bar=False,
            execution_timeout=timeout,
            log_output=False,
        )
    except PapermillExecutionError as failure:
        status, failing_cell = "failed", failure.cell_index
        error = f"{failure.ename}: {failure.evalue}".strip()
    except Exception as failure:  # noqa: BLE001 - kernel death, timeout, bad JSON: all reported
        status, error = "failed", f"{type(failure).__name__}: {failure}"
    finally:
        if env_backup is not None:
            os.environ["MLFLOW_TRACKING_URI"] = env_backup
    seconds = round(time.monotonic() - started, 2)
    return NotebookResult(
        notebook=notebook.stem,
        status=status,
        seconds=seconds,
        output=str(output),
        failing_cell=failing_cell,
        error=error,
        **_timings(output),
    )


SETUP_CALL = "mlops_course.start("


def _timings(output: Path) -> dict[str, float]:
    """Overhead and shutdown seconds from the per-cell times papermill records in the output."""
    from datetime import datetime

    try:
        executed = json.loads(output.read_text())
        run = executed["metadata"]["papermill"]
        cells = [c for c in executed["cells"] if c.get("cell_type") == "code"]
        stamp = datetime.fromisoformat
        overhead = (
            stamp(cells[0]["metadata"]["papermill"]["start_time"]) - stamp(run["start_time"])
        ).total_seconds()
        for cell in cells:
            overhead += float(cell["metadata"]["papermill"].get("duration") or 0.0)
            if SETUP_CALL in "".join(cell.get("source", "")):
                break
        shutdown = (
            stamp(run["end_time"]) - stamp(cells[-1]["metadata"]["papermill"]["end_time"])
        ).total_seconds()
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return {}
    return {"overhead_seconds": round(overhead, 2), "shutdown_seconds": round(shutdown, 2)}


def run_course(
    notebooks: Sequence[Path],
    build_dir: Path,
    *,
    workers: int | None = None,
    timeout: int = DEFAULT_TIMEOUT,
    parameters: dict | None = None,
    fresh: bool = True,
    progress: Callable[[str], None] | None = print,
) -> list[NotebookResult]:
    """Run notebooks in parallel (``workers`` processes, default: the number of cores)."""
    build_dir.mkdir(parents=True, exist_ok=True)
    total = len(notebooks)
    # Longest first, so the slowest notebook does not start last while a worker idles: by the
    # last report when there is one, else later notebooks first (the cloud walkthroughs are heavy).
    known = report.previous_seconds(build_dir)
    if known:
        ordered = sorted(notebooks, key=lambda nb: (-known.get(nb.stem, 0.0), nb.stem))
    else:
        ordered = list(reversed(notebooks))
    workers = max(1, min(workers or os.cpu_count() or 1, total or 1))
    results: dict[str, NotebookResult] = {}
    say = progress or (lambda _message: None)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = {
            pool.submit(
                run_notebook, nb, build_dir, parameters=parameters, timeout=timeout, fresh=fresh
            ): nb
            for nb in ordered
        }
        for done, future in enumerate(as_completed(futures), start=1):
            result = future.result()
            results[result.notebook] = result
            detail = f"{result.seconds:.1f} s"
            if result.status != "ok":
                detail += f", cell {result.failing_cell}: {result.error}"
            say(f"[{done}/{total}] {result.notebook}: {result.status} ({detail})")
    return [results[nb.stem] for nb in notebooks]
