// Package backup is etcd_cluster's scheduled backups: a job that runs on a
// member's node, takes a snapshot of the local member through the client
// API (package snapshot, etcd's own libraries), names it with the time and
// revision, writes a sha256 sidecar, deletes all but the newest Keep
// backups and runs an optional copy command for an off-node copy; and the
// scheduling of that job on the node (package node's services):
//
//   - with systemd, a oneshot service `<unit>.service` that runs
//     `terraform-provider-etcd backup run ...` once, and `<unit>.timer`
//     that starts it shortly after it is installed and then every interval;
//   - with the process manager, a supervised `terraform-provider-etcd backup
//     loop ...` that runs the same job at once and then every interval.
//
// In a backup dir, each backup is two files:
//
//	<prefix>-<YYYYMMDDTHHMMSSZ>-r<revision>.db          the snapshot (etcd's format, with its trailer)
//	<prefix>-<YYYYMMDDTHHMMSSZ>-r<revision>.db.sha256   "<hex>  <file name>", as sha256sum writes it
//
// The snapshot is written under a hidden temporary name and renamed once
// its sidecar exists, so a .db file that carries the pattern is complete.
// Names sort by time, which is how retention and Newest find the newest.
package backup
