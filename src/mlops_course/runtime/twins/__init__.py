"""Local twins of cloud services: real servers and real artefacts on 127.0.0.1.

- AWS (notebook 08): :mod:`.aws` (the SageMaker/MLflow stack's twins), :mod:`.cdk` (the CDK
  app synthesized offline), :mod:`.sagemaker_runtime` (``InvokeEndpoint`` forwarded to a
  scoring server).
- Azure (notebook 09): :mod:`.azure` (the walkthrough's files checked, identity, the cloud),
  :mod:`.azureml` (pipeline jobs and online endpoints run locally).
- Google Cloud (notebook 10): :mod:`.gcp` (Cloud Storage and Vertex Pipelines twins, the
  cloud), :mod:`.terraform` (the environments checked), :mod:`.modelcard` (HTML model cards).
"""
