"""The Azure walkthrough (notebook 09): every file valid, a corrupted copy of each kind rejected,
the training pipeline run locally by the twin's runner, and the cloud path with a fake MLClient."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from unittest import mock

import pytest

from mlops_course import paths
from mlops_course.runtime.errors import CourseError
from mlops_course.runtime.twins import azure, azureml

WALK = paths.walkthrough("azure")
AML = WALK / "mlops" / "azureml"
ADO_FILES = sorted((WALK / "mlops" / "devops-pipelines").rglob("*.yml"))
CONFIG_FILES = sorted(WALK.glob("config-infra-*.yml"))
AZURE_ML_FILES = [
    ("data", AML / "train" / "data.yml"),
    ("environment", AML / "train" / "train-env.yml"),
    *[
        ("component", AML / "components" / f"{c}.yml")
        for c in ("prep", "train", "evaluate", "register")
    ],
    ("job", AML / "train" / "pipeline.yml"),
    ("online_endpoint", AML / "deploy" / "online" / "online-endpoint.yml"),
    ("online_deployment", AML / "deploy" / "online" / "online-deployment-blue.yml"),
    ("online_deployment", AML / "deploy" / "online" / "online-deployment-green.yml"),
]
SECONDS: dict[str, float] = {}


@pytest.fixture(scope="module", autouse=True)
def _report_seconds():
    yield
    if SECONDS:
        print("\nAzure twin timings:", {k: round(v, 1) for k, v in SECONDS.items()})


def _corrupt(source: Path, old: str, new: str, folder: Path) -> Path:
    text = source.read_text()
    assert old in text, f"{old!r} is not in {source}: update the test"
    target = folder / source.name
    target.write_text(text.replace(old, new, 1))
    return target


# ------------------------------------------------------------------ validation


def test_every_file_is_valid():
    started = time.monotonic()
    assert len(ADO_FILES) >= 15, f"Expected the pipelines and their templates, found {ADO_FILES}"
    assert azure.check_ado_files(ADO_FILES) == []
    assert azure.check_variables_files(CONFIG_FILES) == []
    for kind, path in AZURE_ML_FILES:
        assert azure.azure_ml_problem(kind, path) is None, f"{path} does not load as {kind}"
    SECONDS["validation"] = time.monotonic() - started


def test_pipelines_use_the_config_names():
    import yaml

    for path in CONFIG_FILES:
        variables = yaml.safe_load(path.read_text())["variables"]
        env = variables["environment"].capitalize()
        assert variables["ado_service_connection_rg"] == f"Azure-ARM-{env}"
        assert variables["ado_service_connection_aml_ws"] == f"Azure-ARM-{env}"
        assert (variables["training_target"], variables["training_target_sku"]) == (
            "cpu-cluster",
            "STANDARD_D2_V2",
        )
        assert (variables["training_target_min_nodes"], variables["training_target_max_nodes"]) == (
            0,
            4,
        )
        assert variables["training_target_tier"] == "dedicated"
    # Every template a pipeline refers to exists, and gets every parameter it requires.
    for path in ADO_FILES:
        pipeline = yaml.safe_load(path.read_text())
        steps = [
            s for stage in pipeline.get("stages", []) for job in stage["jobs"] for s in job["steps"]
        ]
        for step in steps + pipeline.get("steps", []):
            if "template" not in step:
                continue
            template = path.parent / step["template"]
            assert template.is_file(), (
                f"{path.name} refers to a missing template {step['template']}"
            )
            declared = yaml.safe_load(template.read_text()).get("parameters", [])
            required = {p["name"] for p in declared if "default" not in p}
            given = set(step.get("parameters", {}))
            assert required <= given, f"{path.name}: {step['template']} misses {required - given}"
            assert given <= {p["name"] for p in declared}, (
                f"{path.name}: unknown parameters {given}"
            )


def test_service_principal_command():
    import yaml

    config = yaml.safe_load((WALK / "config-infra-prod.yml").read_text())
    wide = azure.service_principal_command(config, "proj", "SUB", scope="subscription")
    assert (
        wide
        == "az ad sp create-for-rbac --name Azure-ARM-Prod-proj --role Contributor --scopes /subscriptions/SUB"
    )
    narrow = azure.service_principal_command(config, "proj", "SUB")
    assert narrow.endswith("--scopes /subscriptions/SUB/resourceGroups/rg-mlopsv2-0426prod")


@pytest.mark.parametrize(
    ("source", "old", "new"),
    [
        ("mlops/devops-pipelines/deploy-infra.yml", "        steps:", "        step:"),
        (
            "mlops/devops-pipelines/deploy-online-endpoint-pipeline.yml",
            "            parameters:",
            "            parameter:",
        ),
        (
            "mlops/devops-pipelines/run-unit-tests.yml",
            "  - task: PublishTestResults@2",
            "  - tsk: PublishTestResults@2",
        ),
        (
            "mlops/devops-pipelines/templates/create-workspace.yml",
            "    type: string",
            "    type: text",
        ),
    ],
)
def test_a_corrupted_pipeline_is_rejected(tmp_path, source, old, new):
    bad = _corrupt(WALK / source, old, new, tmp_path)
    problems = azure.check_ado_files([bad])
    assert problems and problems[0].startswith(bad.name), problems


def test_a_corrupted_variables_file_is_rejected(tmp_path):
    schema = WALK / "schemas" / "config-infra.schema.json"
    four = _corrupt(
        WALK / "config-infra-prod.yml",
        "training_target_max_nodes: 4",
        "training_target_max_nodes: four",
        tmp_path,
    )
    assert any(
        "training_target_max_nodes" in p for p in azure.check_variables_files([four], schema)
    )
    missing = _corrupt(
        WALK / "config-infra-dev.yml", "  training_target: cpu-cluster\n", "", tmp_path
    )
    assert any("training_target" in p for p in azure.check_variables_files([missing], schema))
    # A variables template is not a pipeline: the pipeline schema alone would not do.
    assert azure.check_ado_files([WALK / "config-infra-prod.yml"])


@pytest.mark.parametrize(
    ("kind", "source", "old", "new", "field"),
    [
        ("data", "train/data.yml", "type: uri_file", "type: uri_fil", "type"),
        ("environment", "train/train-env.yml", "image: ", "imag: ", "imag"),
        ("component", "components/train.yml", "    type: number", "    type: numbr", "type"),
        (
            "job",
            "train/pipeline.yml",
            "    component: ../components/train.yml",
            "    componnet: ../components/train.yml",
            "component",
        ),
        (
            "online_endpoint",
            "deploy/online/online-endpoint.yml",
            "auth_mode: key",
            "auth_mode: password",
            "auth_mode",
        ),
        (
            "online_deployment",
            "deploy/online/online-deployment-green.yml",
            "instance_count: 1",
            'instance_count: "two"',
            "instance_count",
        ),
    ],
)
def test_a_corrupted_azure_ml_file_is_rejected(tmp_path, kind, source, old, new, field):
    copy = tmp_path / "walk"  # a whole copy: the files refer to each other by relative paths
    shutil.copytree(WALK, copy, ignore=shutil.ignore_patterns("__pycache__"))
    bad = copy / "mlops" / "azureml" / source
    assert old in bad.read_text(), f"{old!r} is not in {source}: update the test"
    bad.write_text(bad.read_text().replace(old, new, 1))
    problem = azure.azure_ml_problem(kind, bad)
    assert problem and field in problem, problem


# ------------------------------------------------------------------ the local runner


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A fresh MLflow store and a working copy of the walkthrough with its data."""
    import mlflow
    from sklearn.datasets import load_diabetes

    folder = tmp_path_factory.mktemp("azure-twin")
    walk = folder / "azure-mlops"
    shutil.copytree(WALK, walk)
    (walk / "data").mkdir(exist_ok=True)
    load_diabetes(as_frame=True).frame.to_csv(walk / "data" / "diabetes.csv", index=False)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    with mock.patch.dict("os.environ", {"MLFLOW_TRACKING_URI": uri}):
        yield {"folder": folder, "walk": walk, "uri": uri}
    mlflow.set_tracking_uri(previous)


@pytest.mark.servers
def test_step_order_and_command_rendering(store):
    job = azure.load_azure_ml_file("job", store["walk"] / "mlops/azureml/train/pipeline.yml")
    assert azureml.step_order(job) == ["prep", "train", "evaluate", "register"]
    argv = azureml.render_command(
        "python train.py --a ${{inputs.a}} --o ${{outputs.o}}",
        {"inputs.a": "x y", "outputs.o": Path("/out")},
    )
    assert argv[1:] == ["train.py", "--a", "x y", "--o", "/out"] and Path(argv[0]).name.startswith(
        "python"
    )
    with pytest.raises(CourseError):
        azureml.render_command("python t.py ${{inputs.missing}}", {})


@pytest.mark.servers
def test_local_pipeline_registers_a_model_with_its_metrics(store):
    from mlflow import MlflowClient

    walk = store["walk"]
    job = azure.load_azure_ml_file("job", walk / "mlops/azureml/train/pipeline.yml")
    data = azure.load_azure_ml_file("data", walk / "mlops/azureml/train/data.yml")
    started = time.monotonic()
    run = azureml.run_pipeline(
        job, store["folder"] / "run", data_assets={"diabetes-data": data}, verbose=False
    )
    SECONDS["local pipeline run"] = time.monotonic() - started
    client = MlflowClient()
    assert list(run.steps) == ["prep", "train", "evaluate", "register"]
    info = json.loads(
        (run.steps["register"].outputs["model_info_output"] / "model_info.json").read_text()
    )
    assert info == {"registered": True, "name": "diabetes-model", "version": 1}
    version = client.get_model_version("diabetes-model", "1")
    assert float(version.tags["test_rmse"]) > 0
    evaluate = client.get_run(run.steps["evaluate"].run_id)
    assert evaluate.data.tags["deploy_flag"] == "1" and evaluate.data.metrics["test_rmse"] > 0
    train = client.get_run(run.steps["train"].run_id)
    assert train.data.params["alpha"] == "10.0" and "train_rmse" in train.data.metrics
    for step in run.steps.values():
        child = client.get_run(step.run_id)
        assert child.info.status == "FINISHED"
        assert child.data.tags["mlflow.parentRunId"] == run.run_id
    assert client.get_run(run.run_id).info.status == "FINISHED"
    assert (run.outputs["trained_model"] / "MLmodel").is_file()
    # A failing step fails its run and the pipeline's, with a one-sentence error.
    broken = walk / "data-science" / "src" / "prep.py"
    original = broken.read_text()
    broken.write_text("raise SystemExit('prep is broken')\n")
    try:
        with pytest.raises(azureml.StepFailed, match="Step 'prep' exited with code 1"):
            azureml.run_pipeline(
                job, store["folder"] / "failed", data_assets={"diabetes-data": data}, verbose=False
            )
    finally:
        broken.write_text(original)


def test_components_unit_tests_pass():
    import subprocess
    import sys

    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            str(WALK / "data-science" / "tests"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout[-1500:]


def test_mlflow_request_translates_azure_bodies():
    body = {"input_data": {"columns": ["a"], "index": [0], "data": [[1.0]]}}
    assert azureml.mlflow_request(body) == {"dataframe_split": body["input_data"]}
    assert azureml.mlflow_request({"inputs": [1]}) == {"inputs": [1]}


# ------------------------------------------------------------------ the cloud path


def test_azure_needs_credentials():
    with pytest.raises(azure.AzureCredentialsMissing, match="AZURE_SUBSCRIPTION_ID"):
        azure.azure_settings({})
    workspace = {
        "AZURE_SUBSCRIPTION_ID": "s",
        "AZURE_RESOURCE_GROUP": "rg",
        "AZURE_ML_WORKSPACE": "ws",
    }
    with pytest.raises(azure.AzureCredentialsMissing, match="credential"):
        azure.azure_settings(workspace)
    principal = {"AZURE_CLIENT_ID": "c", "AZURE_TENANT_ID": "t", "AZURE_CLIENT_SECRET": "x"}
    assert azure.azure_settings({**workspace, **principal}) == workspace


def test_ml_client_from_env_builds_the_client():
    environ = {
        "AZURE_SUBSCRIPTION_ID": "sub",
        "AZURE_RESOURCE_GROUP": "rg",
        "AZURE_ML_WORKSPACE": "ws",
        "AZURE_USE_CLI_LOGIN": "1",
    }
    with (
        mock.patch("azure.ai.ml.MLClient") as client_class,
        mock.patch("azure.identity.DefaultAzureCredential") as credential,
    ):
        azure.ml_client_from_env(environ)
    client_class.assert_called_once_with(credential.return_value, "sub", "rg", "ws")


def test_submit_to_azure_makes_the_pipeline_calls():
    ml_client = mock.MagicMock(name="MLClient")
    done = azure.submit_to_azure(ml_client)
    ml_client.environments.create_or_update.assert_called_once()
    ml_client.data.create_or_update.assert_called_once()
    job = ml_client.jobs.create_or_update.call_args.args[0]
    assert type(job).__name__ == "PipelineJob" and list(job.jobs) == [
        "prep",
        "train",
        "evaluate",
        "register",
    ]
    ml_client.jobs.stream.assert_called_once_with(ml_client.jobs.create_or_update.return_value.name)
    deployments = [
        c.args[0] for c in ml_client.online_deployments.begin_create_or_update.call_args_list
    ]
    assert [(d.name, d.model) for d in deployments] == [
        ("blue", "diabetes-model:1"),
        ("green", "diabetes-model:2"),
    ]
    endpoints = [
        c.args[0] for c in ml_client.online_endpoints.begin_create_or_update.call_args_list
    ]
    assert endpoints[0].name == "diabetes-endpoint" and endpoints[-1].traffic == {
        "blue": 100,
        "green": 0,
    }
    assert set(done) >= {"environment", "data", "job", "endpoint", "blue", "green", "traffic"}
