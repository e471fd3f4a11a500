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
"""

from aws_cdk import (
    CfnOutput,
    CfnParameter,
    Duration,
    RemovalPolicy,
    Stack,
)
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_ecs_patterns as ecs_patterns
from aws_cdk import aws_rds as rds
from aws_cdk import aws_s3 as s3
from constructs import Construct

CONTAINER_PORT = 5000
DB_NAME = "mlflow"
DB_USER = "mlflow"


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
                },
                secrets={
                    "DB_PASSWORD": ecs.Secret.from_secrets_manager(database.secret, "password")
                },
            ),
        )
        service.target_group.configure_health_check(path="/health", healthy_http_codes="200")
        artifacts.grant_read_write(service.task_definition.task_role)
        database.connections.allow_default_port_from(service.service, "MLflow task to PostgreSQL")

        CfnOutput(
            self,
            "LoadBalancerDNS",
            value=service.load_balancer.load_balancer_dns_name,
            description="MLflow tracking URI: http://<this value>",
        )
        CfnOutput(self, "ArtifactBucketName", value=artifacts.bucket_name)
