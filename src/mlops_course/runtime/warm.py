"""Short Python processes started warm: a fork of an interpreter that already imported the
heavy libraries, instead of a new interpreter that imports them again.

The twins run many short Python programs as separate processes, as the clouds do: every kfp
task of notebook 10 (``python -m kfp.dsl.executor_main``), every Azure ML step of notebook 09
(``python train.py ...``) and every ``mlflow deployments`` command of notebook 08. Each new
interpreter spends 3 to 6 s of CPU importing pandas, scikit-learn and MLflow before it does a
second of work. :func:`run` runs the same program, with the same arguments, working folder and
environment, in a child forked from a server that imported them once (:data:`PRELOAD`; the
server is ``python -m mlops_course.runtime.warm``, one per process that uses it, reached only
through a socket pair it inherits: no path or port another user could connect to). The program
still runs in its own process: it cannot change the kernel, its exit code and output are its
own, and ``atexit`` hooks run at its end as in a new interpreter. The server ends when the
process that started it ends (its end of the pair closes), and a program still running then is
killed with it.

What differs from a new interpreter: modules in :data:`PRELOAD` are imported once, with the
server's environment, before the program's environment is set (none of them reads its
settings at import time; kfp's ``_KFP_RUNTIME`` switch is set for the server as its tasks set
it). ``MLOPS_COURSE_WARM=0`` switches this off: every program then runs in a new interpreter.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["PRELOAD", "enabled", "prepare", "run", "serve"]

# What the programs the twins start import first; a module that is missing is skipped.
PRELOAD = [
    "pandas",
    "numpy",
    "joblib",
    "sklearn.linear_model",
    "sklearn.ensemble",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.preprocessing",
    "sklearn.pipeline",
    "mlflow",
    "mlflow.cli",
    "mlflow.sklearn",
    "mlflow.pyfunc",
    "mlflow.tracking",
    "mlflow.store.tracking.sqlalchemy_store",
    "mlflow.sagemaker",
    "boto3",
    "kfp.dsl.executor",
    "matplotlib",
]

_lock = threading.Lock()
_server: subprocess.Popen | None = None
_control: socket.socket | None = None  # our end of the pair; one message per program
_MAX_REQUEST = 4 * 1024 * 1024


def enabled() -> bool:
    """Whether programs run warm (``MLOPS_COURSE_WARM`` is not ``0``, and ``fork`` exists)."""
    return os.environ.get("MLOPS_COURSE_WARM", "1") != "0" and hasattr(os, "fork")


def prepare() -> None:
    """Start the warm server in the background: it imports :data:`PRELOAD` on its own while
    the caller goes on; a program sent before it is ready waits for it. Later calls do nothing."""
    global _server, _control
    if not enabled():
        return
    with _lock:
        if _server is not None and _server.poll() is None:
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ)
        env["_KFP_RUNTIME"] = "true"  # kfp then imports its runtime half, as in its own tasks
        try:
            _server = subprocess.Popen(
                [sys.executable, "-m", "mlops_course.runtime.warm", str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
            )
        finally:
            theirs.close()
        _control = ours


def _program(argv: Sequence[str]) -> tuple[str, str, list[str]] | None:
    """("module" or "script", its name, its arguments) of ``python -m m ...``/``python f.py ...``."""
    if len(argv) < 2 or Path(argv[0]).name not in ("python", "python3", Path(sys.executable).name):
        return None
    if argv[1] == "-m" and len(argv) >= 3:
        return "module", argv[2], list(argv[3:])
    if not argv[1].startswith("-"):
        return "script", argv[1], list(argv[2:])
    return None


def run(
    argv: Sequence[str],
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    merge_stderr: bool = False,
) -> subprocess.CompletedProcess:
    """Run ``python -m <module> ...`` or ``python <script> ...`` and capture its output, as
    ``subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)`` would (with
    ``merge_stderr``, stderr goes into stdout). Anything else, or with warm runs switched
    off, runs in a new process exactly like that. ``TimeoutExpired`` after ``timeout`` s."""
    program = _program(argv)
    if program is None or not enabled():
        return _cold(argv, cwd, env, timeout, merge_stderr)
    prepare()
    request = {
        "kind": program[0],
        "name": program[1],
        "args": program[2],
        "cwd": str(Path(cwd or os.getcwd()).resolve()),
        "env": dict(os.environ if env is None else env),
    }
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        try:
            code = _ask(
                request, [out.fileno(), (out if merge_stderr else err).fileno()], timeout, argv
            )
        except _Unavailable:  # the program never started: a new interpreter runs it instead
            return _cold(argv, cwd, env, timeout, merge_stderr)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = "" if merge_stderr else err.read().decode(errors="replace")
    return subprocess.CompletedProcess(list(argv), code, stdout, stderr)


def _ask(request: dict, fds: list[int], timeout: float | None, argv) -> int:
    """Send one program to the server; its exit code (``TimeoutExpired`` after ``timeout``)."""
    payload = json.dumps(request).encode()
    if len(payload) > _MAX_REQUEST:
        raise ValueError(
            f"Expected a program and environment under 4 MB, found {len(payload)} bytes."
        )
    reply, reply_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        try:
            with _lock:
                socket.send_fds(_control, [payload], [*fds, reply_theirs.fileno()])
            reply_theirs.close()
            # The deadline counts from the fork: the server's imports are not the program's.
            pid = struct.unpack("!i", _receive(reply, 4, None))[0]
        except (OSError, ConnectionError, _Closed) as error:
            raise _Unavailable(str(error)) from error
        finally:
            reply_theirs.close()
        try:
            return struct.unpack("!i", _receive(reply, 4, timeout))[0]
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            raise subprocess.TimeoutExpired(list(argv), timeout or 0) from None
    finally:
        reply.close()


class _Closed(Exception):
    """The server closed a reply before it was complete."""


class _Unavailable(Exception):
    """The server could not take the program (it ended, or never started): run it cold."""


def _receive(connection: socket.socket, size: int, timeout: float | None) -> bytes:
    connection.settimeout(None if timeout is None else max(timeout, 0.001))  # 0 would not wait
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise _Closed("the warm server closed the connection")
        data += chunk
    return data


def _cold(argv, cwd, env, timeout, merge_stderr) -> subprocess.CompletedProcess:
    return subprocess.run(
        list(argv),
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        text=True,
        timeout=timeout,
        check=False,
    )


# --------------------------------------------------------------------------- the server


def serve(control_fd: int) -> None:
    """The server: import :data:`PRELOAD`, then fork one child per program received on
    ``control_fd``. Ends (killing what still runs) when the other end of it closes."""
    # An interrupt goes to the kernel's whole process group: the programs it reaches stop (as
    # new processes would), the server stays until its parent ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    control = socket.socket(fileno=control_fd)
    children: set[int] = set()
    import importlib

    for name in PRELOAD:
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    while True:
        message, fds, _, _ = socket.recv_fds(control, _MAX_REQUEST, 3)
        if not message:  # the process that started us has ended
            for pid in list(children):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            os._exit(0)
        request = json.loads(message)
        reply = socket.socket(fileno=fds[2])
        pid = os.fork()
        if pid == 0:
            control.close()
            reply.close()
            _child(request, fds[:2])  # never returns
        for fd in fds[:2]:
            os.close(fd)
        children.add(pid)
        reply.sendall(struct.pack("!i", pid))
        threading.Thread(target=_report, args=(reply, pid, children), daemon=True).start()


def _report(connection: socket.socket, pid: int, children: set[int]) -> None:
    _, status = os.waitpid(pid, 0)
    children.discard(pid)
    with contextlib.suppress(OSError):
        connection.sendall(struct.pack("!i", os.waitstatus_to_exitcode(status)))
    connection.close()


def _child(request: dict, fds: list[int]) -> None:
    """In the forked child: become ``python -m module``/``python script`` and exit with its code."""
    import atexit
    import runpy
    import traceback

    signal.signal(signal.SIGINT, signal.default_int_handler)
    devnull = os.open(os.devnull, os.O_RDONLY)
    for target, fd in ((0, devnull), (1, fds[0]), (2, fds[1])):
        os.dup2(fd, target)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # the program's own TMPDIR, as a new interpreter would read it
    name, args, code = request["name"], request["args"], 0
    try:
        if request["kind"] == "module":
            sys.argv = [name, *args]
            sys.path[0:1] = [request["cwd"]]
            runpy.run_module(name, run_name="__main__", alter_sys=True)
        else:
            script = os.path.join(request["cwd"], name)
            sys.argv = [name, *args]
            sys.path[0:1] = [os.path.dirname(os.path.abspath(script))]
            runpy.run_path(script, run_name="__main__")
    except SystemExit as exited:
        code = _exit_code(exited.code)
    except BaseException:  # noqa: BLE001 - printed as Python would print it, exit code 1
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(BaseException):
            atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    os._exit(code)


def _exit_code(value) -> int:
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    print(value, file=sys.stderr)
    return 1


if __name__ == "__main__":
    serve(int(sys.argv[1]))
