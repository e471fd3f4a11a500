"""No scoring server outlives the notebook that started it.

Notebook 03 starts ``mlflow models serve`` in one cell and stops it several cells
later. These tests run the solution notebook headless in a temporary folder, stop it
while the server is up in three ways (a failing cell, SIGINT to the kernel, SIGKILL to
the kernel) and then look through /proc for any process of that run: the server's
command line names its port, and every process it starts inherits the run's
``MLFLOW_TRACKING_URI``, which names the temporary folder.

The three runs share the slow part (training, logging, starting the server) only in
time: they run in parallel threads, each with its own kernel and folder.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest
from jupyter_client.manager import KernelManager

from mlops_course.instructor.kernel import kernel_name
from mlops_course.runtime import processes

from .conftest import REPO

NOTEBOOK = REPO / "solutions" / "03_models_registry_serving" / "03_models_registry_serving.ipynb"
SERVER_START = "scoring.start()"
# Cells the server does not depend on; skipping them keeps the test fast.
SKIPPED_MARKERS = ("inferred_seconds",)
CELL_TIMEOUT = 120
GONE_WITHIN = 15.0

RECORD = """\
import json as _json, os as _os
_json.dump({"kernel_pid": _os.getpid(), "server_pid": scoring.process.pid, "port": scoring.port},
           open("server.json", "w"))
"""


def notebook_prefix() -> list[str]:
    """Code of the solution notebook's code cells, up to and including the server start."""
    cells = []
    for cell in nbformat.read(NOTEBOOK, as_version=4).cells:
        if cell.cell_type != "code" or cell.metadata.get("nbgrader", {}).get("grade"):
            continue  # test cells are not needed to reach the server
        if any(marker in cell.source for marker in SKIPPED_MARKERS):
            continue
        cells.append(cell.source)
        if SERVER_START in cell.source:
            return cells
    raise AssertionError(
        f"Expected a cell calling {SERVER_START!r} in {NOTEBOOK.name}, found none."
    )


@dataclass
class Outcome:
    workdir: Path
    server: dict = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    final_error: str | None = None


def _run_cell(client, code: str) -> dict:
    reply = client.execute_interactive(
        code, timeout=CELL_TIMEOUT, store_history=False, output_hook=lambda msg: None
    )
    return reply["content"]


def run_and_interrupt(how: str, workdir: Path) -> Outcome:
    """Run the notebook's prefix in a fresh kernel in ``workdir`` and stop it ``how``."""
    outcome = Outcome(workdir)
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)  # the run must use its own store in workdir
    env.pop("MLOPS_COURSE_OWN_TRACKING_URI", None)
    manager = KernelManager(kernel_name=kernel_name())
    manager.start_kernel(cwd=str(workdir), env=env)
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        for code in [*notebook_prefix(), RECORD]:
            content = _run_cell(client, code)
            if content["status"] != "ok":
                outcome.errors.append(f"{content.get('ename')}: {content.get('evalue')}")
                return outcome
        outcome.server = json.loads((workdir / "server.json").read_text())
        if how == "failing cell":
            content = _run_cell(
                client, 'raise RuntimeError("injected failure while the server runs")'
            )
            outcome.final_error = content.get("ename")
        elif how == "SIGINT":
            msg_id = client.execute("import time\ntime.sleep(120)")
            time.sleep(1.0)
            os.kill(outcome.server["kernel_pid"], signal.SIGINT)
            while True:
                reply = client.get_shell_msg(timeout=30)
                if reply["parent_header"].get("msg_id") == msg_id:
                    outcome.final_error = reply["content"].get("ename")
                    break
        elif how == "SIGKILL":
            client.execute("import time\ntime.sleep(120)")
            time.sleep(1.0)
            os.kill(outcome.server["kernel_pid"], signal.SIGKILL)
            outcome.final_error = "killed"
    finally:
        client.stop_channels()
        # What papermill and nbgrader do after a failed cell: ask the kernel to shut down
        # (a killed kernel is only cleaned up).
        manager.shutdown_kernel(now=how == "SIGKILL")
    return outcome


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie is dead, waiting to be reaped


def leftovers(outcome: Outcome) -> list[str]:
    """Live processes whose command line names the server's port or whose environment names the run's folder."""
    port_flag = f"--port {outcome.server['port']}"
    folder = str(outcome.workdir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if (
            not entry.name.isdigit()
            or int(entry.name) == os.getpid()
            or not _alive(int(entry.name))
        ):
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if ("mlflow" in cmdline or "uvicorn" in cmdline) and (
            port_flag in cmdline or folder in environ
        ):
            found.append(f"{entry.name}: {cmdline.strip()[:160]}")
    return found


def wait_until_gone(outcome: Outcome) -> list[str]:
    deadline = time.monotonic() + GONE_WITHIN
    while True:
        left = leftovers(outcome)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.5)


SCENARIOS = ["failing cell", "SIGINT", "SIGKILL"]


@pytest.fixture(scope="module")
def interrupted_runs(tmp_path_factory) -> dict[str, Outcome]:
    """The three interrupted runs, executed in parallel (each one spends ~20 s reaching the server)."""
    results: dict[str, Outcome | BaseException] = {}

    def worker(how: str) -> None:
        folder = tmp_path_factory.mktemp("interrupted-" + how.replace(" ", "-"))
        try:
            results[how] = run_and_interrupt(how, folder)
        except BaseException as error:  # noqa: BLE001 - reported by the test that needs it
            results[how] = error

    threads = [threading.Thread(target=worker, args=(how,)) for how in SCENARIOS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.notebooks  # runs notebook 03 three times
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("how", SCENARIOS)
def test_no_server_outlives_an_interrupted_notebook(interrupted_runs, how):
    outcome = interrupted_runs[how]
    if isinstance(outcome, BaseException):
        raise outcome
    assert not outcome.errors, (
        f"The notebook failed before its server was up ({how}): {outcome.errors}."
    )
    assert outcome.server, f"The run interrupted by {how} never recorded its server."
    if how == "failing cell":
        assert outcome.final_error == "RuntimeError", (
            f"Expected the injected RuntimeError, found {outcome.final_error}."
        )
    if how == "SIGINT":
        assert outcome.final_error == "KeyboardInterrupt", (
            f"Expected a KeyboardInterrupt, found {outcome.final_error}."
        )
    left = wait_until_gone(outcome)
    assert not left, (
        f"After the notebook was stopped by {how}, these server processes are still running: {left}."
    )
    assert not processes.port_in_use(outcome.server["port"]), (
        f"After the notebook was stopped by {how}, port {outcome.server['port']} still answers."
    )


# --- ManagedProcess on its own ------------------------------------------------------------


def test_server_that_exits_at_once_reports_its_log_tail(tmp_path):
    crash = "import sys; print('fatal: no such option --bogus', flush=True); sys.exit(3)"
    process = processes.ManagedProcess(
        "Crashing server",
        [sys.executable, "-c", crash],
        port=processes.free_port(),
        ready_path="/ping",
        log_path=tmp_path / "crash.log",
        timeout=20,
    )
    with pytest.raises(processes.ServerError) as failure:
        process.start()
    message = str(failure.value)
    assert "exited with code 3" in message, message
    assert "fatal: no such option --bogus" in message, (
        f"Expected the log tail in the error, found: {message}"
    )
    assert not process.running and processes.running_servers() == []


def test_port_in_use_gives_one_sentence(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind((processes.LOOPBACK, 0))
        holder.listen()
        port = holder.getsockname()[1]
        process = processes.ManagedProcess(
            "Blocked server",
            [sys.executable, "-c", "import time; time.sleep(30)"],
            port=port,
            ready_path="/ping",
            log_path=tmp_path / "blocked.log",
        )
        with pytest.raises(processes.ServerError) as failure:
            process.start()
    message = str(failure.value)
    assert f"port {port}" in message and "already in use" in message, message
    assert "\n" not in message and message.count(". ") == 0 and message.endswith("."), (
        f"Expected one sentence, found: {message!r}"
    )
    assert process.process is None, "Expected no process to be started when the port is taken."
