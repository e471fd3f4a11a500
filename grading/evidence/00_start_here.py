"""Evidence for 00_start_here, checked from outside the kernel after grading."""

from pathlib import Path

from mlops_course import evidence
from mlops_course.setup import store_uri


def test_log_first_run(workdir: Path) -> None:
    run = evidence.latest_run("start-here", run_name="hello-mlops", tracking_uri=store_uri(workdir))
    evidence.expect_params(run, {"course": "mlops"})
    evidence.expect_metrics(run, {"answer": 42})
