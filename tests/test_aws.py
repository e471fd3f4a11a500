"""The AWS twin of notebook 08: the CDK stack, the aws code path (in-process moto), process cleanup.

The twin end to end (PostgreSQL, moto, MLflow servers, SageMaker deploy and predict) is
covered by executing the notebook; these tests check the pieces the notebook cannot.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from mlops_course.runtime.twins import aws, cdk

from .conftest import REPO

CDK_APP = REPO / "walkthroughs" / "aws"


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory):
    return cdk.cdk_synth(CDK_APP, tmp_path_factory.mktemp("cdk") / "cdk.out", timeout=300)


@pytest.mark.servers
def test_cdk_template_has_the_chapters_services(synthesized):
    from aws_cdk.assertions import Match, Template

    template = Template.from_json(synthesized.template)
    template.resource_count_is("AWS::RDS::DBInstance", 1)
    template.has_resource_properties(
        "AWS::RDS::DBInstance", {"Engine": "postgres", "StorageEncrypted": True}
    )
    # The database password, MLflow's admin password and its session key: all generated.
    template.resource_count_is("AWS::SecretsManager::Secret", 3)
    template.resource_count_is("AWS::S3::Bucket", 1)
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "PublicAccessBlockConfiguration": Match.object_like({"BlockPublicAcls": True}),
        },
    )
    template.resource_count_is("AWS::ECS::Service", 1)
    template.has_resource_properties("AWS::ECS::Service", {"LaunchType": "FARGATE"})
    template.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "ContainerDefinitions": [
                Match.object_like(
                    {
                        "Secrets": Match.array_with(
                            [
                                Match.object_like({"Name": name})
                                for name in (
                                    "DB_PASSWORD",
                                    "MLFLOW_AUTH_ADMIN_PASSWORD",
                                    "MLFLOW_FLASK_SERVER_SECRET_KEY",
                                )
                            ]
                        ),
                        "PortMappings": [Match.object_like({"ContainerPort": 5000})],
                    }
                )
            ],
        },
    )
    template.resource_count_is("AWS::ElasticLoadBalancingV2::LoadBalancer", 1)
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internet-facing"}
    )
    template.has_parameter("ProjectName", {"Type": "String", "Default": "mlflow"})
    template.has_output("LoadBalancerDNS", {})
    _check_the_front_door(template, synthesized.template["Resources"])
    # The database password is never written into the template: RDS reads it from the stack's
    # secret through a dynamic reference, resolved by CloudFormation at deploy time.
    resources = synthesized.template["Resources"]
    secrets = [k for k, v in resources.items() if v["Type"] == "AWS::SecretsManager::Secret"]
    for secret_id in secrets:
        assert "GenerateSecretString" in resources[secret_id]["Properties"]  # generated, not given
        assert "SecretString" not in resources[secret_id]["Properties"]
    (database,) = [v for v in resources.values() if v["Type"] == "AWS::RDS::DBInstance"]
    (secret_id,) = [
        k
        for k in secrets
        if resources[k]["Properties"]["GenerateSecretString"].get("GenerateStringKey")
    ]  # the database's secret is a JSON document {username, password}
    password = database["Properties"]["MasterUserPassword"]
    assert isinstance(password, dict) and set(password) == {"Fn::Join"}, password
    assert _joined(password) == (
        f"{{{{resolve:secretsmanager:${{Ref:{secret_id}}}:SecretString:password::}}}}"
    ), password
    leaks = [
        (where, value)
        for where, key, value in _entries(synthesized.template)
        if "password" in key.lower() and key != "GenerateStringKey" and isinstance(value, str)
    ]
    assert not leaks, f"literal passwords in the template: {leaks}"


def _check_the_front_door(template, resources) -> None:
    """HTTPS with the given certificate, HTTP only redirecting, and only AllowedCidr let in."""
    template.has_parameter("CertificateArn", {"Type": "String"})
    template.has_parameter("AllowedCidr", {"Type": "String"})
    template.has_parameter("DomainName", {"Type": "String"})
    listeners = {
        v["Properties"]["Port"]: v["Properties"]
        for v in resources.values()
        if v["Type"] == "AWS::ElasticLoadBalancingV2::Listener"
    }
    assert set(listeners) == {443, 80}, listeners
    https = listeners[443]
    assert https["Protocol"] == "HTTPS"
    assert https["Certificates"] == [{"CertificateArn": {"Ref": "CertificateArn"}}]
    assert https["SslPolicy"].startswith("ELBSecurityPolicy-TLS13"), https["SslPolicy"]
    (redirect,) = listeners[80]["DefaultActions"]
    assert redirect["Type"] == "redirect" and redirect["RedirectConfig"]["Protocol"] == "HTTPS"
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internet-facing"}
    )
    (balancer,) = [
        v for v in resources.values() if v["Type"] == "AWS::ElasticLoadBalancingV2::LoadBalancer"
    ]
    groups = {g["Fn::GetAtt"][0] for g in balancer["Properties"]["SecurityGroups"]}
    ingress = [
        rule
        for group in groups
        for rule in resources[group]["Properties"].get("SecurityGroupIngress", [])
    ] + [
        v["Properties"]
        for v in resources.values()
        if v["Type"] == "AWS::EC2::SecurityGroupIngress"
        and v["Properties"].get("GroupId", {}).get("Fn::GetAtt", [None])[0] in groups
    ]
    assert ingress, "the load balancer admits nobody"
    for rule in ingress:
        assert rule.get("CidrIp") == {"Ref": "AllowedCidr"}, (
            f"an ingress rule beyond AllowedCidr: {rule}"
        )


def _joined(value) -> str:
    """A CloudFormation value as one string: Fn::Join joined, {"Ref": X} written ${Ref:X}."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return f"${{Ref:{value['Ref']}}}"
    if isinstance(value, dict) and set(value) == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(_joined(part) for part in parts)
    raise AssertionError(f"unexpected intrinsic in a password: {value!r}")


def _entries(node, where=""):
    """Every (path, key, value) of the template's mappings, at any depth; a {"Name": n,
    "Value": v} pair (an ECS environment variable, a tag) counts as the key n with value v."""
    if isinstance(node, dict):
        if isinstance(node.get("Name"), str) and "Value" in node:
            yield where, node["Name"], node["Value"]
        for key, value in node.items():
            yield where, key, value
            yield from _entries(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _entries(value, f"{where}/{index}")


@pytest.mark.servers
def test_cdk_template_passes_cfn_lint(synthesized):
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "cfn-lint"),
            "--format",
            "parseable",
            str(synthesized.template_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    # parseable: file:line:column:end line:end column:RULE:message; rules E... are errors
    errors = [
        line
        for line in done.stdout.splitlines()
        if line.split(":")[5:6] and line.split(":")[5].startswith("E")
    ]
    assert not errors, "cfn-lint found errors:\n" + "\n".join(errors)


def _dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped."""
    instructions, current = [], ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or (not current and not line.strip()):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        keyword, _, arguments = (current + line).strip().partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
        current = ""
    assert not current, "the Dockerfile ends inside a line continuation"
    return instructions


def _container_argv(instructions, environment: dict[str, str], bin_dir: Path) -> list[str]:
    """The argv the container starts, as Docker builds it from ENTRYPOINT and CMD.

    The shell form runs under ``/bin/sh -c``: it is run here by sh, with ``set -u`` and only
    ``environment``, and a stand-in ``mlflow`` on the PATH that prints the argv it receives.
    """

    def form(value: str) -> tuple[list[str], bool]:
        return (
            (json.loads(value), False)
            if value.startswith("[")
            else (["/bin/sh", "-c", value], True)
        )

    last = {keyword: value for keyword, value in instructions if keyword in ("CMD", "ENTRYPOINT")}
    assert "CMD" in last or "ENTRYPOINT" in last, "the Dockerfile has neither CMD nor ENTRYPOINT"
    argv, shell = form(last["ENTRYPOINT"]) if "ENTRYPOINT" in last else ([], False)
    if "CMD" in last and not shell:  # a shell-form ENTRYPOINT ignores CMD
        argv += form(last["CMD"])[0]
    if Path(argv[0]).name not in ("sh", "bash") or argv[1:2] != ["-c"]:
        return argv  # exec form: no shell, no variable expansion
    stand_in = bin_dir / "mlflow"
    stand_in.write_text(
        '#!/bin/sh\nprintf \'%s\\0\' "MLFLOW_AUTH_CONFIG_PATH=${MLFLOW_AUTH_CONFIG_PATH:-}" mlflow "$@"\n'
    )
    stand_in.chmod(0o755)
    done = subprocess.run(
        ["/bin/sh", "-c", "set -u\n" + argv[2]],
        env={**environment, "PATH": f"{bin_dir}:/usr/bin:/bin"},
        cwd=bin_dir,  # a file the command writes lands here, not in the repository
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, f"the container command fails under sh: {done.stderr}"
    config, *argv = done.stdout.split("\0")[:-1]
    return argv, config.partition("=")[2]


@pytest.mark.servers
def test_dockerfile_runs_the_proxied_server(synthesized, tmp_path, monkeypatch):
    """The container's command, parsed by MLflow's own command-line parser, is the server the
    stack expects: proxied S3 artifacts, PostgreSQL built from the task's environment."""
    from importlib.metadata import version
    from urllib.parse import urlparse

    import click
    import mlflow.cli
    from mlflow.utils.uri import extract_db_type_from_uri
    from sqlalchemy.engine import make_url

    instructions = _dockerfile_instructions((CDK_APP / "container" / "Dockerfile").read_text())
    installs = " ".join(value for keyword, value in instructions if keyword in ("RUN", "ARG"))
    for package in ("psycopg2-binary", "boto3"):  # drivers of the PostgreSQL and S3 URIs
        assert package in installs, f"the image should install {package}"
    # The parser below is the one of the MLflow version the image installs.
    assert f"MLFLOW_VERSION={version('mlflow')}" in installs and "mlflow==${MLFLOW_VERSION}" in (
        installs
    )

    resources = synthesized.template["Resources"]
    (task,) = [v for v in resources.values() if v["Type"] == "AWS::ECS::TaskDefinition"]
    (container,) = task["Properties"]["ContainerDefinitions"]
    names = [e["Name"] for e in container["Environment"]] + [
        s["Name"] for s in container["Secrets"]
    ]
    (bucket_id,) = [k for k, v in resources.items() if v["Type"] == "AWS::S3::Bucket"]
    assert {"Name": "BUCKET", "Value": {"Ref": bucket_id}} in container["Environment"]
    # Only what the task definition gives: a variable it lacks makes `set -u` fail.
    environment = {name: f"the-{name.lower().replace('_', '-')}" for name in names}
    environment["DB_PORT"] = "5432"
    environment["HOME"] = str(tmp_path)  # Docker sets it from the USER line
    argv, auth_config = _container_argv(instructions, environment, tmp_path)

    assert argv[0] == "mlflow", argv
    group = mlflow.cli.cli
    assert group.get_command(click.Context(group), argv[1]) is mlflow.cli.server, argv
    for key in list(os.environ):  # the task sets no MLFLOW_* variable: defaults are the CLI's
        if key.startswith("MLFLOW_"):
            monkeypatch.delenv(key)
    # Parses (a misspelt option raises click.NoSuchOption) without starting the server.
    with mlflow.cli.server.make_context("server", argv[2:]) as context:
        params = context.params

    assert params["host"] == "0.0.0.0"  # reachable from the load balancer, not only loopback
    (mapping,) = container["PortMappings"]
    assert params["port"] == mapping["ContainerPort"] == 5000
    assert ("EXPOSE", str(params["port"])) in instructions
    assert params["workers"] is None or int(params["workers"]) >= 1

    backend = params["backend_store_uri"]
    assert extract_db_type_from_uri(backend) == "postgresql", backend
    url = make_url(backend)
    assert (url.drivername, url.username, url.password, url.host, url.port, url.database) == (
        "postgresql+psycopg2",
        environment["DB_USER"],
        environment["DB_PASSWORD"],
        environment["DB_HOST"],
        int(environment["DB_PORT"]),
        environment["DB_NAME"],
    ), backend

    # Proxied artifacts: the server reads and writes the bucket, clients only talk to it.
    destination = urlparse(params["artifacts_destination"])
    assert (destination.scheme, destination.netloc) == ("s3", environment["BUCKET"])
    assert params["serve_artifacts"] and not params["artifacts_only"]
    assert params["default_artifact_root"] is None  # else clients would need S3 credentials
    # Only the certificate's name is served (the health check's path is exempt, see below).
    assert params["allowed_hosts"] == environment["DOMAIN_NAME"], params["allowed_hosts"]
    assert not params["disable_security_middleware"]
    # MLflow's authentication, configured in the same database, read by MLflow's own parser.
    assert params["app_name"] == "basic-auth"
    from mlflow.server.auth.config import read_auth_config

    monkeypatch.setenv("MLFLOW_AUTH_CONFIG_PATH", str(Path(auth_config)))
    monkeypatch.setenv("MLFLOW_AUTH_ADMIN_PASSWORD", environment["MLFLOW_AUTH_ADMIN_PASSWORD"])
    auth = read_auth_config()
    assert auth.database_uri == backend
    assert auth.default_permission == "NO_PERMISSIONS"
    assert (auth.admin_username, auth.admin_password) == (
        "admin",
        environment["MLFLOW_AUTH_ADMIN_PASSWORD"],
    )
    # The load balancer's health check asks a path this MLflow server answers.
    from mlflow.server import app
    from mlflow.server.auth import _UNPROTECTED_PATH_PREFIXES
    from mlflow.server.security_utils import is_health_endpoint

    (group_,) = [
        v for v in resources.values() if v["Type"] == "AWS::ElasticLoadBalancingV2::TargetGroup"
    ]
    health = group_["Properties"]["HealthCheckPath"]
    assert health in {rule.rule for rule in app.url_map.iter_rules()}, health
    # ... without a user and whatever its Host header (the target's IP address).
    assert health.startswith(_UNPROTECTED_PATH_PREFIXES) and is_health_endpoint(health), health


# --- the TARGET = "aws" code path, against moto in-process (no server) -----------------------


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    for key in list(os.environ):
        if key.startswith("AWS_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_aws_target_without_credentials_says_so(no_credentials):
    with pytest.raises(aws.MissingAwsCredentials, match="needs AWS credentials"):
        aws.require_credentials("us-west-1")


def test_aws_code_path_with_mock_aws(no_credentials, monkeypatch, tmp_path):
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        env = aws.require_credentials("us-west-1")
        assert env["AWS_DEFAULT_REGION"] == "us-west-1"
        assert aws.create_bucket("course-bucket", env) == "s3://course-bucket"
        assert aws.create_bucket("course-bucket", env) == "s3://course-bucket"  # idempotent
        role = aws.prepare_sagemaker(env)
        assert role == aws.prepare_sagemaker(env) and role.endswith(f":role/{aws.EXECUTION_ROLE}")
        assert aws.deployment_status("deployment1", env) == "missing"
        # An endpoint as `mlflow deployments create` leaves it: model archive in S3, model, config, endpoint.
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w:gz") as tar:
            data = b"artifact_path: model\nflavors: {}\n"
            info = tarfile.TarInfo("MLmodel")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        s3 = aws.boto_client("s3", env)
        s3.put_object(
            Bucket="course-bucket", Key="deployment1/model.tar.gz", Body=archive.getvalue()
        )
        sagemaker = aws.boto_client("sagemaker", env)
        sagemaker.create_model(
            ModelName="m1",
            ExecutionRoleArn=role,
            PrimaryContainer={
                "Image": f"{aws.ACCOUNT}.dkr.ecr.us-west-1.amazonaws.com/{aws.IMAGE_REPOSITORY}:1",
                "ModelDataUrl": "s3://course-bucket/deployment1/model.tar.gz",
            },
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName="c1",
            ProductionVariants=[
                {
                    "VariantName": "v",
                    "ModelName": "m1",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        sagemaker.create_endpoint(EndpointName="deployment1", EndpointConfigName="c1")
        assert aws.deployment_status("deployment1", env) == "InService"
        folder = aws.deployment_model_dir("deployment1", env, tmp_path)
        assert (folder / "MLmodel").read_text().startswith("artifact_path")


# --- process cleanup ---------------------------------------------------------------------------

CHILD = """
import json, sys, time
from pathlib import Path
from mlops_course.runtime import servers
from mlops_course.runtime.twins import aws
d = Path(sys.argv[1])
pg = aws.start_postgres(d / "pg", log_dir=d / "logs")
moto = servers.s3_server(log_dir=d / "logs").start()
runtime = aws.runtime_server(d / "routes.json", log_dir=d / "logs").start()
(d / "pids.json").write_text(json.dumps([p.process.pid for p in (pg, moto, runtime)]))
time.sleep(300)
"""


@pytest.mark.servers
def test_twin_processes_die_with_a_killed_parent(tmp_path):
    """PostgreSQL (run as another user via setpriv), moto and the runtime twin do not outlive a
    parent that is killed outright (SIGKILL: no atexit, only the parent-death signal)."""
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)])
    try:
        deadline = time.monotonic() + 90
        while not (tmp_path / "pids.json").exists():
            assert child.poll() is None, "the child exited before its servers were ready"
            assert time.monotonic() < deadline, "the twin servers did not start within 90 s"
            time.sleep(0.3)
        pids = json.loads((tmp_path / "pids.json").read_text())
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    deadline = time.monotonic() + 15
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [
            pid
            for pid in pids
            if Path(f"/proc/{pid}").exists()
            and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()
        ]
        time.sleep(0.3)
    assert not alive, f"twin processes outlived their killed parent: {alive}"
