# A fourth member for a running TLS cluster, started over SSH on a new
# machine on a private network, reached through a bastion. It joins as a
# learner, catches up and is promoted to a voting member in the same apply.

variable "ssh_private_key" {
  type      = string
  sensitive = true
}

variable "host_keys" {
  description = "Host keys by address, e.g. from: ssh-keyscan 10.0.0.4 10.0.0.6 bastion.example.com"
  type        = map(string)
}

variable "etcd_ca" {
  description = "The cluster's CA certificate and key (PEM), e.g. from the tls provider."
  type        = object({ cert_pem = string, key_pem = string })
  sensitive   = true
}

resource "etcd_member" "etcd_4" {
  name      = "etcd-4"
  peer_urls = ["https://10.0.0.4:2380"]

  node = {
    host = "10.0.0.4"
    ssh = {
      user            = "root"
      private_key     = var.ssh_private_key
      host_key        = var.host_keys["10.0.0.4"]
      connect_timeout = "10s"
      # Like ssh -J. The bastion logs in with the user and key above unless
      # it sets its own.
      bastion = {
        host     = "bastion.example.com"
        host_key = var.host_keys["bastion.example.com"]
      }
    }
    # Same values as the rest of the cluster.
    settings = {
      "heartbeat-interval" = "100"
      "election-timeout"   = "1000"
    }
    tls = {
      ca_cert_pem = var.etcd_ca.cert_pem
      ca_key_pem  = var.etcd_ca.key_pem
    }
  }

  # Joining includes uploading the binary and catching up with the leader:
  # allow more than the default 10m on a slow link.
  timeouts = {
    create = "30m"
  }
}

# Membership only: the provider adds the member, you start its process (with
# initial_cluster, initial-cluster-state existing and an empty data dir), and
# the next apply promotes it.
resource "etcd_member" "etcd_5" {
  name      = "etcd-5"
  peer_urls = ["https://10.0.0.5:2380"]
}

output "etcd_5_initial_cluster" {
  value = etcd_member.etcd_5.initial_cluster
}

# Replacing a dead member: import it under the address of the resource that
# will replace it, and give that resource the new machine. One apply removes
# the dead member first, then adds and starts the new one.
import {
  to = etcd_member.etcd_2
  id = "etcd-2" # member name or hex ID, as etcdctl member list shows it
}

resource "etcd_member" "etcd_2" {
  name      = "etcd-2b"
  peer_urls = ["https://10.0.0.6:2380"]

  node = {
    host = "10.0.0.6"
    ssh = {
      private_key = var.ssh_private_key
      host_key    = var.host_keys["10.0.0.6"]
    }
    tls = {
      ca_cert_pem = var.etcd_ca.cert_pem
      ca_key_pem  = var.etcd_ca.key_pem
    }
  }
}
