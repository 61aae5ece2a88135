// Package cluster stands up and runs an etcd cluster on machines reached over
// SSH: it plans one member per node (URLs, directories, certificates, one
// etcd config file each), uploads the binary and the files to every node in
// parallel, starts the members as services, and waits until every member is
// healthy and a leader is elected. On a running cluster it converges instead:
// it joins missing nodes one at a time (learner, caught up, promoted), restarts
// members whose files changed one at a time with a quorum check before each
// step, and removes members the spec no longer lists.
//
// It is the plain-Go core of the etcd_cluster resource and knows nothing
// about Terraform. Errors name the node they are about (*NodeError), and a
// Spec is checked completely (Validate) before any node is touched.
//
// Each member is laid out on its node as package memberhost says (Layout:
// binary, config file, certificates, run dir, data dir), the same as a
// member of etcd_member; the data dir is kept on Destroy unless wiped.
//
// The config file is etcd's own format, so the bundled server
// (`terraform-provider-etcd server --config-file F`) and a stock
// `etcd --config-file F` run from the same file.
package cluster
