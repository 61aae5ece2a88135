# Import a member by its name or by its ID in hexadecimal, as
# `etcdctl member list` prints them. `node` is not imported: add it to the
# configuration to let the provider manage the member's process from then on.
terraform import etcd_member.etcd_2 etcd-2
terraform import etcd_member.etcd_2 8e9e05c52164694d
