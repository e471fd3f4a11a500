"""Warm processes (mlops_course.runtime.warm): a program forked from the warm server behaves as
the same program in a new interpreter (arguments, folder, environment, output, exit code,
atexit hooks), stops at its deadline, and nothing outlives the process that started it."""

import os
import subprocess
import sys
import textwrap
import time

import pytest
from kfp import dsl

from mlops_course.runtime import warm
from mlops_course.runtime.twins import gcp

PROGRAM = textwrap.dedent(
    """\
    import atexit, os, sys
    atexit.register(lambda: print("atexit ran"))
    print("argv", sys.argv[1:], "cwd", os.getcwd(), "flavour", os.environ.get("FLAVOUR"))
    print("path0", sys.path[0])
    print("to stderr", file=sys.stderr)
    if os.environ.get("FAIL") == "raise":
        raise ValueError("broken on purpose")
    sys.exit(int(os.environ.get("CODE", "0")))
    """
)


@pytest.fixture
def program(tmp_path):
    script = tmp_path / "program.py"
    script.write_text(PROGRAM)
    return script


def _both(argv, **kwargs):
    """(warm, cold) results of the same program."""
    hot = warm.run(argv, **kwargs)
    cold = warm._cold(argv, kwargs.get("cwd"), kwargs.get("env"), None, False)
    return hot, cold


@pytest.mark.parametrize(
    "extra", [{}, {"CODE": "3"}, {"FAIL": "raise"}], ids=["ok", "exit-3", "raises"]
)
def test_a_warm_script_behaves_as_a_new_interpreter(program, tmp_path, extra):
    env = {**os.environ, "FLAVOUR": "mint", **extra}
    hot, cold = _both([sys.executable, program.name, "a b", "c"], cwd=tmp_path, env=env)
    assert (hot.returncode, hot.stdout) == (cold.returncode, cold.stdout)
    # The traceback's first and last lines (frames differ: runpy's against the interpreter's).
    assert hot.stderr.splitlines()[:1] == cold.stderr.splitlines()[:1]
    assert hot.stderr.splitlines()[-1:] == cold.stderr.splitlines()[-1:]
    assert "atexit ran" in hot.stdout and f"cwd {tmp_path}" in hot.stdout


def test_a_warm_module_behaves_as_a_new_interpreter(tmp_path):
    data = tmp_path / "data.json"
    data.write_text('{"b": 1, "a": [1, 2]}')
    argv = [sys.executable, "-m", "json.tool", "--sort-keys", data.name]
    hot, cold = _both(argv, cwd=tmp_path)
    assert hot.returncode == cold.returncode == 0
    assert hot.stdout == cold.stdout and '"a"' in hot.stdout


def test_a_warm_program_is_a_process_of_its_own(tmp_path):
    script = tmp_path / "pid.py"
    script.write_text("import os; print(os.getpid(), os.getppid())")
    pid, parent = map(int, warm.run([sys.executable, script.name], cwd=tmp_path).stdout.split())
    assert pid != os.getpid() and parent != os.getpid()  # forked by the server, not by us


def test_switched_off_it_runs_a_new_interpreter(tmp_path, monkeypatch):
    monkeypatch.setenv("MLOPS_COURSE_WARM", "0")
    script = tmp_path / "pid.py"
    script.write_text("import os; print(os.getppid())")
    assert int(warm.run([sys.executable, script.name], cwd=tmp_path).stdout) == os.getpid()


def test_merged_output_and_the_deadline(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text(
        "import os, sys, time\nopen('pid', 'w').write(str(os.getpid()))\nprint('out')\n"
        "print('err', file=sys.stderr)\ntime.sleep(60)"
    )
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        warm.run([sys.executable, script.name], cwd=tmp_path, timeout=3, merge_stderr=True)
    assert time.monotonic() - started < 30
    pid = int((tmp_path / "pid").read_text())
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid), "the program still runs after its deadline"
    cold = warm.run([sys.executable, "-c", "print(1)"])  # neither a script nor a module: cold
    assert (cold.returncode, cold.stdout) == (0, "1\n")
    script.write_text("import sys\nprint('out')\nsys.stdout.flush()\nprint('err', file=sys.stderr)")
    merged = warm.run([sys.executable, script.name], cwd=tmp_path, merge_stderr=True)
    assert (merged.stdout, merged.stderr) == ("out\nerr\n", "")


def test_nothing_outlives_the_process_that_started_it(tmp_path):
    """A starter ended outright (no atexit hook, no cleanup of ours) while a warm program still
    runs: the program and the server end with it."""
    (tmp_path / "sleeper.py").write_text(
        "import os, time\nopen('pids', 'w').write(f'{os.getpid()} {os.getppid()}')\ntime.sleep(120)"
    )
    starter = textwrap.dedent(
        f"""\
        import os, sys, threading, time
        from mlops_course.runtime import warm
        threading.Thread(
            target=warm.run, args=([sys.executable, "sleeper.py"],), kwargs={{"cwd": "{tmp_path}"}},
            daemon=True,
        ).start()
        while not os.path.exists("{tmp_path}/pids"):
            time.sleep(0.1)
        os._exit(0)
        """
    )
    subprocess.run([sys.executable, "-c", starter], timeout=120, check=True)
    program, server = map(int, (tmp_path / "pids").read_text().split())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (_alive(program) or _alive(server)):
        time.sleep(0.1)
    assert not _alive(program), "the warm program outlived its starter"
    assert not _alive(server), "the warm server outlived its starter"


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


# (no `from __future__ import annotations` here: kfp reads the real annotations)
@dsl.component(base_image="python:3.11", install_kfp_package=False)
def _lightweight(x: int) -> int:
    return x + 1


def test_kfp_still_starts_lightweight_tasks_the_way_the_twin_reads():
    """The library internals the kfp twin relies on (kfp 2.x): the runner's function that starts
    a task's process, and the shell command of a lightweight component. When an upgrade moves
    them, this fails and says which; the twin then falls back to kfp's own subprocess."""
    import inspect

    from kfp.local import subprocess_task_handler

    function = getattr(subprocess_task_handler, "run_local_subprocess", None)
    assert function is not None, "kfp.local.subprocess_task_handler.run_local_subprocess is gone"
    assert list(inspect.signature(function).parameters) == ["full_command", "env_vars"], (
        f"run_local_subprocess now takes {inspect.signature(function)}"
    )
    container = _lightweight.component_spec.implementation.container
    command = [*container.command, *container.args]
    argv = gcp.warm_command(command)
    assert argv is not None, f"a lightweight task's command changed form: {command[:3]}"
    assert argv[1:5] == ["-m", "kfp.dsl.executor_main", "--component_module_path", "{source}"]
    assert "--function_to_execute" in argv and "_lightweight" in argv
    assert gcp.warm_command(["python", "-m", "something"]) is None


def test_a_server_that_ended_is_started_again(tmp_path):
    script = tmp_path / "hello.py"
    script.write_text("print('hello')")
    assert warm.run([sys.executable, script.name], cwd=tmp_path).stdout == "hello\n"
    first = warm._server
    first.kill()
    first.wait()
    assert warm.run([sys.executable, script.name], cwd=tmp_path).stdout == "hello\n"
    assert warm._server is not first and warm._server.poll() is None
