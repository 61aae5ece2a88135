variable "etcd_version" {
  description = "The etcd version the cluster runs; changing it takes a new snapshot first."
  type        = string
  default     = "3.6.4"
}

# A snapshot of the cluster's data, taken again whenever etcd_version
# changes: apply before an upgrade, and the file holds the data as it was.
# Check it with `terraform-provider-etcd snapshot status -w table FILE`.
resource "etcd_snapshot" "before_upgrade" {
  path     = "${abspath(path.root)}/etcd-before-${var.etcd_version}.db"
  triggers = { version = var.etcd_version }

  # Destroying the resource leaves the file unless this is true.
  delete_on_destroy = false
}

output "snapshot_revision" {
  value = etcd_snapshot.before_upgrade.revision
}
