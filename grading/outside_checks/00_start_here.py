"""Outside checks for 00_start_here, checked from outside the kernel after grading."""

from pathlib import Path

from mlops_course.runtime import checks
from mlops_course.runtime.session import store_uri


def test_log_first_run(workdir: Path) -> None:
    run = checks.latest_run("start-here", run_name="hello-mlops", tracking_uri=store_uri(workdir))
    checks.expect_params(run, {"course": "mlops"})
    checks.expect_metrics(run, {"answer": 42})
