"""Outside checks for 01_mlops_paradigm, checked from outside the kernel after grading."""

from pathlib import Path

from mlops_course.runtime import checks
from mlops_course.runtime.session import store_uri


def test_record_baseline_run(workdir: Path) -> None:
    run = checks.latest_run("mlops-paradigm", run_name="baseline", tracking_uri=store_uri(workdir))
    checks.expect_params(run, {"model": "logistic_regression", "C": 1.0})
    checks.check(
        "accuracy" in run.data.metrics and 0.9 < run.data.metrics["accuracy"] <= 1.0,
        f"Expected a test accuracy above 0.9 on the baseline run, found {run.data.metrics}.",
    )


def test_promote_if_better(workdir: Path) -> None:
    """The test cell builds gate-check experiments; the student's gate must have tagged them."""
    uri = store_uri(workdir)
    client = checks.mlflow_client(uri)
    gates = [e for e in client.search_experiments() if e.name.startswith("gate-check-")]
    checks.check(
        len(gates) >= 2, f"Expected the gate tests' experiments in the store, found {len(gates)}."
    )
    for experiment in gates:
        runs = client.search_runs([experiment.experiment_id])
        champions = [r for r in runs if r.data.tags.get("role") == "champion"]
        checks.check(
            len(champions) == 1,
            f"Expected exactly one champion in {experiment.name}, found {len(champions)}.",
        )
