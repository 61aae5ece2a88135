data "etcd_user" "ci" {
  name = "ci"
}

# Only roles: etcd never reveals a password, and neither does this.
output "ci_is_admin" {
  value = contains(data.etcd_user.ci.roles, "root")
}
