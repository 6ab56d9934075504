# Cloud SQL PostgreSQL reachable only on the private network.
variable "name" { type = string }
variable "region" { type = string }
variable "network_id" { type = string }

resource "google_sql_database_instance" "main" {
  name             = "${var.name}-postgres"
  database_version = "POSTGRES_15"
  region           = var.region
  settings {
    tier = "db-f1-micro"
    ip_configuration {
      ipv4_enabled    = false
      private_network = var.network_id
    }
  }
}

output "connection_name" { value = google_sql_database_instance.main.connection_name }
