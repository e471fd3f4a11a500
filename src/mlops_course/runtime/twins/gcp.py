"""The local twin of the Google Cloud (Vertex AI) walkthrough, used by notebook 10.

What stands in for what:

* Cloud Storage: a folder (``<workdir>/gcs/<bucket>``); the pipeline root is one of them.
* BigQuery: a SQLite file (``<workdir>/bigquery/<dataset>.db``), one table per BigQuery table.
* Vertex Pipelines: ``kfp.local`` with ``SubprocessRunner(use_venv=False)``; the compiled YAML is
  the same file Vertex AI would run. Each task is kfp's own executor in a process of its own,
  as the runner starts it, but forked warm (:mod:`mlops_course.runtime.warm`): pandas,
  scikit-learn and MLflow are imported once, not once per task.
* Vertex Model Registry: the MLflow model registry.

Also here: the optional switch to the real Vertex AI (:func:`submit_to_vertex`). The model
card is :mod:`mlops_course.runtime.twins.modelcard`, the Terraform checks are
:mod:`mlops_course.runtime.twins.terraform`.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from mlops_course.runtime import warm
from mlops_course.runtime.errors import CourseError

__all__ = [
    "CloudUnavailable",
    "PipelineStopped",
    "bucket",
    "latest_run_dir",
    "pipeline_root",
    "run_dirs",
    "run_locally",
    "submit_to_vertex",
    "task_outputs",
]


class PipelineStopped(CourseError):
    """A local pipeline run failed; ``task`` names the step and ``report`` says why."""

    def __init__(
        self, message: str, task: str | None = None, report: str = "", run_dir: Path | None = None
    ):
        super().__init__(message)
        self.task = task
        self.report = report
        self.run_dir = run_dir


class CloudUnavailable(CourseError):
    """The real cloud was asked for but the SDK or the credentials are missing."""


# --------------------------------------------------------------------------- folders


def bucket(workdir: Path | str, name: str) -> Path:
    """The Cloud Storage twin: a folder ``<workdir>/gcs/<name>`` (created if needed)."""
    warm.prepare()  # the pipelines' tasks, run later, start warm
    path = Path(workdir) / "gcs" / name
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()


def pipeline_root(workdir: Path | str, name: str = "pipeline-root") -> Path:
    """Where local runs write their artifacts; on Vertex AI this is ``gs://<bucket>/pipeline-root``."""
    return bucket(workdir, name)


def run_dirs(root: Path | str, pipeline_name: str) -> list[Path]:
    """Run folders of one pipeline under a pipeline root, oldest first (``<name>-<timestamp>``)."""
    pattern = re.compile(re.escape(pipeline_name) + r"-\d{4}(-\d+){6}$")
    found = [
        p for p in Path(root).glob(f"{pipeline_name}-*") if p.is_dir() and pattern.match(p.name)
    ]
    return sorted(found, key=lambda p: p.name)


def latest_run_dir(root: Path | str, pipeline_name: str) -> Path:
    """The newest run folder of a pipeline; a clear error when there is none."""
    found = run_dirs(root, pipeline_name)
    if not found:
        raise CourseError(f"Expected a run of pipeline {pipeline_name!r} under {root}, found none.")
    return found[-1]


def task_outputs(run_dir: Path | str, task: str) -> dict:
    """What a task of a local run reported: its ``executor_output.json`` (parameters and artifacts)."""
    path = Path(run_dir) / task / "executor_output.json"
    if not path.is_file():
        raise CourseError(f"Expected {path} written by task {task!r}, found no such file.")
    return json.loads(path.read_text())


# --------------------------------------------------------------------------- local runs

_FAILED_TASK = re.compile(
    r"Inner task failed: '([^']+)'|Task '([^']+)' finished with status FAILURE"
)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def run_locally(
    pipeline_func: Callable,
    root: Path | str,
    *,
    log_file: Path | str | None = None,
    **arguments,
) -> Path:
    """Run a kfp pipeline with the local subprocess runner and return its run folder.

    The runner's logs (one block per task) go to ``log_file`` (default: ``<root>/last-run.log``),
    not to the notebook. When a task fails, :class:`PipelineStopped` names it and carries the
    report the task wrote (any ``*.md``/``*.txt``/``*.html`` file in its folder) or the last log
    lines.
    """
    from kfp import local

    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    log_path = Path(log_file) if log_file else root / "last-run.log"
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    name = _pipeline_name(pipeline_func)
    before = set(run_dirs(root, name))
    buffer = io.StringIO()
    failure: BaseException | None = None
    import logging

    handler = logging.StreamHandler(buffer)
    kfp_logger = logging.getLogger("kfp")
    saved = (kfp_logger.handlers[:], kfp_logger.propagate)
    try:
        kfp_logger.handlers, kfp_logger.propagate = [handler], False
        with (
            contextlib.redirect_stdout(buffer),
            contextlib.redirect_stderr(buffer),
            _warm_tasks(),
        ):
            pipeline_func(**arguments)
    except Exception as error:  # noqa: BLE001 - reported below as one sentence
        failure = error
    finally:
        kfp_logger.handlers, kfp_logger.propagate = saved
        log_path.write_text(_ANSI.sub("", buffer.getvalue()))
    new = [p for p in run_dirs(root, name) if p not in before]
    run_dir = new[-1] if new else None
    if failure is None:
        return run_dir
    text = _ANSI.sub("", f"{failure}\n{buffer.getvalue()}")
    match = _FAILED_TASK.search(text)
    task = (match.group(1) or match.group(2)) if match else None
    report = _task_report(run_dir, task) if run_dir and task else ""
    if not report:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        errors = [line for line in lines if "Error" in line or "Exception" in line]
        report = (errors or lines)[-1] if lines else str(failure)
    where = f" at task {task!r}" if task else ""
    raise PipelineStopped(
        f"Pipeline {name!r} stopped{where}: {report.splitlines()[0] if report else failure}",
        task=task,
        report=report,
        run_dir=run_dir,
    )


# What kfp's SubprocessRunner starts for a lightweight component (kfp 2.x: component_factory):
# sh -ec '<write $0 to $program_path/ephemeral_component.py; python3 -m kfp.dsl.executor_main
# --component_module_path ... "$@">' <component source> --executor_input ... --function_to_execute ...
_EXECUTOR_MODULE = "kfp.dsl.executor_main"
_WRITES_SOURCE = 'printf "%s" "$0" > "$program_path/ephemeral_component.py"'


def warm_command(full_command: list[str]) -> list[str] | None:
    """The ``python -m kfp.dsl.executor_main ...`` argv of a lightweight task's shell command
    (with ``{source}`` for the component file), or None if the command is of another form."""
    if len(full_command) < 4 or full_command[:2] != ["sh", "-ec"]:
        return None
    script = full_command[2]
    if _EXECUTOR_MODULE not in script or _WRITES_SOURCE not in script or '"$@"' not in script:
        return None
    return [sys.executable, "-m", _EXECUTOR_MODULE, "--component_module_path", "{source}"] + list(
        full_command[4:]
    )


@contextlib.contextmanager
def _warm_tasks():
    """While a local run lasts, kfp's subprocess runner starts each lightweight task warm: the
    same executor, arguments and environment, in a forked process (any other command runs as
    kfp would run it)."""
    from kfp.local import subprocess_task_handler as handler

    original = handler.run_local_subprocess

    def run_task(full_command: list[str], env_vars: dict[str, str] | None = None) -> int:
        argv = warm_command(full_command)
        if argv is None or not warm.enabled():
            return original(full_command=full_command, env_vars=env_vars)
        folder = Path(tempfile.mkdtemp(prefix="kfp-task-"))
        try:
            source = folder / "ephemeral_component.py"
            source.write_text(full_command[3])  # what the shell's printf "%s" "$0" writes
            argv = [str(source) if part == "{source}" else part for part in argv]
            env = {**os.environ, **(env_vars or {}), "_KFP_RUNTIME": "true"}
            completed = warm.run(argv, env=env, merge_stderr=True)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print(completed.stdout, end="")
        print("\n")
        return completed.returncode

    handler.run_local_subprocess = run_task
    try:
        yield
    finally:
        handler.run_local_subprocess = original


def _pipeline_name(pipeline_func: Callable) -> str:
    spec = getattr(pipeline_func, "pipeline_spec", None)
    if spec is not None:
        return spec.pipeline_info.name
    return getattr(pipeline_func, "name", getattr(pipeline_func, "__name__", "pipeline")).replace(
        "_", "-"
    )


def _task_report(run_dir: Path, task: str) -> str:
    folder = run_dir / task
    for path in sorted(folder.glob("*")) if folder.is_dir() else []:
        if path.is_file() and path.name != "executor_output.json":
            try:
                return path.read_text()
            except UnicodeDecodeError:
                continue
    return ""


# --------------------------------------------------------------------------- the real cloud


def submit_to_vertex(
    template_path: Path | str,
    *,
    display_name: str,
    pipeline_root: str,
    project: str | None = None,
    location: str = "europe-west4",
    parameter_values: Mapping[str, object] | None = None,
    service_account: str | None = None,
):
    """Submit a compiled pipeline to Vertex AI Pipelines and return the ``PipelineJob``.

    ``google-cloud-aiplatform`` is an optional extra (``pip install google-cloud-aiplatform``),
    imported only here. Without it, or without Application Default Credentials, this stops
    with :class:`CloudUnavailable` before anything is sent.
    """
    try:
        aiplatform = importlib.import_module("google.cloud.aiplatform")
    except ImportError:
        raise CloudUnavailable(
            "TARGET='gcp' needs the optional package google-cloud-aiplatform, which is not installed "
            "(pip install google-cloud-aiplatform)."
        ) from None
    try:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError
    except ImportError:  # pragma: no cover - google-auth comes with kfp
        raise CloudUnavailable(
            "TARGET='gcp' needs google-auth (pip install google-auth)."
        ) from None
    try:
        _, found_project = google.auth.default()
    except DefaultCredentialsError:
        raise CloudUnavailable(
            "TARGET='gcp' needs Google Cloud credentials, found none "
            "(run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS)."
        ) from None
    if not str(pipeline_root).startswith("gs://"):
        raise CloudUnavailable(f"Vertex AI needs a gs:// pipeline root, found {pipeline_root!r}.")
    aiplatform.init(project=project or found_project, location=location)
    job = aiplatform.PipelineJob(
        display_name=display_name,
        template_path=str(template_path),
        pipeline_root=pipeline_root,
        parameter_values=dict(parameter_values or {}),
    )
    job.submit(service_account=service_account)
    return job
