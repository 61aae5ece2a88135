variable "lease_id" {
  description = "A lease ID as etcdctl prints it, e.g. from `etcdctl lease list`."
  type        = string
}

# The remaining TTL and the keys attached to a lease
# (etcdctl lease timetolive --keys).
data "etcd_lease" "session" {
  id = var.lease_id
}

output "session" {
  value = {
    ttl         = data.etcd_lease.session.ttl
    granted_ttl = data.etcd_lease.session.granted_ttl
    keys        = data.etcd_lease.session.keys
  }
}
