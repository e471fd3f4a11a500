#!/usr/bin/env python3
"""CDK app: an MLflow tracking server on AWS (RDS PostgreSQL + S3 + Fargate behind a load balancer).

Synthesise offline (no AWS account, no Docker):   python app.py        (writes cdk.out/)
Deploy (needs an account, Docker and the CDK CLI): see README.md.
"""

import os

import aws_cdk as cdk
from mlflow_stack import MlflowStack

app = cdk.App()
# Environment-agnostic by default: synthesis needs no credentials and no lookups.
# `cdk deploy` with CDK_DEFAULT_ACCOUNT/REGION set (the CLI sets them) pins the stack to that account.
account = os.environ.get("CDK_DEFAULT_ACCOUNT")
region = os.environ.get("CDK_DEFAULT_REGION")
env = cdk.Environment(account=account, region=region) if account and region else None
MlflowStack(app, "MLflowStack", env=env)
app.synth()
