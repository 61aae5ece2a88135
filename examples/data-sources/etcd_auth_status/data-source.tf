data "etcd_auth_status" "this" {}

output "auth_enabled" {
  value = data.etcd_auth_status.this.enabled
}

# Increases with every change to users, roles and permissions.
output "auth_revision" {
  value = data.etcd_auth_status.this.auth_revision
}
