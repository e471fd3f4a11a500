"""The class server: authentication, per-student write permissions, data that survives a restart."""

from __future__ import annotations

import stat

import pytest
import requests

from mlops_course.instructor.classroom import ClassServer, read_students

pytestmark = pytest.mark.servers  # PostgreSQL and an MLflow server with authentication


def test_class_server_accounts_permissions_and_restart(tmp_path):
    roster = tmp_path / "students.csv"
    roster.write_text("student_id,password\nana,ana-secret-1\nben,\n")
    students = read_students(roster)
    data = tmp_path / "class"
    api = "/api/2.0/mlflow"
    with ClassServer(data, students) as server:
        url = server.url
        ben_password = server.credentials["students"]["ben"]
        assert ben_password, "a missing password is generated"
        assert stat.S_IMODE((data / "credentials.json").stat().st_mode) == 0o600
        anonymous = requests.get(
            f"{url}{api}/experiments/search", params={"max_results": 5}, timeout=30
        )
        assert anonymous.status_code == 401
        ana, ben = ("ana", "ana-secret-1"), ("ben", ben_password)
        created = requests.post(
            f"{url}{api}/experiments/create", json={"name": "ben-exp"}, auth=ben, timeout=30
        )
        assert created.status_code == 200, created.text
        experiment_id = created.json()["experiment_id"]
        run = requests.post(
            f"{url}{api}/runs/create", json={"experiment_id": experiment_id}, auth=ben, timeout=30
        )
        assert run.status_code == 200, run.text
        run_id = run.json()["run"]["info"]["run_id"]
        denied = requests.post(
            f"{url}{api}/runs/create", json={"experiment_id": experiment_id}, auth=ana, timeout=30
        )
        assert denied.status_code == 403, denied.text
        readable = requests.get(
            f"{url}{api}/experiments/get",
            params={"experiment_id": experiment_id},
            auth=ana,
            timeout=30,
        )
        assert readable.status_code == 200  # default_permission = READ
        upload = requests.put(
            f"{url}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/note.txt",
            data=b"kept across restarts",
            auth=ben,
            timeout=30,
        )
        assert upload.status_code == 200, upload.text
    # Same folder, new processes: the run and its artifact are still there.
    with ClassServer(data, students) as server:
        ben = ("ben", server.credentials["students"]["ben"])
        assert ben[1] == ben_password, "the stored password is reused"
        got = requests.get(
            f"{server.url}{api}/runs/get", params={"run_id": run_id}, auth=ben, timeout=30
        )
        assert (
            got.status_code == 200 and got.json()["run"]["info"]["experiment_id"] == experiment_id
        )
        artifact = requests.get(
            f"{server.url}/api/2.0/mlflow-artifacts/artifacts/{experiment_id}/{run_id}/artifacts/note.txt",
            auth=ben,
            timeout=30,
        )
        assert artifact.status_code == 200 and artifact.content == b"kept across restarts"
