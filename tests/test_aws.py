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


def test_cdk_template_has_the_chapters_services(synthesized):
    from aws_cdk.assertions import Match, Template

    template = Template.from_json(synthesized.template)
    template.resource_count_is("AWS::RDS::DBInstance", 1)
    template.has_resource_properties(
        "AWS::RDS::DBInstance", {"Engine": "postgres", "StorageEncrypted": True}
    )
    template.resource_count_is("AWS::SecretsManager::Secret", 1)
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
                        "Secrets": [Match.object_like({"Name": "DB_PASSWORD"})],
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
    # The database password is never written into the template.
    assert "MasterUserPassword" not in json.dumps(synthesized.template).replace(
        '"MasterUserPassword": {"Fn::Join"', ""
    ) or "resolve:secretsmanager" in json.dumps(synthesized.template)


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


def test_dockerfile_runs_the_proxied_server():
    text = (CDK_APP / "container" / "Dockerfile").read_text()
    for needle in (
        "mlflow server",
        "psycopg2",
        "boto3",
        "--artifacts-destination",
        "--host 0.0.0.0",
        "--backend-store-uri",
    ):
        assert needle in text, f"the Dockerfile should contain {needle!r}"


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
