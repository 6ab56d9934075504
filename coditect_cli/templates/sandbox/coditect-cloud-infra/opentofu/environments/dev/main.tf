# Development environment (target: under $500/month).
locals {
  name   = "coditect-dev"
  region = "us-central1"
}

module "networking" {
  source = "../../modules/networking"
  name   = local.name
  region = local.region
}

module "database" {
  source     = "../../modules/database"
  name       = local.name
  region     = local.region
  network_id = module.networking.network_id
}

module "cloud_run" {
  source = "../../modules/cloud-run"
  name   = local.name
  region = local.region
  image  = "us-docker.pkg.dev/coditect/backend/api:dev"
}
