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
