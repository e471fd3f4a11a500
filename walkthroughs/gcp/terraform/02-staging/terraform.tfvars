project_id  = "acme-mlops-staging"
prefix      = "acme"
environment = "staging"
region      = "europe-west4"
subnet_cidr = "10.20.0.0/24"
github = {
  organization = "acme"
  repo         = "fraud-mlops"
  branch       = "main"
}
labels = { team = "data-science" }
