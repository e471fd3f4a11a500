"""evidence: reading the store for tests, with one-sentence messages that say expected and found."""

from __future__ import annotations

import sys

import pytest

from mlops_course.runtime import checks
from mlops_course.runtime.errors import CheckFailed


@pytest.fixture
def store(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = checks.mlflow_client(uri)
    experiment_id = client.create_experiment("exp", artifact_location=str(tmp_path / "mlruns"))
    run = client.create_run(experiment_id, run_name="baseline")
    client.log_param(run.info.run_id, "C", 1.0)
    client.log_metric(run.info.run_id, "accuracy", 0.9)
    client.set_tag(run.info.run_id, "role", "champion")
    (tmp_path / "plot.png").write_bytes(b"\x89PNG")
    client.log_artifact(run.info.run_id, str(tmp_path / "plot.png"), artifact_path="figures")
    return uri, client.get_run(run.info.run_id)


def test_latest_run_and_expectations_pass(store):
    uri, run = store
    found = checks.latest_run("exp", run_name="baseline", tracking_uri=uri)
    assert found.info.run_id == run.info.run_id
    checks.expect_params(found, {"C": 1.0})
    checks.expect_metrics(found, {"accuracy": 0.9})
    checks.expect_tags(found, {"role": "champion"})
    assert checks.artifact_files(run.info.run_id, tracking_uri=uri) == ["figures/plot.png"]


@pytest.mark.parametrize(
    "call, message",
    [
        (
            lambda uri, run: checks.latest_run("nope", tracking_uri=uri),
            "Expected an experiment named 'nope'",
        ),
        (
            lambda uri, run: checks.latest_run("exp", run_name="other", tracking_uri=uri),
            "named 'other'",
        ),
        (lambda uri, run: checks.expect_params(run, {"C": 0.5}), "Expected param 'C' = 0.5"),
        (lambda uri, run: checks.expect_params(run, {"penalty": "l2"}), "found params: ['C']"),
        (lambda uri, run: checks.expect_metrics(run, {"accuracy": 0.8}), "found 0.9"),
        (lambda uri, run: checks.expect_tags(run, {"role": "retired"}), "found 'champion'"),
    ],
)
def test_failures_say_expected_and_found(store, call, message):
    uri, run = store
    with pytest.raises(
        CheckFailed, match=message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")
    ):
        call(uri, run)


def test_check_failed_is_an_assertion():
    with pytest.raises(AssertionError):
        checks.check(False, "Expected something, found nothing.")


def test_quiet_hides_stderr(capsys):
    with checks.quiet():
        print("noise", file=sys.stderr)
    assert capsys.readouterr().err == ""
