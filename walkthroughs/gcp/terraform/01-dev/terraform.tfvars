project_id    = "acme-mlops-dev"
prefix        = "acme"
environment   = "dev"
region        = "europe-west4"
subnet_cidr   = "10.10.0.0/24"
force_destroy = true
github = {
  organization = "acme"
  repo         = "fraud-mlops"
  branch       = ""
}
labels = { team = "data-science" }
