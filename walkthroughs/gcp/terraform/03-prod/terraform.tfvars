project_id  = "acme-mlops-prod"
prefix      = "acme"
environment = "prod"
region      = "europe-west4"
subnet_cidr = "10.30.0.0/24"
github = {
  organization = "acme"
  repo         = "fraud-mlops"
  branch       = "main"
}
labels = { team = "data-science", criticality = "high" }
