"""Shared fixtures: the repository, the assignments it holds, and one executed course."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mlops_course import execution

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = [p.stem for p in execution.discover(REPO)]


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(autouse=True)
def _no_user_tracking_uri(monkeypatch):
    """Tests must never write into a tracking store the developer configured."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLOPS_COURSE_OWN_TRACKING_URI", raising=False)


@pytest.fixture(scope="session")
def executed_course(tmp_path_factory) -> dict[str, execution.NotebookResult]:
    """Every solution notebook executed once, exactly as `make course` does it."""
    build_dir = tmp_path_factory.mktemp("course")
    saved = os.environ.pop("MLFLOW_TRACKING_URI", None)
    try:
        results = execution.run_course(execution.discover(REPO), build_dir)
    finally:
        if saved is not None:
            os.environ["MLFLOW_TRACKING_URI"] = saved
    execution.write_report(results, build_dir, sum(r.seconds for r in results))
    return {r.notebook: r for r in results}
