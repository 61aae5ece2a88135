// Package memberhost is one etcd member on a machine reached over SSH: where
// its files go (Layout), the service that runs it, its certificates and its
// data dir. Both etcd_cluster (package cluster, which runs many such members
// in parallel and rolls changes through them) and etcd_member (Host, one
// member that joins an existing cluster) take these from here, so a member
// looks the same on its machine whichever resource put it there.
//
// Nothing here talks to etcd: changing the member list (add, promote,
// remove) is package membership, which speaks clientv3 only.
//
// What goes where on the machine:
//
//	<install_dir>/bin/terraform-provider-etcd  uploaded binary (unless a remote binary runs)
//	<install_dir>/etc/etcd.yaml                the member's etcd config file
//	<install_dir>/pki/                         CA, server and peer certificates (TLS)
//	<install_dir>/run/                         pid and log files (process manager)
//	<data_dir>                                 etcd's data; never wiped unless asked
//
// Host joins a member to an existing cluster: it checks that the data dir is
// clean, uploads the binary, certificates and an etcd config file
// (initial-cluster from the live member list, initial-cluster-state
// "existing"), and starts, stops or removes the member's service with
// internal/node.
package memberhost
