"""Running the course's notebooks headless with papermill, each in a fresh store.

``make course`` and the notebook tests both call :func:`run_course`, so what CI
checks is exactly what an instructor runs. Each notebook runs in its own folder
under ``build/course/<stem>/`` (the folder is its MLflow store, see
:mod:`mlops_course.setup`); independent notebooks run in parallel.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = [
    "KERNEL_NAME",
    "NotebookResult",
    "discover",
    "repo_root",
    "run_course",
    "run_notebook",
    "write_report",
]

KERNEL_NAME = "mlops-course"
DEFAULT_TIMEOUT = 600


def repo_root() -> Path:
    """The repository this package was installed from (editable install)."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "solutions").is_dir():
        raise RuntimeError(
            f"{root} has no solutions/ folder; run the course commands from a clone of the course "
            "repository with the package installed editable (make course does this)."
        )
    return root


def discover(root: Path | None = None, only: Iterable[str] = ()) -> list[Path]:
    """Solution notebooks ``solutions/<stem>/<stem>.ipynb`` in course order."""
    base = (root or repo_root()) / "solutions"
    found = sorted(p for p in base.glob("*/*.ipynb") if p.stem == p.parent.name)
    wanted = list(only)
    if wanted:
        chosen = [p for p in found if any(p.stem.startswith(w) for w in wanted)]
        missing = [w for w in wanted if not any(p.stem.startswith(w) for p in found)]
        if missing:
            names = ", ".join(p.stem for p in found)
            raise ValueError(f"No notebook matches {', '.join(missing)}; the course has: {names}.")
        return chosen
    return found


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


def kernel_name() -> str:
    """The course kernel when installed (make does it), else the current Python's kernel."""
    from jupyter_client.kernelspec import KernelSpecManager

    return KERNEL_NAME if KERNEL_NAME in KernelSpecManager().find_kernel_specs() else "python3"


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
            kernel_name=kernel_name(),
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
    known = previous_seconds(build_dir)
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


def previous_seconds(build_dir: Path) -> dict[str, float]:
    """Seconds per notebook from the last report in ``build_dir`` (empty when there is none)."""
    try:
        report = json.loads((build_dir / "report.json").read_text())
        return {entry["notebook"]: float(entry["seconds"]) for entry in report["notebooks"]}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def write_report(results: Sequence[NotebookResult], build_dir: Path, wall_seconds: float) -> Path:
    """Write ``report.json`` and ``report.md`` under ``build_dir``; return the markdown path."""
    payload = {
        "wall_seconds": round(wall_seconds, 2),
        "python": sys.version.split()[0],
        "notebooks": [asdict(r) for r in results],
    }
    (build_dir / "report.json").write_text(json.dumps(payload, indent=2))
    lines = [
        "# Course execution report",
        "",
        f"Wall time: {wall_seconds:.1f} s for {len(results)} notebooks.",
        "",
        "Overhead: kernel start and the cells up to the set-up cell (imports); shutdown: kernel exit.",
        "",
        "| notebook | status | seconds | overhead s | shutdown s | failing cell | error |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in results:
        cell = "" if r.failing_cell is None else str(r.failing_cell)
        error = (r.error or "").replace("|", "\\|").replace("\n", " ")[:200]
        lines.append(
            f"| {r.notebook} | {r.status} | {r.seconds:.1f} | {r.overhead_seconds:.1f} | {r.shutdown_seconds:.1f} | {cell} | {error} |"
        )
    report = build_dir / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report
