# Vertex AI MLOps environment: project settings, network, storage, BigQuery, service accounts
# and GitHub workload identity federation. The same file in 01-dev, 02-staging and 03-prod;
# only terraform.tfvars differs. Plain google provider resources, no remote modules.
#
# Why a copy per environment and not a shared module: each environment is its own Terraform
# root with its own state, as in Google's quickstart (terraform/01-dev, 02-staging, 03-prod),
# and notebook 10 teaches them that way. tests/test_gcp.py keeps the three copies identical.

terraform {
  required_version = ">= 1.5"
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = ">= 5.0"
    }
  }
  # backend "gcs" { bucket = "<state bucket>" prefix = "vertex-mlops" }  # set per organisation
}

provider "google" {
  project = var.project_id
  region  = var.region
}

locals {
  # Naming convention: every resource is called <prefix>-<environment>-<purpose>.
  name_prefix    = "${var.prefix}-${var.environment}"
  dataset_prefix = replace(local.name_prefix, "-", "_")
  labels         = merge(var.labels, { environment = var.environment, managed_by = "terraform" })
  github_repo    = "${var.github.organization}/${var.github.repo}"
}

# ---------------------------------------------------------------- project settings

resource "google_project_service" "services" {
  for_each           = toset(var.services)
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

# ---------------------------------------------------------------- network for Vertex and Dataflow

resource "google_compute_network" "vpc" {
  name                    = "${local.name_prefix}-vpc"
  project                 = var.project_id
  auto_create_subnetworks = false
  depends_on              = [google_project_service.services]
}

resource "google_compute_subnetwork" "subnet" {
  name                     = "${local.name_prefix}-subnet"
  project                  = var.project_id
  region                   = var.region
  network                  = google_compute_network.vpc.id
  ip_cidr_range            = var.subnet_cidr
  private_ip_google_access = true
}

resource "google_compute_firewall" "internal" {
  name          = "${local.name_prefix}-allow-internal"
  project       = var.project_id
  network       = google_compute_network.vpc.name
  source_ranges = [var.subnet_cidr]
  allow {
    protocol = "tcp"
  }
  allow {
    protocol = "udp"
  }
}

# ---------------------------------------------------------------- storage

resource "google_storage_bucket" "artifacts" {
  # Pipeline root of Vertex AI Pipelines, compiled pipelines, model cards.
  name                        = "${local.name_prefix}-${var.project_id}-artifacts"
  project                     = var.project_id
  location                    = var.region
  uniform_bucket_level_access = true
  force_destroy               = var.force_destroy
  labels                      = local.labels
  versioning {
    enabled = true
  }
}

resource "google_storage_bucket" "dataflow" {
  # Staging and temporary files of the Dataflow jobs that read BigQuery.
  name                        = "${local.name_prefix}-${var.project_id}-dataflow"
  project                     = var.project_id
  location                    = var.region
  uniform_bucket_level_access = true
  force_destroy               = var.force_destroy
  labels                      = local.labels
}

resource "google_bigquery_dataset" "data" {
  dataset_id  = "${local.dataset_prefix}_${var.dataset_name}"
  project     = var.project_id
  location    = var.region
  description = "Training data of the ${var.environment} environment"
  labels      = local.labels
}

resource "google_artifact_registry_repository" "images" {
  repository_id = "${local.name_prefix}-images"
  project       = var.project_id
  location      = var.region
  format        = "DOCKER"
  description   = "CI/CD, Vertex, Dataflow and model-card images"
  labels        = local.labels
}

# ---------------------------------------------------------------- service accounts

resource "google_service_account" "vertex" {
  account_id   = "${local.name_prefix}-vertex"
  project      = var.project_id
  display_name = "Vertex AI pipelines (${var.environment})"
}

resource "google_service_account" "dataflow" {
  account_id   = "${local.name_prefix}-dataflow"
  project      = var.project_id
  display_name = "Dataflow workers (${var.environment})"
}

resource "google_service_account" "github" {
  account_id   = "${local.name_prefix}-github"
  project      = var.project_id
  display_name = "GitHub Actions (${var.environment})"
}

resource "google_project_iam_member" "vertex" {
  for_each = toset(var.vertex_roles)
  project  = var.project_id
  role     = each.value
  member   = "serviceAccount:${google_service_account.vertex.email}"
}

resource "google_project_iam_member" "dataflow" {
  for_each = toset(var.dataflow_roles)
  project  = var.project_id
  role     = each.value
  member   = "serviceAccount:${google_service_account.dataflow.email}"
}

resource "google_project_iam_member" "github" {
  for_each = toset(var.github_roles)
  project  = var.project_id
  role     = each.value
  member   = "serviceAccount:${google_service_account.github.email}"
}

# GitHub may run pipelines as the Vertex service account.
resource "google_service_account_iam_member" "github_acts_as_vertex" {
  service_account_id = google_service_account.vertex.name
  role               = "roles/iam.serviceAccountUser"
  member             = "serviceAccount:${google_service_account.github.email}"
}

# ---------------------------------------------------------------- workload identity federation

resource "google_iam_workload_identity_pool" "github" {
  workload_identity_pool_id = "${local.name_prefix}-pool"
  project                   = var.project_id
  display_name              = "GitHub (${var.environment})"
  depends_on                = [google_project_service.services]
}

resource "google_iam_workload_identity_pool_provider" "github" {
  workload_identity_pool_provider_id = "${local.name_prefix}-github"
  workload_identity_pool_id          = google_iam_workload_identity_pool.github.workload_identity_pool_id
  project                            = var.project_id
  display_name                       = "GitHub OIDC"
  attribute_mapping = {
    "google.subject"       = "assertion.sub"
    "attribute.repository" = "assertion.repository"
    "attribute.ref"        = "assertion.ref"
  }
  # Only tokens of our repository (and, outside dev, of its deployment branch) are accepted.
  attribute_condition = var.github.branch == "" ? "assertion.repository == '${local.github_repo}'" : "assertion.repository == '${local.github_repo}' && assertion.ref == 'refs/heads/${var.github.branch}'"
  oidc {
    issuer_uri = "https://token.actions.githubusercontent.com"
  }
}

resource "google_service_account_iam_member" "github_wif" {
  service_account_id = google_service_account.github.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "principalSet://iam.googleapis.com/${google_iam_workload_identity_pool.github.name}/attribute.repository/${local.github_repo}"
}
