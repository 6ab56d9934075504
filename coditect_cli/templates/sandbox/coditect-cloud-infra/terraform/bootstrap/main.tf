# Legacy Terraform bootstrap: the bucket holding OpenTofu state.
resource "google_storage_bucket" "state" {
  name                        = "coditect-tofu-state"
  location                    = "US"
  uniform_bucket_level_access = true
  versioning {
    enabled = true
  }
}
