"""Reading what a notebook left in the MLflow store, for tests that check evidence.

Tests call these instead of trusting notebook variables: a run either is in the
store with the right params, metrics, tags and artifacts, or it is not. Every
failure is a :class:`~mlops_course.runtime.errors.CheckFailed` whose message says what
was expected and what was found, in one sentence.
"""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING

from mlops_course.runtime.errors import CheckFailed

if TYPE_CHECKING:
    from mlflow.entities import Experiment, Run
    from mlflow.tracking import MlflowClient

__all__ = [
    "artifact_files",
    "check",
    "expect_metrics",
    "expect_params",
    "expect_tags",
    "experiment",
    "latest_run",
    "load_skops",
    "mlflow_client",
    "quiet",
    "runs",
]


def check(condition: object, message: str) -> None:
    """Raise :class:`CheckFailed` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise CheckFailed(message)


def mlflow_client(tracking_uri: str | None = None) -> MlflowClient:
    """An MLflow client of ``tracking_uri`` (default: the notebook's store)."""
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri)


def experiment(name: str, tracking_uri: str | None = None) -> Experiment:
    """The experiment called ``name``; a clear failure lists the ones that exist."""
    found_client = mlflow_client(tracking_uri)
    found = found_client.get_experiment_by_name(name)
    if found is None:
        names = sorted(e.name for e in found_client.search_experiments())
        raise CheckFailed(
            f"Expected an experiment named {name!r} in the tracking store, "
            f"found only: {', '.join(map(repr, names)) or 'none'}."
        )
    return found


def runs(
    experiment_name: str,
    *,
    run_name: str | None = None,
    filter_string: str = "",
    tracking_uri: str | None = None,
) -> list[Run]:
    """Runs of an experiment, newest first, optionally only those called ``run_name``."""
    found = experiment(experiment_name, tracking_uri)
    clauses = [c for c in (filter_string,) if c]
    if run_name is not None:
        clauses.append(f"attributes.run_name = '{run_name}'")
    return mlflow_client(tracking_uri).search_runs(
        [found.experiment_id],
        filter_string=" AND ".join(clauses),
        order_by=["attributes.start_time DESC"],
        max_results=1000,
    )


def latest_run(
    experiment_name: str, run_name: str | None = None, tracking_uri: str | None = None
) -> Run:
    """The newest run (called ``run_name`` when given) of an experiment."""
    found = runs(experiment_name, run_name=run_name, tracking_uri=tracking_uri)
    named = f" named {run_name!r}" if run_name else ""
    check(found, f"Expected a run{named} in experiment {experiment_name!r}, found none.")
    return found[0]


def _describe(run: Run) -> str:
    return f"run {run.info.run_name!r} ({run.info.run_id[:8]})"


def _expect_logged(
    run: Run,
    kind: str,
    logged: Mapping[str, object],
    expected: Mapping[str, object],
    matches: Callable[[object, object], bool],
    shown: Callable[[object], str],
) -> None:
    """Each expected key of ``kind`` ("param", "metric") is logged with a matching value."""
    for key, value in expected.items():
        check(
            key in logged,
            f"Expected {kind} {key!r} in {_describe(run)}, found {kind}s: {sorted(logged) or 'none'}.",
        )
        check(
            matches(logged[key], value),
            f"Expected {kind} {key!r} = {shown(value)} in {_describe(run)}, found {shown(logged[key])}.",
        )


def expect_params(run: Run, expected: Mapping[str, object]) -> None:
    """Each expected param is logged with that value (params are stored as strings)."""
    _expect_logged(
        run, "param", run.data.params, expected, lambda found, want: found == str(want), repr
    )


def expect_metrics(run: Run, expected: Mapping[str, float], tolerance: float = 1e-6) -> None:
    """Each expected metric's latest value is within ``tolerance`` of the expected one."""
    _expect_logged(
        run,
        "metric",
        run.data.metrics,
        expected,
        lambda found, want: math.isclose(float(found), float(want), abs_tol=tolerance),
        lambda value: f"{float(value):.6g}",
    )


def expect_tags(run: Run, expected: Mapping[str, str]) -> None:
    """Each expected tag is set with that value."""
    tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
    for key, value in expected.items():
        check(
            tags.get(key) == value,
            f"Expected tag {key!r} = {value!r} on {_describe(run)}, found {tags.get(key)!r}.",
        )


def artifact_files(run_id: str, tracking_uri: str | None = None) -> list[str]:
    """Every artifact file of a run, as paths relative to the run's artifact root."""
    found_client = mlflow_client(tracking_uri)
    files: list[str] = []
    pending = [""]
    while pending:
        folder = pending.pop()
        for item in found_client.list_artifacts(run_id, folder or None):
            (pending if item.is_dir else files).append(item.path)
    return sorted(files)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Silence stderr and MLflow's log lines inside a test cell.

    nbgrader scores a test cell that writes anything to stderr as failed, and MLflow
    reports routine events there ("Successfully registered model ...").
    """
    import logging

    logger = logging.getLogger("mlflow")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        logger.setLevel(level)


def load_skops(path, trusted: list[str]):
    """A scikit-learn model saved with skops, loaded without unpickling anything.

    skops builds only the types it is told to trust. ``trusted`` lists the model's own types
    (``"sklearn.tree._classes.DecisionTreeClassifier"``, ...); a file that needs any other type
    fails the check instead of being loaded. This is how a hidden test may look at a model a
    notebook logged: the file is the student's, so it is never unpickled.
    """
    import skops.io

    untrusted = skops.io.get_untrusted_types(file=path)
    extra = sorted(set(untrusted) - set(trusted))
    check(
        not extra,
        f"Expected a skops model made only of {sorted(trusted)}, found also {extra[:5]}.",
    )
    return skops.io.load(path, trusted=list(untrusted))
