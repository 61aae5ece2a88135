# Every key under a prefix (etcdctl get --prefix /services/).
data "etcd_keys" "services" {
  prefix = "/services/"
}

output "service_endpoints" {
  value = { for kv in data.etcd_keys.services.keys : kv.key => kv.value }
}

# A key range with options: the first 10 keys from /logs/2024 to /logs/2025,
# without values, as they were at revision 1.
data "etcd_keys" "logs" {
  key       = "/logs/2024"
  range_end = "/logs/2025"
  limit     = 10
  keys_only = true
  revision  = 1
}

output "log_keys" {
  value = data.etcd_keys.logs.keys[*].key
}
