"""The course's servers: MLflow tracking and scoring servers, and moto's AWS APIs.

Each function returns a :class:`~mlops_course.runtime.processes.ManagedProcess` that is not
started yet: use it in a ``with`` block, or call ``.start()`` and ``.stop()`` across cells.
Every one binds 127.0.0.1 on a free port (unless ``port`` is given) and logs to
``./logs/<name>-<port>.log`` (or ``log_dir``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from mlops_course.runtime.processes import LOOPBACK, ManagedProcess, python_server, resolve_port

__all__ = ["model_server", "s3_server", "tracking_server"]


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
    chosen = resolve_port(port)
    args = ["mlflow", "server", "--host", LOOPBACK, "--port", str(chosen), "--workers", "1"]
    args += ["--backend-store-uri", backend_store_uri]
    if artifacts_destination:
        args += ["--artifacts-destination", artifacts_destination]
    if default_artifact_root:
        args += ["--default-artifact-root", default_artifact_root, "--no-serve-artifacts"]
    args += list(extra_args)
    return python_server(
        "MLflow tracking server",
        args,
        port=chosen,
        ready_path="/health",
        log_stem="mlflow-server",
        log_dir=log_dir,
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
    import mlflow

    chosen = resolve_port(port)
    args = ["mlflow", "models", "serve", "--model-uri", model_uri]
    args += ["--host", LOOPBACK, "--port", str(chosen), "--env-manager", "local", "--workers", "1"]
    extra = {"MLFLOW_TRACKING_URI": mlflow.get_tracking_uri(), **(env or {})}
    return python_server(
        "MLflow scoring server",
        args,
        port=chosen,
        ready_path="/ping",
        log_stem="mlflow-models-serve",
        log_dir=log_dir,
        env=extra,
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
    chosen = resolve_port(port)
    return python_server(
        "moto server (AWS APIs)",
        ["moto.server", "-H", LOOPBACK, "-p", str(chosen)],
        port=chosen,
        ready_path="/moto-api/",
        log_stem="moto",
        log_dir=log_dir,
        env=env,
        timeout=timeout,
    )
