# Quick start: a few keys in an etcd cluster, read back with a data source.
#
# `make demo` runs this end to end against a local 3-member cluster. By hand:
#
#   terraform-provider-etcd dev --env-file etcd.env &   # local cluster
#   . ./etcd.env                                        # once the file exists
#   tofu apply                                          # or terraform apply
#
# (with a provider built locally, point a dev_overrides CLI configuration at it;
# see the README.)

terraform {
  required_providers {
    etcd = {
      source = "terraform-etcd/etcd"
    }
  }
}

# Every provider argument falls back to the variable etcdctl reads:
# ETCDCTL_ENDPOINTS, and with TLS or auth ETCDCTL_CACERT, ETCDCTL_CERT,
# ETCDCTL_KEY and ETCDCTL_USER. So the block can stay empty.
provider "etcd" {}

variable "prefix" {
  description = "Prefix of every key this configuration writes."
  type        = string
  default     = "/quickstart"
}

# A text value.
resource "etcd_key" "greeting" {
  key   = "${var.prefix}/greeting"
  value = "hello from Terraform"
}

# Structured configuration, stored as JSON text.
resource "etcd_key" "app_config" {
  key = "${var.prefix}/app/config.json"
  value = jsonencode({
    replicas  = 3
    log_level = "info"
  })
}

# Binary data (bytes 00 01 02 ff, not valid UTF-8) goes through value_base64.
resource "etcd_key" "blob" {
  key          = "${var.prefix}/app/blob"
  value_base64 = "AAEC/w=="
}

# Read a key back from the cluster.
data "etcd_key" "greeting" {
  key = etcd_key.greeting.key
}

output "greeting" {
  description = "The greeting as read back from etcd."
  value       = data.etcd_key.greeting.value
}

output "greeting_mod_revision" {
  description = "Cluster revision at which the greeting was written."
  value       = data.etcd_key.greeting.mod_revision
}

output "blob_base64" {
  description = "The binary value, base64-encoded."
  value       = etcd_key.blob.value_base64
}

output "keys" {
  description = "Every key this configuration manages."
  value       = [etcd_key.greeting.key, etcd_key.app_config.key, etcd_key.blob.key]
}
