"""The Azure side of notebook 09: the walkthrough's files checked offline, identity, the cloud.

The files in ``walkthroughs/azure`` are the ones Azure DevOps and Azure ML would use. Here they
are validated offline: the Azure DevOps YAML with check-jsonschema's built-in Azure Pipelines
schema, the variables templates with a schema of their own, the Azure ML YAML with the
``azure.ai.ml`` loaders (no workspace needed). They are run locally by
:mod:`mlops_course.runtime.twins.azureml`. With credentials, :func:`submit_to_azure` sends the
same files to a real workspace.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlops_course import paths
from mlops_course.runtime import schemas
from mlops_course.runtime.errors import CourseError

__all__ = [
    "ADO_OPTIONS",
    "ADO_SCHEMA",
    "AzureCredentialsMissing",
    "azure_ml_problem",
    "azure_settings",
    "check_ado_files",
    "check_variables_files",
    "load_azure_ml_file",
    "ml_client_from_env",
    "quiet_sdk_logs",
    "sdk_problem",
    "service_principal_command",
    "submit_to_azure",
]

ADO_SCHEMA = "vendor.azure-pipelines"
# --regex-variant python: the schema's patterns are not all valid ECMAScript regexes.
# --data-transform unnests compile-time expressions such as "${{ if ... }}:" in variables lists.
ADO_OPTIONS = ("--regex-variant", "python", "--data-transform", "azure-pipelines")
WORKSPACE_VARIABLES = ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZURE_ML_WORKSPACE")
SERVICE_PRINCIPAL_VARIABLES = ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET")


class AzureCredentialsMissing(CourseError, RuntimeError):
    """TARGET = "azure" without the variables that name a workspace and a credential."""


# --------------------------------------------------------------------------- offline checks


def check_ado_files(files: Iterable[Path | str]) -> list[str]:
    """Problems of Azure DevOps pipeline and step-template files (empty list: all valid)."""
    return schemas.check_files(files, builtin=ADO_SCHEMA, options=ADO_OPTIONS)


def check_variables_files(
    files: Iterable[Path | str], schema: Path | str | None = None
) -> list[str]:
    """Problems of variables-only templates (config-infra-*.yml) against the walkthrough's schema."""
    schema = schema or paths.walkthrough("azure") / "schemas" / "config-infra.schema.json"
    return schemas.check_files(files, schemafile=schema)


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

    root = Path(root) if root else paths.walkthrough("azure")
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
