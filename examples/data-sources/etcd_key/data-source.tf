# Read a key that must exist.
data "etcd_key" "endpoint" {
  key = "/services/api/endpoint"
}

# Read a key that may be missing.
data "etcd_key" "feature_flags" {
  key           = "/app/feature-flags"
  allow_missing = true
}

output "api_endpoint" {
  value = data.etcd_key.endpoint.value
}

output "feature_flags" {
  value = data.etcd_key.feature_flags.exists ? jsondecode(data.etcd_key.feature_flags.value) : {}
}
