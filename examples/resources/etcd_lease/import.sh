# Import a lease by its hexadecimal ID, as `etcdctl lease grant` and
# `etcdctl lease list` print it. ttl is set to the lease's granted TTL.
terraform import etcd_lease.session 694d7c8c1f0c7a0b
