"""The stack of the chapter's section 9.4, written for aws-cdk-lib v2.

Services and their role for MLflow:

- VPC: two availability zones, public subnets for the load balancer, private subnets for the
  Fargate task, isolated subnets for the database.
- RDS PostgreSQL: MLflow's *backend store* (experiments, runs, params, metrics, registry).
  Its password is generated into Secrets Manager and handed to the container as a secret.
- S3 bucket: MLflow's *artifact store* (models, files). The server proxies artifact traffic
  (``--artifacts-destination``), so only the task's IAM role can read and write it.
- ECS Fargate service behind an Application Load Balancer (``ecs_patterns``): runs the MLflow
  server container built from ``container/Dockerfile`` and pushed to ECR by ``cdk deploy``.

Secured for real use (the chapter's stack was open to anyone who found the URL):

- HTTPS only: the listener uses the ACM certificate given as ``CertificateArn`` for the name
  ``DomainName``; plain HTTP is redirected to HTTPS.
- Reachable only from ``AllowedCidr`` (the campus or office network), not from the internet.
- MLflow's own authentication (``--app-name basic-auth``): every API call needs a user; the
  admin password and the session key are generated into Secrets Manager, never written in
  the template; users that are not granted a permission see nothing (``NO_PERMISSIONS``).
- ``--allowed-hosts`` is the domain name, not ``*``: requests for another host are refused.
"""

from aws_cdk import (
    CfnOutput,
    CfnParameter,
    Duration,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_ecs_patterns as ecs_patterns
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

CONTAINER_PORT = 5000
DB_NAME = "mlflow"
DB_USER = "mlflow"


def _generated_secret(
    scope: Construct, construct_id: str, description: str, length: int
) -> secretsmanager.Secret:
    """A secret Secrets Manager generates at deploy time: its value is never in the template."""
    return secretsmanager.Secret(
        scope,
        construct_id,
        description=description,
        generate_secret_string=secretsmanager.SecretStringGenerator(
            password_length=length, exclude_punctuation=True
        ),
    )


class MlflowStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)

        project = CfnParameter(
            self,
            "ProjectName",
            type="String",
            default="mlflow",
            description="Prefix of the resource names (the chapter deploys with ProjectName=mlflow).",
        )

        certificate_arn = CfnParameter(
            self,
            "CertificateArn",
            type="String",
            allowed_pattern="arn:aws[a-z-]*:acm:.+",
            description="ACM certificate of DomainName, for the load balancer's HTTPS listener.",
        )
        domain_name = CfnParameter(
            self,
            "DomainName",
            type="String",
            description="The name clients use (https://<DomainName>); a DNS record points it at "
            "the load balancer (output LoadBalancerDNS).",
        )
        allowed_cidr = CfnParameter(
            self,
            "AllowedCidr",
            type="String",
            allowed_pattern=r"(\d{1,3}\.){3}\d{1,3}/\d{1,2}",
            description="The only network that may reach the load balancer (e.g. 203.0.113.0/24).",
        )

        vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            nat_gateways=1,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24
                ),
                ec2.SubnetConfiguration(
                    name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=24
                ),
                ec2.SubnetConfiguration(
                    name="database", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED, cidr_mask=24
                ),
            ],
        )

        artifacts = s3.Bucket(
            self,
            "ArtifactBucket",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            removal_policy=RemovalPolicy.RETAIN,
        )

        db_security_group = ec2.SecurityGroup(
            self,
            "DatabaseSecurityGroup",
            vpc=vpc,
            description="PostgreSQL: reachable from the MLflow task only",
            allow_all_outbound=False,
        )
        database = rds.DatabaseInstance(
            self,
            "BackendStore",
            engine=rds.DatabaseInstanceEngine.postgres(version=rds.PostgresEngineVersion.VER_17),
            instance_type=ec2.InstanceType.of(ec2.InstanceClass.BURSTABLE3, ec2.InstanceSize.MICRO),
            vpc=vpc,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_ISOLATED),
            security_groups=[db_security_group],
            database_name=DB_NAME,
            credentials=rds.Credentials.from_generated_secret(
                DB_USER
            ),  # password in Secrets Manager
            allocated_storage=20,
            storage_encrypted=True,
            backup_retention=Duration.days(7),
            deletion_protection=False,
            removal_policy=RemovalPolicy.SNAPSHOT,
        )
        assert database.secret is not None

        # MLflow's authentication: the first start creates the admin user with this password;
        # the session key signs the UI's CSRF tokens and must be the same in every worker.
        admin_password = _generated_secret(
            self, "MlflowAdminPassword", "Password of MLflow's admin user (basic-auth app)", 32
        )
        session_key = _generated_secret(
            self, "MlflowSessionKey", "MLFLOW_FLASK_SERVER_SECRET_KEY of the basic-auth app", 48
        )

        cluster = ecs.Cluster(
            self, "Cluster", vpc=vpc, container_insights_v2=ecs.ContainerInsights.ENABLED
        )
        service = ecs_patterns.ApplicationLoadBalancedFargateService(
            self,
            "MlflowService",
            cluster=cluster,
            service_name=f"{project.value_as_string}-service",
            cpu=1024,
            memory_limit_mib=2048,
            desired_count=1,
            public_load_balancer=True,
            protocol=elbv2.ApplicationProtocol.HTTPS,
            certificate=acm.Certificate.from_certificate_arn(
                self, "Certificate", certificate_arn.value_as_string
            ),
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
            redirect_http=True,
            open_listener=False,  # no 0.0.0.0/0 rule: AllowedCidr only, below
            task_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
            task_image_options=ecs_patterns.ApplicationLoadBalancedTaskImageOptions(
                # Built from container/Dockerfile and pushed to ECR by `cdk deploy` (needs Docker then,
                # not at synthesis: synthesis only stages the folder as an asset).
                image=ecs.ContainerImage.from_asset("container"),
                container_name="mlflow",
                container_port=CONTAINER_PORT,
                environment={
                    "BUCKET": artifacts.bucket_name,
                    "DB_HOST": database.db_instance_endpoint_address,
                    "DB_PORT": database.db_instance_endpoint_port,
                    "DB_NAME": DB_NAME,
                    "DB_USER": DB_USER,
                    "PROJECT_NAME": project.value_as_string,
                    "DOMAIN_NAME": domain_name.value_as_string,
                },
                secrets={
                    "DB_PASSWORD": ecs.Secret.from_secrets_manager(database.secret, "password"),
                    "MLFLOW_AUTH_ADMIN_PASSWORD": ecs.Secret.from_secrets_manager(admin_password),
                    "MLFLOW_FLASK_SERVER_SECRET_KEY": ecs.Secret.from_secrets_manager(session_key),
                },
            ),
        )
        for port in (443, 80):  # 80 only answers with a redirect to 443
            service.load_balancer.connections.allow_from(
                ec2.Peer.ipv4(allowed_cidr.value_as_string),
                ec2.Port.tcp(port),
                f"HTTP(S) from AllowedCidr only ({port})",
            )
        service.target_group.configure_health_check(path="/health", healthy_http_codes="200")
        artifacts.grant_read_write(service.task_definition.task_role)
        database.connections.allow_default_port_from(service.service, "MLflow task to PostgreSQL")

        CfnOutput(
            self,
            "LoadBalancerDNS",
            value=service.load_balancer.load_balancer_dns_name,
            description="Point DomainName's DNS record here; tracking URI: https://<DomainName>",
        )
        CfnOutput(self, "ArtifactBucketName", value=artifacts.bucket_name)
