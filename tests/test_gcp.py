"""The Google Cloud twin (notebook 10): kfp compile and local runs, model card, the optional
Vertex AI switch, Terraform and CI/CD file checks. Offline; no terraform, Docker or GCP."""

import shutil
import sys
import time
import types

import pytest
import yaml
from kfp import compiler, dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Metrics, Output

from mlops_course import paths
from mlops_course.runtime import schemas
from mlops_course.runtime.twins import gcp, modelcard, terraform

IMAGE = "europe-west4-docker.pkg.dev/acme-mlops-dev/acme-dev-images/vertex-python:latest"


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def make_table(rows: int, corrupt: bool, data: Output[Dataset]):
    import pandas as pd

    frame = pd.DataFrame(
        {"x": [float(i) for i in range(rows)], "target": [i % 2 for i in range(rows)]}
    )
    if corrupt:
        frame.loc[0, "x"] = -100.0
    frame.to_csv(data.path, index=False)


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def check_table(data: Input[Dataset], report: Output[Markdown]):
    import pandas as pd

    frame = pd.read_csv(data.path)
    problems = (
        [f"column x has {int((frame.x < 0).sum())} value(s) below 0"] if (frame.x < 0).any() else []
    )
    with open(report.path, "w") as handle:
        handle.write("\n".join(problems) or "No problems found.")
    if problems:
        raise ValueError(problems[0])


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def card(data: Input[Dataset], metrics: Output[Metrics], page: Output[HTML]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from mlops_course.runtime.twins.modelcard import figure_png, render_model_card

    frame = pd.read_csv(data.path)
    metrics.log_metric("rows", float(len(frame)))
    fig, ax = plt.subplots()
    frame.x.plot(ax=ax)
    with open(page.path, "w") as handle:
        handle.write(
            render_model_card(
                "Test card",
                {"rows": len(frame)},
                {"mean": float(frame.x.mean())},
                {"x": figure_png(fig)},
            )
        )


@dsl.pipeline(name="gcp-twin-test")
def twin_pipeline(rows: int = 20, corrupt: bool = False):
    table = make_table(rows=rows, corrupt=corrupt)
    checked = check_table(data=table.outputs["data"])
    card(data=table.outputs["data"]).after(checked)


@pytest.mark.servers
def test_pipeline_compiles_runs_writes_card_and_stops_on_bad_data(tmp_path):
    started = time.monotonic()
    target = tmp_path / "pipeline.yaml"
    compiler.Compiler().compile(twin_pipeline, package_path=str(target))
    compile_seconds = time.monotonic() - started
    spec = yaml.safe_load(target.read_text())
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"make-table", "check-table", "card"}
    assert "check-table" in tasks["card"]["dependentTasks"]

    root = gcp.pipeline_root(tmp_path)
    started = time.monotonic()
    run = gcp.run_locally(twin_pipeline, root, rows=20)
    run_seconds = time.monotonic() - started
    assert run == gcp.latest_run_dir(root, "gcp-twin-test")
    assert (run / "make-table" / "data").is_file()
    assert "No problems" in (run / "check-table" / "report").read_text()
    assert (
        gcp.task_outputs(run, "card")["artifacts"]["metrics"]["artifacts"][0]["metadata"]["rows"]
        == 20
    )
    page = (run / "card" / "page").read_text()
    assert len(modelcard.embedded_png_images(page)) == 1
    print(f"compile {compile_seconds:.2f} s, local run {run_seconds:.1f} s")

    with pytest.raises(gcp.PipelineStopped) as stopped:
        gcp.run_locally(twin_pipeline, root, rows=20, corrupt=True)
    assert stopped.value.task == "check-table"
    assert "below 0" in stopped.value.report
    assert "stopped at task 'check-table'" in str(stopped.value)
    assert not (stopped.value.run_dir / "card").exists()
    assert len(gcp.run_dirs(root, "gcp-twin-test")) == 2


def test_model_card_embeds_png_plots():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    page = modelcard.render_model_card(
        "Card <1>", {"model": "m"}, {"auc": 0.91234}, {"ROC": modelcard.figure_png(fig)}, ["note"]
    )
    assert "Card &lt;1&gt;" in page and "0.9123" in page
    assert len(modelcard.embedded_png_images(page)) == 1
    assert (
        modelcard.embedded_png_images('<img src="data:image/png;base64,aGVsbG8="/>') == []
    )  # not a PNG


# --------------------------------------------------------------------------- the Vertex AI switch


def test_submit_without_the_package_stops_with_one_sentence(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "google.cloud.aiplatform", None)  # import fails
    with pytest.raises(gcp.CloudUnavailable, match="pip install google-cloud-aiplatform"):
        gcp.submit_to_vertex(tmp_path / "p.yaml", display_name="x", pipeline_root="gs://b/root")


def _fake_aiplatform(calls):
    module = types.ModuleType("google.cloud.aiplatform")

    class PipelineJob:
        def __init__(self, **kwargs):
            calls.append(("PipelineJob", kwargs))
            self.resource_name = "projects/p/locations/l/pipelineJobs/1"

        def submit(self, **kwargs):
            calls.append(("submit", kwargs))

    module.init = lambda **kwargs: calls.append(("init", kwargs))
    module.PipelineJob = PipelineJob
    return module


def test_submit_without_credentials_stops_with_one_sentence(monkeypatch, tmp_path):
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    calls = []
    monkeypatch.setitem(sys.modules, "google.cloud.aiplatform", _fake_aiplatform(calls))

    def no_credentials(*args, **kwargs):
        raise DefaultCredentialsError("none")

    monkeypatch.setattr(google.auth, "default", no_credentials)
    with pytest.raises(gcp.CloudUnavailable, match="credentials"):
        gcp.submit_to_vertex(tmp_path / "p.yaml", display_name="x", pipeline_root="gs://b/root")
    assert calls == []


def test_submit_calls_pipeline_job(monkeypatch, tmp_path):
    import google.auth

    calls = []
    monkeypatch.setitem(sys.modules, "google.cloud.aiplatform", _fake_aiplatform(calls))
    monkeypatch.setattr(google.auth, "default", lambda *a, **k: (object(), "found-project"))
    job = gcp.submit_to_vertex(
        tmp_path / "p.yaml",
        display_name="kfp-training",
        pipeline_root="gs://bucket/pipeline-root",
        parameter_values={"seed": 1},
        service_account="sa@p.iam.gserviceaccount.com",
    )
    assert job.resource_name.endswith("/1")
    assert calls[0] == ("init", {"project": "found-project", "location": "europe-west4"})
    assert calls[1] == (
        "PipelineJob",
        {
            "display_name": "kfp-training",
            "template_path": str(tmp_path / "p.yaml"),
            "pipeline_root": "gs://bucket/pipeline-root",
            "parameter_values": {"seed": 1},
        },
    )
    assert calls[2] == ("submit", {"service_account": "sa@p.iam.gserviceaccount.com"})
    with pytest.raises(gcp.CloudUnavailable, match="gs://"):
        gcp.submit_to_vertex(tmp_path / "p.yaml", display_name="x", pipeline_root="/local/root")


# --------------------------------------------------------------------------- Terraform


def test_terraform_environments_are_consistent():
    assert terraform.problems() == []
    root = paths.walkthrough("gcp") / "terraform"
    inventories = [set(terraform.resources(root / env)) for env in terraform.ENVIRONMENTS]
    assert inventories[0] == inventories[1] == inventories[2]
    expected = {
        "google_compute_network.vpc",
        "google_compute_subnetwork.subnet",
        "google_storage_bucket.artifacts",
        "google_bigquery_dataset.data",
        "google_service_account.vertex",
        "google_service_account.dataflow",
        "google_service_account.github",
        "google_iam_workload_identity_pool.github",
        "google_iam_workload_identity_pool_provider.github",
        "google_project_service.services",
    }
    assert expected <= inventories[0]
    provider = terraform.resources(root / "03-prod")[
        "google_iam_workload_identity_pool_provider.github"
    ]
    assert "assertion.repository" in provider["attribute_condition"]
    for env in terraform.ENVIRONMENTS:
        assert terraform.variables_used(root / env) <= terraform.variables_declared(root / env)


@pytest.mark.parametrize("name", ["main.tf", "variables.tf", "outputs.tf"])
def test_terraform_environments_share_their_files(name):
    """One root per environment (as notebook 10 teaches): the copies stay identical, only
    terraform.tfvars differs."""
    root = paths.walkthrough("gcp") / "terraform"
    texts = {env: (root / env / name).read_text() for env in terraform.ENVIRONMENTS}
    differing = sorted(env for env, text in texts.items() if text != texts["01-dev"])
    assert not differing, (
        f"Expected {name} to be the same in every environment, found {differing} differ."
    )


def test_terraform_checks_catch_broken_copies(tmp_path):
    copy = tmp_path / "terraform"
    shutil.copytree(paths.walkthrough("gcp") / "terraform", copy)
    prod_main = copy / "03-prod" / "main.tf"
    prod_main.write_text(
        prod_main.read_text().replace(
            'resource "google_storage_bucket" "dataflow"', 'resource "google_storage_bucket" "temp"'
        )
    )
    staging_main = copy / "02-staging" / "main.tf"
    staging_main.write_text(
        staging_main.read_text()
        .replace('"${local.name_prefix}-vertex"', '"vertex-runner"')
        .replace("var.subnet_cidr", "var.subnet_range")
    )
    (copy / "01-dev" / "terraform.tfvars").write_text(
        (copy / "01-dev" / "terraform.tfvars").read_text() + 'zone = "europe-west4-a"\n'
    )
    (copy / "01-dev" / "outputs.tf").unlink()
    problems = "\n".join(terraform.problems(copy))
    assert "01-dev/outputs.tf" in problems
    assert (
        "03-prod to declare the same resources" in problems
        and "google_storage_bucket.temp" in problems
    )
    assert "google_service_account.vertex" in problems and "'vertex-runner'" in problems
    assert "'subnet_range'" in problems
    assert "'zone'" in problems


# --------------------------------------------------------------------------- CI/CD files


def _corrupt_workflow(text: str) -> str:
    data = yaml.safe_load(text)
    job = next(iter(data["jobs"].values()))
    del job["runs-on"]  # a job needs a runner
    job["steps"][0]["uses"] = 42
    return yaml.safe_dump(data)


def _corrupt_cloudbuild(text: str) -> str:
    data = yaml.safe_load(text)
    data["steps"][0].pop("name")  # every step needs its builder image
    data["timeout"] = ["not", "a", "duration"]
    return yaml.safe_dump(data)


@pytest.mark.parametrize(
    ("folder", "pattern", "schema", "corrupt"),
    [
        (".github-workflows", "*.yml", "vendor.github-workflows", _corrupt_workflow),
        ("cloudbuild", "*.yaml", "vendor.cloudbuild", _corrupt_cloudbuild),
    ],
)
def test_ci_files_match_their_schemas_and_corrupted_copies_fail(
    tmp_path, folder, pattern, schema, corrupt
):
    files = sorted((paths.walkthrough("gcp") / folder).glob(pattern))
    assert len(files) == 4
    problems = schemas.check_files(files, builtin=schema)
    assert not problems, problems
    broken = []
    for path in files:
        target = tmp_path / path.name
        target.write_text(corrupt(path.read_text()))
        broken.append(target)
    problems = schemas.check_files(broken, builtin=schema)
    for target in broken:
        assert any(p.startswith(f"{target.name}:") for p in problems), (
            f"{target.name} was not reported: {problems}"
        )


def test_workflows_are_not_active_on_this_repository():
    repo = paths.walkthrough("gcp").parents[1]
    assert not (paths.walkthrough("gcp") / ".github" / "workflows").exists()
    for path in (paths.walkthrough("gcp") / ".github-workflows").glob("*.yml"):
        assert not (repo / ".github" / "workflows" / path.name).exists()
