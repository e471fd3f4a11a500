"""Browser tests: the MLflow UI and JupyterLab, driven headless with Debian's Chromium.

They need ``/usr/bin/chromium`` (Debian's ``chromium`` package) and the ``playwright``
Python package; the browser that ``playwright install`` would download is never used.
Both servers run on 127.0.0.1 on free ports through ``mlops_course.runtime.servers`` and are
stopped when each test ends. Screenshots go to ``build/screenshots/``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from pathlib import Path

import pytest

from mlops_course import environment
from mlops_course.instructor.screenshots import CHROMIUM, CHROMIUM_ARGS
from mlops_course.runtime import processes, servers

from .conftest import REPO

SCREENSHOTS = REPO / "build" / "screenshots"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is missing: install Debian's 'chromium' package to run the browser tests.",
    ),
]


@pytest.fixture
def browser():
    playwright_sync = pytest.importorskip(
        "playwright.sync_api", reason="the 'playwright' Python package is not installed"
    )
    with playwright_sync.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=False)
    return path


def test_mlflow_ui_lists_experiment_and_runs(browser, tmp_path):
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    artifacts = tmp_path / "mlruns"
    client = MlflowClient(tracking_uri=uri)
    experiment_id = client.create_experiment(
        "browser-check", artifact_location=str(artifacts / "browser-check")
    )
    run_names = ["first-browser-run", "second-browser-run"]
    for index, name in enumerate(run_names):
        run = client.create_run(experiment_id, run_name=name)
        client.log_metric(run.info.run_id, "eval_acc", 0.9 + index / 100)
        client.set_terminated(run.info.run_id)

    server = servers.tracking_server(
        uri, default_artifact_root=str(artifacts), log_dir=tmp_path / "logs"
    )
    with server:
        assert server.startup_seconds is not None
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        # The UI polls its API, so it never reaches "networkidle": wait for "load", then for text.
        page.goto(server.url, wait_until="load")
        page.get_by_text("browser-check").first.wait_for(timeout=30_000)
        page.get_by_text("browser-check").first.click()
        # MLflow 3 opens an experiment in its GenAI view; runs are listed under "Model training".
        page.get_by_text("Model training", exact=True).first.click()
        for name in run_names:
            page.get_by_text(name).first.wait_for(timeout=30_000)
        assert f"/experiments/{experiment_id}" in page.url, (
            f"Expected the experiment page, found {page.url}."
        )
        shot = _screenshot(page, "mlflow-ui.png")
        page.close()
    assert not server.running
    assert shot.stat().st_size > 10_000, f"The screenshot {shot} is suspiciously small."


def _copy_of_start_here(target: Path) -> Path:
    """A copy of the released notebook 00 in ``target`` (running it writes an MLflow store next to it)."""
    source = REPO / "notebooks" / "00_start_here" / "00_start_here.ipynb"
    destination = target / "00_start_here" / source.name
    destination.parent.mkdir(parents=True)
    shutil.copyfile(source, destination)
    return destination


def test_jupyterlab_runs_a_cell_with_the_course_kernel(browser, tmp_path):
    notebook_dir = tmp_path / "lab"
    notebook = _copy_of_start_here(notebook_dir)
    released = REPO / "notebooks" / "00_start_here"
    released_before = sorted(p.name for p in released.iterdir())
    token = secrets.token_hex(16)
    port = processes.free_port()
    # Lab settings and workspaces in tmp, never in the user's home; no news pop-up.
    user_settings = tmp_path / "user-settings"
    notification = (
        user_settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    )
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false"}))
    argv = [
        Path(sys.executable).parent / "jupyter",
        "lab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        f"--ServerApp.token={token}",
        "--MultiKernelManager.default_kernel_name=mlops-course",
        f"--notebook-dir={notebook_dir}",
        f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
        f"--LabApp.user_settings_dir={user_settings}",
    ]
    if os.geteuid() == 0:  # containers and CI often run as root; JupyterLab refuses without this
        argv.append("--allow-root")
    env = environment.child_env({"JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")})
    env.pop("MLFLOW_TRACKING_URI", None)
    lab = processes.ManagedProcess(
        "JupyterLab",
        argv,
        port=port,
        ready_path=f"/api/status?token={token}",
        log_path=tmp_path / "logs" / "jupyterlab.log",
        env=env,
        cwd=notebook_dir,
        timeout=90,
    )
    with lab:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        relative = notebook.relative_to(notebook_dir).as_posix()
        page.goto(f"{lab.url}/lab/tree/{relative}?token={token}", wait_until="load")
        toolbar = page.locator(".jp-NotebookPanel-toolbar").first
        toolbar.get_by_text("MLOps course").wait_for(timeout=60_000)
        page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(
            timeout=60_000
        )
        # The parameters cell (no output), then the set-up cell, which prints the versions.
        code_cells = page.locator(".jp-Notebook .jp-CodeCell")
        code_cells.nth(0).locator(".jp-InputArea-editor").click()
        page.keyboard.press("Shift+Enter")
        page.keyboard.press("Shift+Enter")
        output = code_cells.nth(1).locator(".jp-OutputArea-output").first
        output.wait_for(timeout=60_000)
        page.get_by_text("Tracking URI:").first.wait_for(timeout=60_000)
        text = output.inner_text()
        assert "00_start_here: Python 3.11" in text, (
            f"Expected the set-up cell's version line, found {text!r}."
        )
        shot = _screenshot(page, "jupyterlab.png")
        page.close()
    assert not lab.running
    assert shot.stat().st_size > 10_000, f"The screenshot {shot} is suspiciously small."
    # The kernel ran in the temporary copy's folder: its store is there, never in the repository.
    assert str(notebook.parent) in text, f"Expected the store in {notebook.parent}, found {text!r}."
    assert sorted(p.name for p in released.iterdir()) == released_before, (
        f"JupyterLab wrote into {released}."
    )


def test_course_screenshots_are_taken_from_the_executed_stores(executed_course, tmp_path):
    """`mlops-course screenshots` works on the stores this run's notebooks wrote: every picture
    the notebooks embed is taken again (into build/screenshots/course/), so a change of the
    course or of MLflow's UI that breaks one shows here."""
    from mlops_course.instructor import screenshots

    out = SCREENSHOTS / "course"
    written = screenshots.take(executed_course["build_dir"], lambda nb: out / nb, tmp_path / "logs")
    expected = {out / shot.notebook / shot.file for shot in screenshots.SHOTS}
    assert set(written) == expected, f"Expected the pictures {sorted(expected)}, found {written}."
    small = [p.name for p in written if p.stat().st_size < 20_000]
    assert not small, f"Expected real pages in every picture, found nearly empty ones: {small}."
