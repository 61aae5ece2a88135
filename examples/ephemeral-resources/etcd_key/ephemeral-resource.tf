# Ephemeral resources and write-only arguments need Terraform 1.11+ or
# OpenTofu 1.11+.
#
# Read a secret that is kept in etcd for this run only: it never enters the
# plan or the state.
ephemeral "etcd_key" "db_password" {
  key = "/secrets/db/password"
}

# Pass it on through write-only arguments, e.g. to another key or prefix
# (or to another provider's write-only argument, or a provider block).
# value_wo is never stored either; the provider keeps only a salted HMAC
# of it to notice when the key is changed outside Terraform.
resource "etcd_key" "app_db_password" {
  key              = "/app/db/password"
  value_wo         = ephemeral.etcd_key.db_password.value
  value_wo_version = 1 # change it to copy a new password
}

resource "etcd_key_prefix" "app_credentials" {
  prefix            = "/app/credentials/"
  values            = { "db/user" = "app" }
  values_wo         = { "db/password" = ephemeral.etcd_key.db_password.value }
  values_wo_version = 1
}
