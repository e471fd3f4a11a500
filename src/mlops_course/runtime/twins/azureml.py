"""Azure ML pipelines and online endpoints, run locally: the twin behind notebook 09's runs.

- :func:`run_pipeline` takes a pipeline job loaded from ``walkthroughs/azure`` with the SDK
  (``load_job``), orders its steps by their ``${{parent.jobs.<step>.outputs.<name>}}``
  bindings, binds inputs and outputs to local folders, renders each component's ``command``
  and runs it as a process of its own in the component's ``code`` folder (started warm, see
  :mod:`mlops_course.runtime.warm`), with one MLflow run per step
  under one run for the pipeline. Azure ML's tracking speaks the MLflow protocol, so the step
  scripts are the same in both places.
- :class:`LocalEndpoint` plays an online endpoint whose deployments are MLflow scoring
  servers and whose traffic rule is a registry alias.

The files themselves are checked by :mod:`mlops_course.runtime.twins.azure`.
"""

from __future__ import annotations

import re
import shlex
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_course import environment
from mlops_course.runtime import warm
from mlops_course.runtime.errors import CourseError

__all__ = [
    "LocalEndpoint",
    "PipelineRun",
    "StepFailed",
    "StepResult",
    "mlflow_request",
    "render_command",
    "run_component",
    "run_pipeline",
    "step_order",
]

BINDING = re.compile(r"^\$\{\{\s*parent\.(inputs|outputs)\.(\w+)\s*\}\}$")
STEP_BINDING = re.compile(r"^\$\{\{\s*parent\.jobs\.(\w+)\.outputs\.(\w+)\s*\}\}$")
PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.(\w+)\s*\}\}")


class StepFailed(CourseError, RuntimeError):
    """A pipeline step exited with an error; the message ends with its last stderr lines."""


@dataclass
class StepResult:
    """One step as it ran: the command, where, what it produced, and its MLflow run."""

    name: str
    argv: list[str]
    cwd: Path
    inputs: dict[str, Any]
    outputs: dict[str, Path]
    run_id: str
    seconds: float
    stdout: str


@dataclass
class PipelineRun:
    """A local run of a pipeline job: its MLflow run, its steps in order, its outputs."""

    run_id: str
    experiment_name: str
    steps: dict[str, StepResult] = field(default_factory=dict)
    outputs: dict[str, Path] = field(default_factory=dict)


def _binding(value: Any) -> Any:
    """What a node's input or output is bound to: the binding string, a literal, or None."""
    return getattr(value, "_data", value)


def step_order(job) -> list[str]:
    """The pipeline's steps in dependency order (YAML order among independent steps)."""
    warm.prepare()  # the steps' processes, run next, start warm
    needs: dict[str, set[str]] = {}
    for name, node in job.jobs.items():
        needs[name] = set()
        for value in node.inputs.values():
            match = STEP_BINDING.match(str(_binding(value)))
            if match:
                needs[name].add(match.group(1))
    order: list[str] = []
    while len(order) < len(needs):
        ready = [n for n in needs if n not in order and needs[n] <= set(order)]
        if not ready:
            raise CourseError(f"The pipeline's steps depend on each other in a cycle: {needs}.")
        order.append(ready[0])
    return order


def render_command(command: str, values: Mapping[str, Any]) -> list[str]:
    """The component's command with ``${{inputs.x}}``/``${{outputs.y}}`` filled in, as argv."""

    def fill(match: re.Match) -> str:
        key = f"{match.group(1)}.{match.group(2)}"
        if key not in values:
            raise CourseError(f"The command uses ${{{{{key}}}}}, which no input or output binds.")
        return shlex.quote(str(values[key]))

    argv = shlex.split(PLACEHOLDER.sub(fill, command))
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable  # the environment's interpreter stands in for the image's
    return argv


def _client():
    from mlflow import MlflowClient

    return MlflowClient()


def run_component(
    component,
    inputs: Mapping[str, Any],
    outputs: Mapping[str, Path | str],
    *,
    code_dir: Path | str | None = None,
    name: str | None = None,
    experiment_id: str | None = None,
    parent_run_id: str | None = None,
    extra_env: Mapping[str, str] | None = None,
) -> StepResult:
    """Run one command component locally: inputs (component defaults fill the gaps), outputs as
    folders, ``code`` folder as working directory (or ``code_dir``), one MLflow run for the step."""
    import mlflow

    name = name or component.name
    values: dict[str, Any] = {}
    bound: dict[str, Any] = {}
    for key, spec in component.inputs.items():
        value = inputs.get(key)
        if value is None:
            value = getattr(spec, "default", None)
        if value is None:
            raise CourseError(f"Step {name!r}: input {key!r} has no value and no default.")
        if isinstance(value, Path):
            value = value.resolve()  # the step runs in its code folder: relative paths would break
        values[f"inputs.{key}"] = bound[key] = value
    folders: dict[str, Path] = {}
    for key in component.outputs:
        if key not in outputs:
            raise CourseError(f"Step {name!r}: output {key!r} is not bound to a folder.")
        folders[key] = Path(outputs[key]).resolve()
        folders[key].mkdir(parents=True, exist_ok=True)
        values[f"outputs.{key}"] = folders[key]
    cwd = (
        Path(code_dir) if code_dir else (Path(component.base_path) / str(component.code)).resolve()
    )
    argv = render_command(component.command, values)

    client = _client()
    if experiment_id is None:
        experiment_id = mlflow.get_experiment_by_name("Default").experiment_id
    tags = {"azureml.component": f"{component.name}:{component.version}"}
    if parent_run_id:
        tags["mlflow.parentRunId"] = parent_run_id
    run = client.create_run(experiment_id, run_name=name, tags=tags)
    client.log_batch(
        run.info.run_id,
        params=[mlflow.entities.Param(f"input.{k}", str(v)[:500]) for k, v in bound.items()],
    )
    env = environment.child_env(
        {
            "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
            "MLFLOW_RUN_ID": run.info.run_id,
            **(extra_env or {}),
        }
    )
    started = time.monotonic()
    completed = warm.run(argv, cwd=cwd, env=env)  # a process of its own, forked warm
    seconds = round(time.monotonic() - started, 2)
    if completed.returncode != 0:
        client.set_terminated(run.info.run_id, "FAILED")
        tail = "\n".join(completed.stderr.strip().splitlines()[-8:])
        raise StepFailed(
            f"Step {name!r} exited with code {completed.returncode}; its last lines:\n{tail}"
        )
    if client.get_run(run.info.run_id).info.status == "RUNNING":  # a step that logged nothing
        client.set_terminated(run.info.run_id, "FINISHED")
    return StepResult(name, argv, cwd, bound, folders, run.info.run_id, seconds, completed.stdout)


def _asset_path(value: Any, data_assets: Mapping[str, Any]) -> Any:
    """A pipeline input's local value: ``azureml:<asset>@latest`` becomes the asset's path."""
    path = value.get("path") if isinstance(value, dict) else getattr(value, "path", None)
    if path is None:
        return value
    asset = str(path).removeprefix("azureml:").split("@")[0].split(":")[0]
    if asset in data_assets:
        found = data_assets[asset]
        return getattr(found, "path", found)
    if str(path).startswith("azureml:") or not Path(str(path)).exists():
        raise CourseError(
            f"Input path {path!r} is not a local file or a known data asset "
            f"(known: {sorted(data_assets) or 'none'})."
        )
    return path


def run_pipeline(
    job,
    workdir: Path | str,
    *,
    inputs: Mapping[str, Any] | None = None,
    data_assets: Mapping[str, Any] | None = None,
    experiment_name: str | None = None,
    display_name: str | None = None,
    verbose: bool = True,
) -> PipelineRun:
    """Run a loaded pipeline job (``load_job(...)``) locally, step by step, in dependency order.

    ``inputs`` overrides the pipeline's inputs (like ``--set inputs.alpha=0.1``); ``data_assets``
    maps data asset names to loaded ``Data`` objects (or paths) for ``azureml:<name>@latest``.
    Step outputs go to ``workdir/<step>/<output>``, pipeline outputs to ``workdir/outputs/<name>``.
    """
    import mlflow

    workdir = Path(workdir).resolve()
    parent_inputs = {k: _asset_path(_binding(v), data_assets or {}) for k, v in job.inputs.items()}
    parent_inputs.update(inputs or {})
    experiment_name = experiment_name or job.experiment_name or "Default"
    client = _client()
    experiment = client.get_experiment_by_name(experiment_name)
    experiment_id = (
        experiment.experiment_id if experiment else client.create_experiment(experiment_name)
    )
    parent = client.create_run(
        experiment_id,
        run_name=display_name or job.display_name,
        tags={"azureml.pipeline": job.display_name or ""},
    )
    client.log_batch(
        parent.info.run_id,
        params=[mlflow.entities.Param(k, str(v)[:500]) for k, v in parent_inputs.items()],
    )
    result = PipelineRun(parent.info.run_id, experiment_name)
    try:
        for name in step_order(job):
            node = job.jobs[name]
            step_inputs: dict[str, Any] = {}
            for key, value in node.inputs.items():
                binding = _binding(value)
                text = str(binding)
                if (match := BINDING.match(text)) and match.group(1) == "inputs":
                    step_inputs[key] = parent_inputs[match.group(2)]
                elif match := STEP_BINDING.match(text):
                    step_inputs[key] = result.steps[match.group(1)].outputs[match.group(2)]
                elif binding is not None:
                    step_inputs[key] = binding
            step_outputs: dict[str, Path] = {}
            for key, value in node.outputs.items():
                match = BINDING.match(str(_binding(value)))
                if match and match.group(1) == "outputs":
                    step_outputs[key] = result.outputs[match.group(2)] = (
                        workdir / "outputs" / match.group(2)
                    )
                else:
                    step_outputs[key] = workdir / name / key
            step = run_component(
                node.component,
                step_inputs,
                step_outputs,
                name=name,
                experiment_id=experiment_id,
                parent_run_id=parent.info.run_id,
            )
            result.steps[name] = step
            if verbose:
                print(
                    f"  {name:<9} {step.stdout.strip().splitlines()[-1] if step.stdout.strip() else 'done'}"
                )
    except BaseException:
        client.set_terminated(parent.info.run_id, "FAILED")
        raise
    client.set_terminated(parent.info.run_id, "FINISHED")
    return result


# --------------------------------------------------------------------------- local endpoint


def mlflow_request(body: Mapping) -> dict:
    """Azure ML's request for MLflow models (``{"input_data": {columns, index, data}}``) in the
    MLflow scoring server's own words (``dataframe_split``); other bodies pass unchanged."""
    if "input_data" in body and isinstance(body["input_data"], Mapping):
        return {"dataframe_split": dict(body["input_data"])}
    return dict(body)


class LocalEndpoint:
    """An online endpoint played locally: named deployments are scoring servers (one per model
    version), and the traffic rule is the registry alias ``alias`` of ``model_name``: all traffic
    goes to the deployment serving the version the alias points to. Moving the alias switches
    traffic at once, without restarting any server."""

    def __init__(self, name: str, model_name: str, alias: str = "production") -> None:
        self.name = name
        self.model_name = model_name
        self.alias = alias
        self.deployments: dict[str, tuple[int, Any]] = {}

    def add_deployment(self, name: str, version: int, server) -> None:
        self.deployments[name] = (int(version), server)

    @property
    def traffic(self) -> dict[str, int]:
        """Like Azure's ``endpoint.traffic``: percent of requests per deployment."""
        try:
            live = int(_client().get_model_version_by_alias(self.model_name, self.alias).version)
        except Exception:  # noqa: BLE001 - no alias yet: no traffic anywhere
            live = None
        return {
            name: 100 if version == live else 0 for name, (version, _) in self.deployments.items()
        }

    def invoke(self, body: Mapping, deployment: str | None = None) -> dict:
        """POST ``body`` to the deployment the traffic rule picks, or to ``deployment`` directly."""
        import requests

        if deployment is None:
            live = [name for name, share in self.traffic.items() if share == 100]
            if not live:
                raise CourseError(
                    f"Endpoint {self.name!r} has no deployment with traffic: set the "
                    f"alias {self.alias!r} of {self.model_name!r} to a deployed version."
                )
            deployment = live[0]
        _, server = self.deployments[deployment]
        response = requests.post(f"{server.url}/invocations", json=mlflow_request(body), timeout=30)
        response.raise_for_status()
        return {"deployment": deployment, **response.json()}
