"""A class tracking server: ``mlops-course class-server --students students.csv --data-dir DIR``.

It runs the twin of the chapter's AWS stack for a whole class, with accounts:

- PostgreSQL (the RDS twin) holds the backend store in ``DIR/postgres``;
- artifacts are proxied by the server (``--artifacts-destination``, as on Fargate) into
  ``DIR/artifacts``: the S3 twin (moto) keeps its objects in memory only, so a class server
  that must survive a restart stores them in a folder instead;
- ``mlflow server --app-name basic-auth`` with ``DIR/basic_auth.ini``: every request needs a
  user and password, ``default_permission = READ`` lets everyone read every experiment, and
  only an experiment's creator (and the admin) may write to it;
- one account per student from the CSV (``student_id`` and an optional ``password``; missing
  passwords are generated). The admin's and the students' credentials are kept in
  ``DIR/credentials.json`` (mode 0600), so a restart prints the same settings.

Everything stays in ``DIR``: stop with Ctrl-C, start again with the same ``DIR`` and the runs
and artifacts are there.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from mlops_course.runtime import servers
from mlops_course.runtime.errors import CourseError
from mlops_course.runtime.postgres import postgres_server
from mlops_course.runtime.processes import LOOPBACK

__all__ = ["ClassServer", "ClassroomError", "read_students", "run"]

ADMIN = "admin"
MIN_PASSWORD = 12  # MLflow's basic-auth app rejects shorter passwords


class ClassroomError(CourseError):
    """The class server's input is wrong (a CSV without student_id, ...)."""


def read_students(path: Path) -> dict[str, str | None]:
    """``{student_id: password or None}`` from a CSV with a ``student_id`` and optional ``password`` column."""
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or "student_id" not in reader.fieldnames:
            raise ClassroomError(
                f"Expected a CSV with a 'student_id' column in {path}, found columns {reader.fieldnames}."
            )
        students: dict[str, str | None] = {}
        for row in reader:
            student = (row.get("student_id") or "").strip()
            if student:
                students[student] = (row.get("password") or "").strip() or None
    if not students:
        raise ClassroomError(f"Expected at least one student in {path}, found none.")
    short = sorted(s for s, p in students.items() if p is not None and len(p) < MIN_PASSWORD)
    if short:
        raise ClassroomError(
            f"Expected passwords of at least {MIN_PASSWORD} characters (MLflow's rule) in {path}, "
            f"found shorter ones for {', '.join(short)}; leave the password empty to generate one."
        )
    return students


def _private_json(path: Path, payload: dict) -> None:
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(json.dumps(payload, indent=2))


@dataclass
class ClassServer:
    data_dir: Path
    students: dict[str, str | None] = field(default_factory=dict)
    port: int | None = None
    host: str = LOOPBACK
    processes: list = field(default_factory=list)
    credentials: dict = field(default_factory=dict)
    first_start: bool = False

    def _prepare(self) -> dict:
        self.data_dir = Path(self.data_dir).resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "artifacts").mkdir(exist_ok=True)
        store = self.data_dir / "credentials.json"
        self.first_start = not store.exists()
        credentials = json.loads(store.read_text()) if store.exists() else {}
        credentials.setdefault("admin", {"username": ADMIN, "password": secrets.token_urlsafe(16)})
        known = credentials.setdefault("students", {})
        for student, password in self.students.items():
            if password:
                known[student] = password
            else:
                known.setdefault(student, secrets.token_urlsafe(12))
        _private_json(store, credentials)
        ini = self.data_dir / "basic_auth.ini"
        ini.write_text(
            "[mlflow]\n"
            "default_permission = READ\n"
            f"database_uri = sqlite:///{self.data_dir / 'basic_auth.db'}\n"
            f"admin_username = {credentials['admin']['username']}\n"
            f"admin_password = {credentials['admin']['password']}\n"
            "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        )
        ini.chmod(0o600)
        self.credentials = credentials
        return credentials

    @property
    def url(self) -> str:
        return self.processes[-1].url if self.processes else ""

    def public_url(self) -> str:
        if self.host in (LOOPBACK, "0.0.0.0"):
            host = LOOPBACK if self.host == LOOPBACK else os.uname().nodename
        else:
            host = self.host
        return f"http://{host}:{self.processes[-1].port}"

    def start(self) -> ClassServer:
        credentials = self._prepare()
        logs = self.data_dir / "logs"
        postgres = postgres_server(self.data_dir / "postgres", log_dir=logs).start()
        self.processes.append(postgres)
        try:
            postgres.create_database("mlflow")
            extra = ["--app-name", "basic-auth"]
            if self.host != LOOPBACK:
                extra += ["--host", self.host, "--allowed-hosts", "*"]
            tracking = servers.tracking_server(
                postgres.sqlalchemy_uri("mlflow"),
                artifacts_destination=str(self.data_dir / "artifacts"),
                port=self.port,
                log_dir=logs,
                extra_args=extra,
                timeout=120,
                env={
                    "MLFLOW_AUTH_CONFIG_PATH": str(self.data_dir / "basic_auth.ini"),
                    "MLFLOW_AUTH_ADMIN_PASSWORD": credentials["admin"]["password"],
                    "MLFLOW_FLASK_SERVER_SECRET_KEY": credentials.setdefault(
                        "secret", secrets.token_hex(16)
                    ),
                },
            )
            _private_json(self.data_dir / "credentials.json", credentials)
            tracking.start()
            self.processes.append(tracking)
            self._create_accounts()
        except BaseException:
            self.stop()
            raise
        return self

    def _create_accounts(self) -> None:
        admin = (self.credentials["admin"]["username"], self.credentials["admin"]["password"])
        for student, password in self.credentials["students"].items():
            answer = requests.post(
                f"{self.url}/api/2.0/mlflow/users/create",
                json={"username": student, "password": password},
                auth=admin,
                timeout=30,
            )
            if answer.status_code == 200:
                continue
            if "RESOURCE_ALREADY_EXISTS" in answer.text or "already exists" in answer.text:
                requests.patch(
                    f"{self.url}/api/2.0/mlflow/users/update-password",
                    json={"username": student, "password": password},
                    auth=admin,
                    timeout=30,
                )
                continue
            raise ClassroomError(
                f"Expected to create the account {student!r}, found HTTP {answer.status_code}: {answer.text[:200]}."
            )

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes = []

    def settings_text(self) -> str:
        url = self.public_url()
        lines = [
            f"MLflow class server: {url} (data in {self.data_dir})",
            f"admin: {self.credentials['admin']['username']} / "
            + (
                f"{self.credentials['admin']['password']} (printed this once; "
                if self.first_start
                else "("
            )
            + f"kept in {self.data_dir / 'credentials.json'}, mode 0600)",
            "",
            "Each student sets, before starting Jupyter (or in the notebook with os.environ):",
        ]
        for student, password in self.credentials["students"].items():
            if student in self.students or not self.students:
                lines.append(
                    f"  {student}: export MLFLOW_TRACKING_URI={url} MLFLOW_TRACKING_USERNAME={student} "
                    f"MLFLOW_TRACKING_PASSWORD={password}"
                )
        return "\n".join(lines)

    def __enter__(self) -> ClassServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def run(students_csv: Path, data_dir: Path, port: int | None = None, host: str = LOOPBACK) -> int:
    """The ``class-server`` command: start, print the settings once, serve until Ctrl-C."""
    server = ClassServer(Path(data_dir), read_students(Path(students_csv)), port=port, host=host)
    started = time.monotonic()
    with server:
        print(server.settings_text())
        print(
            f"\nReady in {time.monotonic() - started:.1f} s. Press Ctrl-C to stop (the data stays in {server.data_dir}).",
            flush=True,
        )
        try:
            while all(p.running for p in server.processes):
                time.sleep(1)
        except KeyboardInterrupt:
            print("Stopping the class server ...", flush=True)
            return 0
    print("A server process exited; see the logs in", Path(data_dir) / "logs")
    return 1
