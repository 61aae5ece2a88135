# A local development cluster, plain text.
provider "etcd" {
  endpoints = ["http://127.0.0.1:2379"]
}

# A production cluster: TLS with a client certificate, and an etcd user.
# ca_cert, cert and key take PEM content or a file path.
provider "etcd" {
  alias = "prod"

  endpoints = [
    "https://etcd-0.example.internal:2379",
    "https://etcd-1.example.internal:2379",
    "https://etcd-2.example.internal:2379",
  ]
  ca_cert  = "/etc/etcd/pki/ca.pem"
  cert     = "/etc/etcd/pki/terraform.pem"
  key      = "/etc/etcd/pki/terraform-key.pem"
  username = "terraform"
  password = var.etcd_password

  dial_timeout    = "5s"
  request_timeout = "10s"
}

variable "etcd_password" {
  type      = string
  sensitive = true
}

# Or configure nothing in the block and export the variables etcdctl reads:
#   export ETCDCTL_ENDPOINTS=https://etcd-0.example.internal:2379
#   export ETCDCTL_CACERT=/etc/etcd/pki/ca.pem ETCDCTL_USER=terraform ETCDCTL_PASSWORD=...
# provider "etcd" {}
