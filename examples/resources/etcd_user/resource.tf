resource "etcd_role" "app" {
  name        = "app"
  permissions = [{ key = "/app/", prefix = true, access = "readwrite" }]
}

resource "etcd_role" "metrics_reader" {
  name        = "metrics-reader"
  permissions = [{ key = "/metrics/", prefix = true, access = "read" }]
}

# Recommended on Terraform 1.11+ and OpenTofu 1.11+: a write-only password,
# sent to etcd and never stored in the plan or state. The provider cannot
# see it change: bump password_wo_version to set a new one.
resource "etcd_user" "app" {
  name                = "app"
  password_wo         = var.app_password
  password_wo_version = 1
  roles               = [etcd_role.app.name]
}

# Any Terraform or OpenTofu version: the password is stored in the state,
# marked sensitive. When authentication is enabled, a password changed
# outside Terraform shows up as a change on the next plan.
resource "etcd_user" "ci" {
  name     = "ci"
  password = var.ci_password
  roles    = [etcd_role.app.name, etcd_role.metrics_reader.name]
}

# A user without a password that authenticates with a TLS client
# certificate whose common name (CN) is "prometheus".
resource "etcd_user" "prometheus" {
  name        = "prometheus"
  no_password = true
  roles       = [etcd_role.metrics_reader.name]
}

variable "app_password" {
  type      = string
  sensitive = true
  ephemeral = true # Terraform 1.10+/OpenTofu 1.11+: never stored anywhere
}

variable "ci_password" {
  type      = string
  sensitive = true
}
