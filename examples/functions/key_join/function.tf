# Provider-defined functions need Terraform 1.8+ or OpenTofu 1.7+, and the
# provider in required_providers.
terraform {
  required_providers {
    etcd = {
      source = "terraform-etcd/etcd"
    }
  }
}

variable "base" {
  type    = string
  default = "/app/" # a trailing slash or not: the result is the same
}

resource "etcd_key" "db_host" {
  key   = provider::etcd::key_join(var.base, "/db", "host") # "/app/db/host"
  value = "10.0.0.5"
}

# A trailing slash on the last part is kept: a prefix.
resource "etcd_key_prefix" "cache" {
  prefix = provider::etcd::key_join(var.base, "cache/") # "/app/cache/"
  values = { ttl = "60" }
}
