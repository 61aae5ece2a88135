# Provider-defined functions need Terraform 1.8+ or OpenTofu 1.7+, and the
# provider in required_providers.
terraform {
  required_providers {
    etcd = {
      source = "terraform-etcd/etcd"
    }
  }
}

output "app_range_end" {
  value = provider::etcd::prefix_range_end("/app/") # "/app0"
}

# The same keys as prefix = "/app/", written as a range.
data "etcd_keys" "app" {
  key       = "/app/"
  range_end = provider::etcd::prefix_range_end("/app/")
}
