"""The servers helper with real processes: loopback, free ports, readiness, and no orphans."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest

from mlops_course.runtime import processes, servers
from mlops_course.runtime.processes import ManagedProcess, ServerError

pytestmark = pytest.mark.servers  # real MLflow servers


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie is dead for our purposes
        return stat.read().split()[2] != "Z"


def _children_of_group(pgid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                found.append(int(entry))
    return found


def test_free_port_is_bindable():
    port = processes.free_port()
    assert 1024 < port < 65536 and not processes.port_in_use(port)


def test_tracking_server_serves_the_store_and_stops(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    server = servers.tracking_server(
        uri, default_artifact_root=str(tmp_path / "mlruns"), log_dir=tmp_path
    )
    with server:
        assert server.url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(
            server.url + "/api/2.0/mlflow/experiments/search?max_results=5"
        ) as r:
            assert r.status == 200
        pid = server.process.pid
        assert server in processes.running_servers()
    assert not _alive(pid) and not _children_of_group(pid), "the whole process group must be gone"
    assert server not in processes.running_servers()


def test_readiness_timeout_quotes_the_log(tmp_path):
    script = "import sys, time; print('listening nowhere', flush=True); time.sleep(60)"
    server = ManagedProcess(
        "silent server",
        [sys.executable, "-c", script],
        port=processes.free_port(),
        ready_path="/",
        log_path=tmp_path / "silent.log",
        timeout=2,
    )
    with pytest.raises(ServerError) as failure:
        server.start()
    assert "did not answer" in str(failure.value) and "listening nowhere" in str(failure.value)
    assert not server.running


def test_exception_in_with_block_stops_the_group(tmp_path):
    script = textwrap.dedent(
        """
        import http.server, subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # a forked worker
        http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), http.server.SimpleHTTPRequestHandler).serve_forever()
        """
    )
    port = processes.free_port()
    server = ManagedProcess(
        "forking server",
        [sys.executable, "-c", script, str(port)],
        port=port,
        ready_path="/",
        log_path=tmp_path / "fork.log",
        cwd=tmp_path,
    )
    with pytest.raises(RuntimeError, match="student error"), server:
        pgid = server.process.pid
        assert len(_children_of_group(pgid)) >= 2
        raise RuntimeError("student error")
    time.sleep(0.2)
    assert not _children_of_group(pgid), "the forked worker must be stopped with its leader"


GUARD_SCRIPT = """
import sys, time
from pathlib import Path
from mlops_course.runtime import servers
folder = Path(sys.argv[1])
server = servers.tracking_server(f"sqlite:///{folder / 'mlflow.db'}", default_artifact_root=str(folder / "mlruns"), log_dir=folder)
server.start()
print(server.process.pid, flush=True)
if sys.argv[2] == "exit":
    sys.exit(0)          # forgot server.stop(): the atexit guard must stop it
time.sleep(120)           # killed outright: the parent-death signal must stop it
"""


@pytest.mark.parametrize("ending", ["exit", "kill"])
def test_no_orphan_when_the_starting_process_ends(tmp_path, ending):
    child = subprocess.Popen(
        [sys.executable, "-c", GUARD_SCRIPT, str(tmp_path), ending],
        stdout=subprocess.PIPE,
        text=True,
    )
    pid = int(child.stdout.readline())
    assert _alive(pid)
    if ending == "kill":
        child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (_alive(pid) or _children_of_group(pid)):
        time.sleep(0.2)
    assert not _alive(pid), f"the tracking server outlived its parent ({ending})"
    assert not _children_of_group(pid), f"server workers outlived their parent ({ending})"
