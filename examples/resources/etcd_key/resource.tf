# A text value.
resource "etcd_key" "example" {
  key = "/app/config"
  value = jsonencode({
    log_level = "info"
    replicas  = 3
  })
}

# Binary data goes in value_base64, e.g. from filebase64("blob.bin");
# here a gzip-compressed document.
resource "etcd_key" "compressed" {
  key          = "/app/config.json.gz"
  value_base64 = base64gzip(jsonencode({ features = ["a", "b"] }))
}

# A key that etcd deletes when its lease expires. The lease ID is the
# hexadecimal ID that `etcdctl lease grant 3600` prints.
#
# resource "etcd_key" "heartbeat" {
#   key   = "/app/heartbeat"
#   value = "alive"
#   lease = "694d7c8c1f0c7a0b"
# }

# A key that a script already wrote: created with exactly this value, it is
# taken over without a write (any other value fails with the import command
# to use). keep_on_destroy leaves it in etcd when the resource is destroyed.
resource "etcd_key" "region" {
  key             = "/app/region"
  value           = "eu-west-1"
  adopt_if_equal  = true
  keep_on_destroy = true
}

# Secrets: value_wo (Terraform/OpenTofu 1.11+) is written and never stored
# in the plan or state; see the ephemeral etcd_key for an example.
#
# resource "etcd_key" "db_password" {
#   key              = "/app/db/password"
#   value_wo         = var.db_password
#   value_wo_version = 1 # change it to write a new value
# }
