# VPC with a private subnet; only Google health-check ranges may reach the services.
variable "name" { type = string }
variable "region" { type = string }

resource "google_compute_network" "vpc" {
  name                    = "${var.name}-vpc"
  auto_create_subnetworks = false
}

resource "google_compute_subnetwork" "private" {
  name          = "${var.name}-private"
  network       = google_compute_network.vpc.id
  region        = var.region
  ip_cidr_range = "10.10.0.0/20"
}

resource "google_compute_firewall" "health_checks" {
  name          = "${var.name}-allow-health-checks"
  network       = google_compute_network.vpc.id
  source_ranges = ["35.191.0.0/16", "130.211.0.0/22"]
  allow {
    protocol = "tcp"
    ports    = ["8080"]
  }
}

output "network_id" { value = google_compute_network.vpc.id }
