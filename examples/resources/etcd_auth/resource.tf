# Turn on authentication and manage users, roles and keys in ONE apply.
# The order matters, and the depends_on below encode it:
#
#   1. the provider connects as root (while authentication is off, etcd
#      accepts and ignores the credentials; once it is on, the provider
#      authenticates with them);
#   2. user root, holding the role root, with the provider's password;
#   3. etcd_auth, after root: it refuses to enable authentication unless
#      root exists with the role root and the provider connects as a user
#      holding it, so the configuration cannot lock you out;
#   4. everything else after etcd_auth, so that destroy removes it while
#      root can still act, then disables authentication, then deletes root
#      (etcd refuses to delete root while authentication is on).

variable "etcd_root_password" {
  type      = string
  sensitive = true
}

provider "etcd" {
  # endpoints = ["https://10.0.0.1:2379"]  # or ETCDCTL_ENDPOINTS
  username = "root"
  password = var.etcd_root_password
  # With TLS client certificate authentication instead of a password, give
  # cert/key with CN "root", leave username/password out, and create root
  # with no_password = true.
}

resource "etcd_user" "root" {
  name     = "root"
  password = var.etcd_root_password
  roles    = ["root"]
}

resource "etcd_auth" "this" {
  depends_on = [etcd_user.root]
}

resource "etcd_role" "app" {
  name        = "app"
  permissions = [{ key = "/app/", prefix = true, access = "readwrite" }]
  depends_on  = [etcd_auth.this]
}

resource "etcd_user" "app" {
  name       = "app"
  password   = var.app_password
  roles      = [etcd_role.app.name]
  depends_on = [etcd_auth.this]
}

resource "etcd_key" "app_config" {
  key        = "/app/config"
  value      = jsonencode({ log_level = "info" })
  depends_on = [etcd_auth.this]
}

variable "app_password" {
  type      = string
  sensitive = true
}
