"""The local twin of the Google Cloud (Vertex AI) walkthrough, used by notebook 10.

What stands in for what:

* Cloud Storage: a folder (``<workdir>/gcs/<bucket>``); the pipeline root is one of them.
* BigQuery: a SQLite file (``<workdir>/bigquery/<dataset>.db``), one table per BigQuery table.
* Vertex Pipelines: ``kfp.local`` with ``SubprocessRunner(use_venv=False)``; the compiled YAML is
  the same file Vertex AI would run.
* Vertex Model Registry: the MLflow model registry.

Also here: the model card renderer the model-card component imports, the optional switch to
the real Vertex AI (``submit_to_vertex``), and the checks of the Terraform and CI/CD files in
``walkthroughs/gcp``.
"""

from __future__ import annotations

import base64
import contextlib
import html
import importlib
import io
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from mlops_course.errors import CourseError

__all__ = [
    "CloudUnavailable",
    "PipelineStopped",
    "TERRAFORM_ENVIRONMENTS",
    "bucket",
    "check_schema",
    "embedded_png_images",
    "figure_png",
    "latest_run",
    "load_terraform",
    "pipeline_root",
    "render_model_card",
    "resource_name",
    "run_dirs",
    "run_locally",
    "submit_to_vertex",
    "task_outputs",
    "terraform_problems",
    "terraform_resources",
    "variables_declared",
    "variables_used",
    "walkthrough_dir",
]

TERRAFORM_ENVIRONMENTS = ("01-dev", "02-staging", "03-prod")
# Attributes that carry a resource's name, in the order they are looked for.
NAME_ATTRIBUTES = (
    "account_id",
    "dataset_id",
    "repository_id",
    "workload_identity_pool_provider_id",
    "workload_identity_pool_id",
    "project_id",
    "name",
)
# The prefix convention: every named resource starts with "<prefix>-<environment>" (or its
# underscore form where a name cannot hold dashes, as in BigQuery datasets).
PREFIX_FORMS = (
    "${local.name_prefix}",
    "${local.dataset_prefix}",
    "${var.prefix}-${var.environment}",
)


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


def walkthrough_dir() -> Path:
    """``walkthroughs/gcp`` of the course repository."""
    return Path(__file__).resolve().parents[3] / "walkthroughs" / "gcp"


def bucket(workdir: Path | str, name: str) -> Path:
    """The Cloud Storage twin: a folder ``<workdir>/gcs/<name>`` (created if needed)."""
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


def latest_run(root: Path | str, pipeline_name: str) -> Path:
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
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
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


# --------------------------------------------------------------------------- model card


def figure_png(figure) -> bytes:
    """A matplotlib figure as PNG bytes (the figure is closed)."""
    import matplotlib.pyplot as plt

    data = io.BytesIO()
    figure.savefig(data, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    return data.getvalue()


def render_model_card(
    title: str,
    overview: Mapping[str, object],
    statistics: Mapping[str, float],
    figures: Mapping[str, bytes],
    notes: Iterable[str] = (),
) -> str:
    """A self-contained HTML model card: overview, performance statistics, plots as base64 PNG."""
    esc = html.escape
    rows = "".join(
        f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in overview.items()
    )
    stats = "".join(
        f"<tr><th>{esc(k)}</th><td>{v:.4f}</td></tr>"
        if isinstance(v, float)
        else f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>"
        for k, v in statistics.items()
    )
    images = "".join(
        f'<figure style="display:inline-block;margin:4px"><img alt="{esc(name)}" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode()}"/>'
        f"<figcaption>{esc(name)}</figcaption></figure>"
        for name, png in figures.items()
    )
    items = "".join(f"<li>{esc(n)}</li>" for n in notes)
    style = "table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:2px 8px;text-align:left}"
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
        f"<style>{style}</style></head><body><h2>{esc(title)}</h2>"
        f"<h3>Model details</h3><table>{rows}</table>"
        f"<h3>Performance on validation data</h3><table>{stats}</table>"
        f"<h3>Plots</h3>{images}"
        + (f"<h3>Considerations</h3><ul>{items}</ul>" if items else "")
        + "</body></html>"
    )


_IMG = re.compile(r'<img[^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


def embedded_png_images(page: str) -> list[bytes]:
    """The PNG images embedded in an HTML page (decoded); only real PNGs are returned."""
    images = []
    for encoded in _IMG.findall(page):
        data = base64.b64decode(encoded)
        if data.startswith(b"\x89PNG\r\n\x1a\n"):
            images.append(data)
    return images


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


# --------------------------------------------------------------------------- Terraform


def load_terraform(env_dir: Path | str) -> dict[str, dict]:
    """Every ``*.tf`` file of an environment folder, parsed with python-hcl2 (name -> dict)."""
    import hcl2

    parsed = {}
    for path in sorted(Path(env_dir).glob("*.tf")):
        with path.open() as handle:
            parsed[path.name] = hcl2.load(handle)
    return parsed


def _blocks(parsed: Mapping[str, dict], kind: str) -> list[dict]:
    return [block for document in parsed.values() for block in document.get(kind, [])]


def terraform_resources(env_dir: Path | str) -> dict[str, dict]:
    """``"type.name"`` -> the resource's attributes, for every resource of an environment."""
    found = {}
    for block in _blocks(load_terraform(env_dir), "resource"):
        for rtype, named in block.items():
            for rname, body in named.items():
                found[f"{rtype}.{rname}"] = body
    return found


def variables_declared(env_dir: Path | str) -> set[str]:
    return {name for block in _blocks(load_terraform(env_dir), "variable") for name in block}


_VAR = re.compile(r"\bvar\.([A-Za-z_][A-Za-z0-9_-]*)")


def variables_used(env_dir: Path | str) -> set[str]:
    """Every ``var.x`` referenced in an environment's ``*.tf`` files."""
    parsed = load_terraform(env_dir)
    return set(_VAR.findall(json.dumps(parsed)))


def _tfvars(env_dir: Path) -> dict:
    import hcl2

    path = env_dir / "terraform.tfvars"
    if not path.is_file():
        return {}
    with path.open() as handle:
        return hcl2.load(handle)


def resource_name(body: Mapping) -> str | None:
    for attribute in NAME_ATTRIBUTES:
        value = body.get(attribute)
        if isinstance(value, str):
            return value
    return None


def terraform_problems(
    root: Path | str | None = None, environments: Iterable[str] = TERRAFORM_ENVIRONMENTS
) -> list[str]:
    """Everything wrong with the Terraform environments, one sentence each (empty: all good).

    Checks: each environment has main.tf, variables.tf, terraform.tfvars and outputs.tf; all
    declare the same resources (type and name); every ``var.x`` used is declared; every value
    in terraform.tfvars is a declared variable; every named resource follows the prefix
    convention (its name starts with ``${local.name_prefix}`` or the underscore form).
    """
    root = Path(root) if root else walkthrough_dir() / "terraform"
    problems: list[str] = []
    inventories = {}
    for env in environments:
        env_dir = root / env
        for name in ("main.tf", "variables.tf", "terraform.tfvars", "outputs.tf"):
            if not (env_dir / name).is_file():
                problems.append(f"Expected {env}/{name}, found no such file.")
        if not env_dir.is_dir():
            continue
        try:
            resources = terraform_resources(env_dir)
            declared, used = variables_declared(env_dir), variables_used(env_dir)
            tfvars = _tfvars(env_dir)
        except Exception as error:  # noqa: BLE001 - a parse error is a problem to report
            problems.append(f"Expected {env} to parse as HCL, found: {str(error).splitlines()[0]}")
            continue
        inventories[env] = set(resources)
        for missing in sorted(used - declared):
            problems.append(
                f"Expected variable {missing!r} used in {env} to be declared, found no declaration."
            )
        for unknown in sorted(set(tfvars) - declared):
            problems.append(
                f"Expected {env}/terraform.tfvars to set declared variables only, found {unknown!r}."
            )
        for address, body in sorted(resources.items()):
            name = resource_name(body)
            if name is not None and not name.startswith(PREFIX_FORMS):
                problems.append(
                    f"Expected {env} resource {address} to be named with the prefix convention "
                    f"(${{local.name_prefix}}-...), found {name!r}."
                )
    if inventories:
        reference_env, reference = next(iter(inventories.items()))
        for env, inventory in inventories.items():
            if inventory != reference:
                extra, missing = sorted(inventory - reference), sorted(reference - inventory)
                problems.append(
                    f"Expected {env} to declare the same resources as {reference_env}, "
                    f"found extra {extra or 'none'} and missing {missing or 'none'}."
                )
    return problems


# --------------------------------------------------------------------------- CI/CD files


def check_schema(paths: Iterable[Path | str], builtin: str) -> tuple[bool, str]:
    """Validate files with check-jsonschema's built-in schema (e.g. ``vendor.github-workflows``).

    Returns (passed, output). Runs offline: the vendored schemas ship with check-jsonschema.
    """
    command = [
        sys.executable,
        "-m",
        "check_jsonschema",
        "--builtin-schema",
        builtin,
        "--no-cache",
        *map(str, paths),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    return done.returncode == 0, (done.stdout + done.stderr).strip()
