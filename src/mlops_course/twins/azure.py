"""The local twin of the Azure Machine Learning walkthrough, used by notebook 09.

The files in ``walkthroughs/azure`` are the ones Azure DevOps and Azure ML would use. Here they are

- validated offline: the Azure DevOps YAML with check-jsonschema's built-in Azure Pipelines
  schema, the variables templates with a schema of their own, the Azure ML YAML with the
  ``azure.ai.ml`` loaders (no workspace needed);
- run locally: :func:`run_pipeline` takes the loaded pipeline job, orders its steps by their
  ``${{parent.jobs.<step>.outputs.<name>}}`` bindings, binds inputs and outputs to local folders,
  renders each component's ``command`` and runs it as a subprocess in the component's ``code``
  folder, with one MLflow run per step under one run for the pipeline (Azure ML's tracking speaks
  the MLflow protocol, so the step scripts are the same in both places);
- served locally: :class:`LocalEndpoint` plays an online endpoint whose deployments are MLflow
  scoring servers and whose traffic rule is a registry alias.

With credentials, :func:`submit_to_azure` sends the same files to a real workspace.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_course.errors import CourseError

__all__ = [
    "ADO_SCHEMA",
    "AzureCredentialsMissing",
    "LocalEndpoint",
    "PipelineRun",
    "StepFailed",
    "StepResult",
    "azure_ml_problem",
    "azure_settings",
    "check_ado_files",
    "check_jsonschema",
    "check_variables_files",
    "load_azure_ml_file",
    "mlflow_request",
    "ml_client_from_env",
    "render_command",
    "run_component",
    "quiet_sdk_logs",
    "run_pipeline",
    "sdk_problem",
    "service_principal_command",
    "step_order",
    "submit_to_azure",
    "walkthrough_dir",
]

ADO_SCHEMA = "vendor.azure-pipelines"
# --data-transform unnests compile-time expressions such as "${{ if ... }}:" in variables lists.
ADO_ARGS = (
    "--builtin-schema",
    ADO_SCHEMA,
    "--regex-variant",
    "python",
    "--data-transform",
    "azure-pipelines",
)
WORKSPACE_VARIABLES = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZURE_ML_WORKSPACE")
SERVICE_PRINCIPAL_VARIABLES = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET")
BINDING = re.compile(r"^\$\{\{\s*parent\.(inputs|outputs)\.(\w+)\s*\}\}$")
STEP_BINDING = re.compile(r"^\$\{\{\s*parent\.jobs\.(\w+)\.outputs\.(\w+)\s*\}\}$")
PLACEHOLDER = re.compile(r"\$\{\{\s*(inputs|outputs)\.(\w+)\s*\}\}")


class StepFailed(CourseError, RuntimeError):
    """A pipeline step exited with an error; the message ends with its last stderr lines."""


class AzureCredentialsMissing(CourseError, RuntimeError):
    """TARGET = "azure" without the variables that name a workspace and a credential."""


def walkthrough_dir() -> Path:
    """``walkthroughs/azure`` of the course repository."""
    return Path(__file__).resolve().parents[3] / "walkthroughs" / "azure"


# --------------------------------------------------------------------------- offline checks


def check_jsonschema(args: Iterable[str]) -> tuple[int, dict]:
    """Run check-jsonschema in this process (its click command) with JSON output.

    Returns the exit code and the parsed report (``status``, ``errors``: one per file and
    problem, with ``best_deep_match`` when the schema has alternatives).
    """
    from check_jsonschema.cli.main_command import main
    from click.testing import CliRunner

    result = CliRunner().invoke(main, [*map(str, args), "--output-format", "json"])
    try:
        report = json.loads(result.stdout)
    except ValueError:
        report = {
            "status": "fail",
            "errors": [{"filename": "?", "path": "$", "message": result.output.strip()[-300:]}],
        }
    return result.exit_code, report


def _problems(report: Mapping) -> list[str]:
    problems = []
    for error in report.get("errors", []):
        best = error.get("best_deep_match") or error
        problems.append(f"{Path(error['filename']).name}: {best['path']}: {best['message']}")
    for error in report.get("parse_errors", []):
        problems.append(f"{Path(error.get('filename', '?')).name}: {error.get('message', error)}")
    return problems


def check_ado_files(paths: Iterable[Path | str]) -> list[str]:
    """Problems of Azure DevOps pipeline and step-template files (empty list: all valid)."""
    _, report = check_jsonschema([*ADO_ARGS, *paths])
    return _problems(report)


def check_variables_files(
    paths: Iterable[Path | str], schema: Path | str | None = None
) -> list[str]:
    """Problems of variables-only templates (config-infra-*.yml) against the walkthrough's schema."""
    schema = schema or walkthrough_dir() / "schemas" / "config-infra.schema.json"
    _, report = check_jsonschema(["--schemafile", schema, *paths])
    return _problems(report)


AZURE_ML_LOADERS = {
    "job": "load_job",
    "component": "load_component",
    "data": "load_data",
    "environment": "load_environment",
    "online_endpoint": "load_online_endpoint",
    "online_deployment": "load_online_deployment",
}


def quiet_sdk_logs() -> None:
    """The SDK announces "experimental" classes on stderr when it builds its schemas: mute that."""
    import logging

    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)
    logging.getLogger("azure.identity").setLevel(logging.ERROR)


def load_azure_ml_file(kind: str, path: Path | str) -> Any:
    """Load one Azure ML YAML file with the SDK's loader for ``kind`` (validates it, no workspace)."""
    quiet_sdk_logs()
    import azure.ai.ml

    return getattr(azure.ai.ml, AZURE_ML_LOADERS[kind])(source=str(path))


def sdk_problem(error: BaseException) -> str:
    """The SDK's validation error in one line: ``field: message`` pairs from its JSON report."""
    text = str(error)
    start, end = text.find("{"), text.rfind("}")
    try:
        report = json.loads(text[start : end + 1])
    except ValueError:
        return " ".join(text.split())[:300]
    if isinstance(report, dict) and "errors" in report:
        pairs = [(e.get("path", "?"), e.get("message", "")) for e in report["errors"]]
    else:
        pairs = [
            (k, " ".join(map(str, v)) if isinstance(v, list) else str(v)) for k, v in report.items()
        ]
    return "; ".join(f"{path}: {message}" for path, message in pairs)


def azure_ml_problem(kind: str, path: Path | str) -> str | None:
    """None when the file loads with the SDK's loader for ``kind``, else the problem in one line."""
    try:
        load_azure_ml_file(kind, path)
    except Exception as error:  # noqa: BLE001 - the SDK raises marshmallow and its own errors
        return f"{Path(path).name}: {sdk_problem(error)}"
    return None


def service_principal_command(
    config: Mapping[str, Any], project: str, subscription_id: str, scope: str = "resource-group"
) -> str:
    """The ``az ad sp create-for-rbac`` command for the environment a config file describes.

    ``scope="resource-group"`` grants Contributor on the environment's resource group only
    (least privilege); ``"subscription"`` is the chapter's broader scope.
    """
    variables = config["variables"]
    environment = str(variables["environment"]).capitalize()
    scopes = f"/subscriptions/{subscription_id}"
    if scope == "resource-group":
        group = re.sub(
            r"\$\((\w+)\)", lambda m: str(variables[m.group(1)]), variables["resource_group"]
        )
        scopes += f"/resourceGroups/{group}"
    return (
        f"az ad sp create-for-rbac --name Azure-ARM-{environment}-{project} "
        f"--role Contributor --scopes {scopes}"
    )


# --------------------------------------------------------------------------- local runner


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
    env = dict(os.environ)
    env.update(
        {
            "MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(),
            "MLFLOW_RUN_ID": run.info.run_id,
            "PYTHONUNBUFFERED": "1",
            "MLFLOW_DISABLE_TELEMETRY": "true",
        }
    )
    env.update(extra_env or {})
    started = time.monotonic()
    completed = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
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


# --------------------------------------------------------------------------- the real cloud


def azure_settings(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The workspace coordinates, or :class:`AzureCredentialsMissing` naming what is missing."""
    environ = os.environ if environ is None else environ
    missing = [v for v in WORKSPACE_VARIABLES if not environ.get(v)]
    has_principal = all(environ.get(v) for v in SERVICE_PRINCIPAL_VARIABLES)
    has_cli = bool(environ.get("AZURE_USE_CLI_LOGIN"))
    if not (has_principal or has_cli):
        missing.append(
            "a credential (AZURE_CLIENT_ID, AZURE_TENANT_ID and AZURE_CLIENT_SECRET "
            "of a service principal, or AZURE_USE_CLI_LOGIN=1 after `az login`)"
        )
    if missing:
        raise AzureCredentialsMissing(
            f"TARGET='azure' needs {', '.join(missing)}; set them or run with TARGET='local'."
        )
    return {v: environ[v] for v in WORKSPACE_VARIABLES}


def ml_client_from_env(environ: Mapping[str, str] | None = None):
    """``MLClient(DefaultAzureCredential(), subscription, resource group, workspace)``."""
    settings = azure_settings(environ)
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    return MLClient(
        DefaultAzureCredential(),
        settings["AZURE_SUBSCRIPTION_ID"],
        settings["AZURE_RESOURCE_GROUP"],
        settings["AZURE_ML_WORKSPACE"],
    )


def submit_to_azure(
    ml_client, root: Path | str | None = None, *, wait: bool = True
) -> dict[str, Any]:
    """What the three DevOps pipelines do, through the SDK: environment, data, the training
    pipeline job, the endpoint, blue and green deployments, traffic to blue."""
    quiet_sdk_logs()
    from azure.ai.ml import (
        load_data,
        load_environment,
        load_job,
        load_online_deployment,
        load_online_endpoint,
    )

    root = Path(root) if root else walkthrough_dir()
    aml = root / "mlops" / "azureml"
    done: dict[str, Any] = {}
    done["environment"] = ml_client.environments.create_or_update(
        load_environment(aml / "train" / "train-env.yml")
    )
    done["data"] = ml_client.data.create_or_update(load_data(aml / "train" / "data.yml"))
    job = ml_client.jobs.create_or_update(load_job(aml / "train" / "pipeline.yml"))
    done["job"] = job
    if wait:
        ml_client.jobs.stream(job.name)
    endpoint = load_online_endpoint(aml / "deploy" / "online" / "online-endpoint.yml")
    done["endpoint"] = ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    for color in ("blue", "green"):
        deployment = load_online_deployment(
            aml / "deploy" / "online" / f"online-deployment-{color}.yml"
        )
        done[color] = ml_client.online_deployments.begin_create_or_update(deployment).result()
    endpoint.traffic = {"blue": 100, "green": 0}
    done["traffic"] = ml_client.online_endpoints.begin_create_or_update(endpoint).result()
    return done
