data "etcd_role" "app" {
  name = "app"
}

# Each permission: key, range_end or prefix, and access.
output "app_permissions" {
  value = data.etcd_role.app.permissions
}

# e.g. the key prefixes the role may write to.
output "app_writable_prefixes" {
  value = [for p in data.etcd_role.app.permissions : p.key if p.prefix == true && p.access != "read"]
}
