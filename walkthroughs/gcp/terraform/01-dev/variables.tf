# The environment's variables: the same file in 01-dev, 02-staging and 03-prod (one Terraform
# root per environment, see main.tf); tests/test_gcp.py keeps the copies identical.

variable "project_id" {
  description = "Google Cloud project that holds the environment."
  type        = string
}

variable "prefix" {
  description = "Prefix of every resource name (<prefix>-<environment>-<purpose>)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,10}$", var.prefix))
    error_message = "The prefix is 2 to 11 lowercase letters, digits or dashes."
  }
}

variable "environment" {
  description = "dev, staging or prod."
  type        = string
  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "The environment is dev, staging or prod."
  }
}

variable "region" {
  description = "Region of the network, buckets, dataset and Vertex AI."
  type        = string
  default     = "europe-west4"
}

variable "subnet_cidr" {
  description = "IP range of the Vertex/Dataflow subnet."
  type        = string
}

variable "dataset_name" {
  description = "Suffix of the BigQuery dataset name."
  type        = string
  default     = "mlops"
}

variable "services" {
  description = "APIs enabled in the project."
  type        = list(string)
  default = [
    "aiplatform.googleapis.com",
    "artifactregistry.googleapis.com",
    "bigquery.googleapis.com",
    "cloudbuild.googleapis.com",
    "compute.googleapis.com",
    "dataflow.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "storage.googleapis.com",
    "sts.googleapis.com",
  ]
}

variable "vertex_roles" {
  description = "Project roles of the Vertex AI pipelines service account."
  type        = list(string)
  default     = ["roles/aiplatform.user", "roles/bigquery.dataEditor", "roles/bigquery.jobUser", "roles/storage.objectAdmin", "roles/dataflow.developer"]
}

variable "dataflow_roles" {
  description = "Project roles of the Dataflow workers service account."
  type        = list(string)
  default     = ["roles/dataflow.worker", "roles/bigquery.dataViewer", "roles/storage.objectAdmin"]
}

variable "github_roles" {
  description = "Project roles of the GitHub Actions service account."
  type        = list(string)
  default     = ["roles/aiplatform.user", "roles/artifactregistry.writer", "roles/cloudbuild.builds.editor", "roles/storage.admin"]
}

variable "github" {
  description = "Repository allowed to use the workload identity pool; branch empty means any branch."
  type = object({
    organization = string
    repo         = string
    branch       = string
  })
}

variable "labels" {
  description = "Labels added to every resource that takes them."
  type        = map(string)
  default     = {}
}

variable "force_destroy" {
  description = "Whether terraform destroy may delete buckets that still hold objects."
  type        = bool
  default     = false
}
