"""Shared fixtures: the repository, the assignments it holds, and one executed course."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_course import environment, paths

REPO = Path(__file__).resolve().parents[1]
ASSIGNMENTS = [p.stem for p in paths.solution_notebooks()]
# Markers of the slow lane: `make test-fast` runs `-m "not slow"`, `make test` runs everything.
SLOW_MARKERS = ("notebooks", "grading", "browser", "servers")

environment.apply()  # the course's variables (telemetry off, ...) for in-process MLflow too


def pytest_collection_modifyitems(config, items):
    """Every test with a slow-lane marker is also `slow`."""
    for item in items:
        if any(item.get_closest_marker(name) for name in SLOW_MARKERS):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(autouse=True)
def _no_user_tracking_uri(monkeypatch):
    """Tests must never write into a tracking store the developer configured."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLOPS_COURSE_OWN_TRACKING_URI", raising=False)


def network_cut_prefix() -> list[str]:
    """A command prefix that runs a command with no network but its own loopback, if allowed here."""
    if not shutil.which("unshare") or not shutil.which("ip"):
        return []
    probe = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"], capture_output=True)
    return (
        ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"']
        if probe.returncode == 0
        else []
    )


def run_course_cli(build_dir: Path, *extra: str, offline: bool = True) -> tuple[dict, bool]:
    """`python -m mlops_course course` exactly as `make course` runs it, with the network cut
    when this machine allows it. Returns the report and whether the network was cut."""
    prefix = network_cut_prefix() if offline else []
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MLFLOW_TRACKING_URI", "MLOPS_COURSE_OWN_TRACKING_URI")
    }
    command = [
        *prefix,
        sys.executable,
        "-m",
        "mlops_course",
        "course",
        "--build-dir",
        str(build_dir),
        *extra,
    ]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    report = build_dir / "report.json"
    if not report.exists():
        raise RuntimeError(
            f"`{' '.join(command)}` wrote no report:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
        )
    return json.loads(report.read_text()), bool(prefix)


@pytest.fixture(scope="session")
def executed_course(tmp_path_factory) -> dict:
    """Every solution notebook executed once, offline, by the code path of `make course`."""
    build_dir = tmp_path_factory.mktemp("course")
    report, offline = run_course_cli(build_dir)
    return {
        "build_dir": build_dir,
        "report": report,
        "offline": offline,
        "results": {r["notebook"]: r for r in report["notebooks"]},
    }
