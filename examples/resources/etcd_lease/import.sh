# Import a lease by its hexadecimal ID, as `etcdctl lease grant` and
# `etcdctl lease list` print it. ttl is set to the lease's granted TTL.
terraform import etcd_lease.session 694d7c8c1f0c7a0b

# With Terraform or OpenTofu 1.12+, an import block can name it by its
# resource identity instead of the ID:
#
#   import {
#     to       = etcd_lease.session
#     identity = { id = "694d7c8c1f0c7a0b" }
#   }
