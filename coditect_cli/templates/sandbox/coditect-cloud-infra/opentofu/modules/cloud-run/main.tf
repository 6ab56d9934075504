# The backend API on Cloud Run.
variable "name" { type = string }
variable "region" { type = string }
variable "image" { type = string }

resource "google_cloud_run_v2_service" "api" {
  name     = "${var.name}-api"
  location = var.region
  template {
    containers {
      image = var.image
      ports {
        container_port = 8080
      }
    }
  }
}

output "url" { value = google_cloud_run_v2_service.api.uri }
