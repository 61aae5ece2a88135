variable "lease_id" {
  description = "A lease ID as etcdctl prints it, e.g. from `etcdctl lease list`."
  type        = string
}

# The granted TTL and the keys attached to a lease
# (etcdctl lease timetolive --keys).
data "etcd_lease" "session" {
  id = var.lease_id
}

# Not the remaining TTL (ttl): it counts down every second, so an output or
# an argument holding it would show a change on every plan.
output "session" {
  value = {
    granted_ttl = data.etcd_lease.session.granted_ttl
    keys        = data.etcd_lease.session.keys
  }
}

# A check may use it: warn when the lease is about to expire.
check "session_alive" {
  assert {
    condition     = data.etcd_lease.session.ttl > 60
    error_message = "Lease ${var.lease_id} expires in ${data.etcd_lease.session.ttl} s."
  }
}
