# Import a cluster without TLS that etcd_cluster manages elsewhere (for
# example another state) by its name (the initial-cluster-token) and one or
# more client URLs. The nodes, ports and members are read from the cluster;
# SSH settings, directories and settings come from the configuration, and the
# next apply converges the nodes on them (members whose files change restart
# one at a time). TLS clusters cannot be imported: their CA key cannot be read
# back from the cluster.
terraform import etcd_cluster.main 'main@http://10.0.0.1:2379,http://10.0.0.2:2379,http://10.0.0.3:2379'

# With Terraform or OpenTofu 1.12+, an import block can name it by its
# resource identity instead of the ID: the name and the members' client URLs.
# The identity's endpoints follow the nodes when the cluster grows or shrinks.
#
#   import {
#     to       = etcd_cluster.main
#     identity = {
#       name      = "main"
#       endpoints = ["http://10.0.0.1:2379", "http://10.0.0.2:2379", "http://10.0.0.3:2379"]
#     }
#   }
