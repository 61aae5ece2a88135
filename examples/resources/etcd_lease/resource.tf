# A lease of one day. Destroying it (or changing ttl, which replaces it)
# revokes it, and etcd then deletes every key attached to it.
resource "etcd_lease" "session" {
  ttl = 86400
}

# A key that lives as long as the lease. When the lease is replaced or has
# expired, the key is replaced in the same plan.
resource "etcd_key" "registration" {
  key   = "/services/api/instance-1"
  value = "10.0.0.5:8080"
  lease = etcd_lease.session.id
}
