# A 3-node etcd cluster with generated TLS, and a provider wired to it that
# writes a key in the same apply.

variable "ssh_private_key" {
  type      = string
  sensitive = true
}

variable "ssh_host_keys" {
  description = "The nodes' host keys, e.g. the output of: ssh-keyscan 10.0.0.1 10.0.0.2 10.0.0.3"
  type        = string
}

resource "etcd_cluster" "main" {
  name = "main"

  ssh = {
    user        = "root"
    private_key = var.ssh_private_key
    host_key    = var.ssh_host_keys
  }

  nodes = [
    { name = "etcd-1", host = "10.0.0.1" },
    { name = "etcd-2", host = "10.0.0.2" },
    { name = "etcd-3", host = "10.0.0.3" },
  ]

  tls = { auto = true }

  settings = {
    "snapshot-count"      = "10000"
    "quota-backend-bytes" = "8589934592"
  }

  # A snapshot every hour on the leader's node, the newest 48 kept, each
  # copied off the node.
  backup = {
    dir          = "/var/backups/etcd"
    interval     = "1h"
    keep         = 48
    copy_command = "rclone copy \"$1\" offsite:etcd-backups/ && rclone copy \"$ETCD_BACKUP_SHA256_FILE\" offsite:etcd-backups/"
  }

  # Keep one hour of history (the defaults, shown here).
  auto_compaction_mode      = "periodic"
  auto_compaction_retention = "1h"

  # Defragment, at each apply, the members whose database file is more than
  # 30% free or has more than 512 MiB free, one at a time, the leader last;
  # the plan names them. Disarms NOSPACE once space is freed.
  maintenance = {
    defragment_when_free_over       = "30%"
    defragment_when_free_bytes_over = "512MiB"
  }
}

# The only configured etcd provider: it reaches the cluster above. The
# cluster itself needs no provider settings (it works over SSH).
provider "etcd" {
  alias     = "main"
  endpoints = etcd_cluster.main.endpoints
  ca_cert   = etcd_cluster.main.ca_cert_pem
  cert      = etcd_cluster.main.client_cert_pem
  key       = etcd_cluster.main.client_key_pem
}

resource "etcd_key" "hello" {
  provider = etcd.main
  key      = "/hello"
  value    = "world"
}

output "endpoints" {
  value = etcd_cluster.main.endpoints
}
