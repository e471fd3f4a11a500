# The environment's outputs: the same file in 01-dev, 02-staging and 03-prod (one Terraform
# root per environment, see main.tf); tests/test_gcp.py keeps the copies identical.

output "pipeline_root" {
  description = "Pipeline root for Vertex AI Pipelines."
  value       = "gs://${google_storage_bucket.artifacts.name}/pipeline-root"
}

output "bigquery_dataset" {
  value = google_bigquery_dataset.data.dataset_id
}

output "image_repository" {
  description = "Artifact Registry path of the images."
  value       = "${var.region}-docker.pkg.dev/${var.project_id}/${google_artifact_registry_repository.images.repository_id}"
}

output "subnetwork" {
  value = google_compute_subnetwork.subnet.self_link
}

output "service_accounts" {
  value = {
    vertex   = google_service_account.vertex.email
    dataflow = google_service_account.dataflow.email
    github   = google_service_account.github.email
  }
}

output "workload_identity_provider" {
  description = "Value for google-github-actions/auth's workload_identity_provider."
  value       = google_iam_workload_identity_pool_provider.github.name
}
