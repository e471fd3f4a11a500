"""Processes the course starts: each on 127.0.0.1, on a free port, and always stopped.

This module is the machinery (:class:`ManagedProcess`, free ports, the guards, starting
several at once); :mod:`mlops_course.runtime.servers` and
:mod:`mlops_course.runtime.postgres` build the course's servers on it.

Every server runs in its own process group so that stopping it also stops the
workers it forks. Three guards stop it: the ``with`` block (success, exception,
``KeyboardInterrupt``), an ``atexit`` hook (a kernel that shuts down with the
server still running), and, on Linux, a parent-death signal (a kernel that is
killed outright).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

from mlops_course import environment, paths
from mlops_course.runtime.errors import CourseError

__all__ = [
    "LOOPBACK",
    "ManagedProcess",
    "ServerError",
    "free_port",
    "port_in_use",
    "resident_mb",
    "running_servers",
    "start_together",
    "stop_all",
    "stop_together",
]

LOOPBACK = "127.0.0.1"
_LIVE: weakref.WeakSet[ManagedProcess] = weakref.WeakSet()


class ServerError(CourseError, RuntimeError):
    """A server could not be started; the message names the cause and the fix."""


def free_port(host: str = LOOPBACK) -> int:
    """Return a TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int, host: str = LOOPBACK) -> bool:
    """True when something already listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Ask Linux to SIGTERM the child when the process that started it dies.

    Linux ties this signal to the *thread* that started the child: start servers from the
    main thread (as notebooks do), not from a thread pool, or they stop when the thread ends.
    """
    os.setsid()
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class ManagedProcess:
    """A server process with a readiness URL, a log file and a guaranteed stop.

    Use it as a context manager, or call :meth:`start` and :meth:`stop` across
    notebook cells (the atexit guard covers a forgotten :meth:`stop`).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        port: int,
        ready_path: str,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        host: str = LOOPBACK,
        timeout: float = 60.0,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.host = host
        self.port = port
        self.ready_path = ready_path
        self.log_path = Path(log_path)
        self.env = dict(env) if env is not None else dict(os.environ)
        self.cwd = cwd
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None
        self._spawned_at = 0.0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log written)"
        return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"

    def spawn(self) -> ManagedProcess:
        """Launch the process without waiting for it to be ready (see :meth:`wait_ready`)."""
        if self.running:
            return self
        if port_in_use(self.port, self.host):
            raise ServerError(
                f"{self.name}: port {self.port} on {self.host} is already in use; "
                "leave the port unset so a free one is chosen, or stop the program that holds it."
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # the child owns it while it runs
        self._spawned_at = time.monotonic()
        try:
            self.process = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                preexec_fn=_die_with_parent,  # setsid + parent-death signal
            )
        except FileNotFoundError as error:
            raise ServerError(
                f"{self.name}: the program {self.argv[0]!r} was not found; "
                "run the course's `make course` set-up so the environment is complete."
            ) from error
        finally:
            log.close()
        _LIVE.add(self)
        return self

    def start(self) -> ManagedProcess:
        """Launch the process and wait until it answers; stopped again if it never does."""
        if self.running:
            return self
        self.spawn()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _answers(self) -> bool:
        """One readiness probe: the ready path answers with a status below 500."""
        try:
            with urllib.request.urlopen(self.url + self.ready_path, timeout=2) as response:
                return response.status < 500
        except urllib.error.HTTPError as error:
            return error.code < 500
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def _readiness(self) -> str:
        return f"did not answer {self.url + self.ready_path}"

    def wait_ready(self) -> None:
        """Wait until the readiness probe passes; :class:`ServerError` with the log's tail if the
        process exits first or ``timeout`` seconds pass."""
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with code {self.process.returncode} before it was ready "
                    f"(log {self.log_path}); last lines:\n{self.log_tail()}"
                )
            if self._answers():
                self.startup_seconds = round(time.monotonic() - self._spawned_at, 2)
                return
            time.sleep(0.2)
        raise ServerError(
            f"{self.name} {self._readiness()} within {self.timeout:.0f} s "
            f"(log {self.log_path}); last lines:\n{self.log_tail()}"
        )

    def stop(self, grace: float = 5.0) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after ``grace`` seconds."""
        process, self.process = self.process, None
        _LIVE.discard(self)
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        # Workers may outlive the leader; the group id is still the leader's pid.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<{self.name} {state} at {self.url}>"


def running_servers() -> list[ManagedProcess]:
    """Servers started by this Python process that are still running."""
    return [server for server in list(_LIVE) if server.running]


def stop_all() -> None:
    """Stop every server this process started (registered with ``atexit``)."""
    for server in list(_LIVE):
        server.stop()


atexit.register(stop_all)


def resolve_port(port: int | None) -> int:
    """``port`` itself, or a free one when it is None."""
    return free_port() if port is None else int(port)


def python_server(
    name: str,
    module_args: Sequence[str],
    *,
    port: int,
    ready_path: str,
    log_stem: str,
    log_dir: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 60.0,
) -> ManagedProcess:
    """A server that is ``python -m <module_args>`` of this environment (not started).

    It logs to ``<log_dir or ./logs>/<log_stem>-<port>.log`` and runs with the course's
    environment (:func:`mlops_course.environment.child_env`) plus ``env``.
    """
    return ManagedProcess(
        name,
        [sys.executable, "-m", *module_args],
        port=port,
        ready_path=ready_path,
        log_path=paths.log_dir(log_dir) / f"{log_stem}-{port}.log",
        env=environment.child_env(env),
        timeout=timeout,
    )


def start_together(*processes: ManagedProcess) -> float:
    """Start several servers at once and wait until all are ready; return the seconds.

    The processes are spawned from this thread, one after the other, and only the waiting
    happens in threads: Linux sends the parent-death signal when the *thread* that spawned a
    child exits, so a server spawned in a short-lived thread would be stopped at once. If any
    of them fails, all are stopped and the first error is raised.
    """
    started = time.monotonic()
    errors: list[BaseException] = []

    def wait(process: ManagedProcess) -> None:
        try:
            process.wait_ready()
        except BaseException as error:  # noqa: BLE001 - re-raised below, in the caller's thread
            errors.append(error)

    try:
        for process in processes:
            process.spawn()
        threads = [threading.Thread(target=wait, args=(p,), daemon=True) for p in processes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
    except BaseException:
        for process in processes:
            process.stop()
        raise
    return round(time.monotonic() - started, 2)


def stop_together(*processes: ManagedProcess) -> None:
    """Stop several servers at once (each may take its SIGTERM grace period)."""
    threads = [threading.Thread(target=p.stop, daemon=True) for p in processes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def resident_mb(process: ManagedProcess) -> float:
    """Resident memory (MB) of a server's whole process group, read from /proc."""
    if not process.running:
        return 0.0
    assert process.process is not None
    group = process.process.pid
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[2]) == group:  # field 5 of stat: the process group id
                total += int((entry / "statm").read_text().split()[1]) * page
        except (OSError, ValueError, IndexError):
            continue
    return round(total / 1e6, 1)
