"""mlops_course.start: isolated store per working folder, user's URI wins, seeds, versions."""

from __future__ import annotations

import random

import numpy as np

import mlops_course
from mlops_course.runtime import session


def test_isolated_store_in_the_working_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    context = mlops_course.start("99_test", seed=7)
    assert context.tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert context.isolated_store and context.workdir == tmp_path
    printed = capsys.readouterr().out
    assert "mlflow" in printed and "scikit-learn" in printed and "isolated store" in printed
    import mlflow

    assert mlflow.get_tracking_uri() == context.tracking_uri


def test_each_folder_gets_its_own_store(tmp_path, monkeypatch):
    uris = []
    for name in ("alice", "bob"):
        folder = tmp_path / name
        folder.mkdir()
        monkeypatch.chdir(folder)
        uris.append(mlops_course.start("99_test", quiet=True).tracking_uri)
    assert uris[0] != uris[1], "two submissions must never share a store"


def test_user_tracking_uri_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    context = mlops_course.start("99_test", quiet=True)
    assert context.tracking_uri == "http://127.0.0.1:5999" and not context.isolated_store


def test_running_start_twice_keeps_the_isolated_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = mlops_course.start("99_test", quiet=True)
    second = mlops_course.start("99_test", quiet=True)
    assert second.isolated_store and second.tracking_uri == first.tracking_uri


def test_seeds_make_random_numbers_repeat(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mlops_course.start("99_test", seed=3, quiet=True)
    first = (random.random(), np.random.rand())
    mlops_course.start("99_test", seed=3, quiet=True)
    assert (random.random(), np.random.rand()) == first


def test_store_uri_is_absolute(tmp_path):
    assert session.store_uri(tmp_path).startswith("sqlite:////")


def test_autograding_sends_stderr_to_stdout(tmp_path, monkeypatch):
    """nbgrader zeroes a test cell that writes to stderr: under autograde it must not happen."""
    import logging
    import sys

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    original = sys.stderr
    handler = logging.StreamHandler(sys.stderr)
    logging.getLogger("mlflow.test").addHandler(handler)
    try:
        mlops_course.start("99_test", quiet=True)
        assert sys.stderr is sys.stdout and handler.stream is sys.stdout
    finally:
        sys.stderr = original
        logging.getLogger("mlflow.test").removeHandler(handler)
