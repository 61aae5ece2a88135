// Package testserver starts an in-process, replicated etcd cluster on
// loopback for tests, benchmarks and local development.
//
// Every member is a real etcd server (go.etcd.io/etcd/server/v3/embed) with
// its own data directory, raft log and client and peer listeners, so tests
// run against the same code paths a deployed cluster uses, including leader
// election, replication and authentication.
//
//	func TestSomething(t *testing.T) {
//		c := testserver.Start(t) // 3 members; stopped when the test ends
//		cli := c.Client()
//		...
//	}
//
// Options select the cluster size (WithMembers), TLS on client and peer
// traffic with client certificates (WithTLS), authentication with a root
// user (WithAuth) and where server logs go (WithLogger; discarded by
// default).
//
// # Faults
//
// A Cluster can stop, restart and kill members (StopMember, RestartMember,
// KillLeader), cut a member off from its peers (Partition, Heal), stall the
// client traffic of a member without resetting connections (ProxyEndpoint,
// Blackhole, Unblackhole) and expire a lease as if its holder had died
// (RevokeLease). Every call that waits is bounded by its context.
//
// # Ports
//
// Each member's client and peer ports are chosen by the kernel on
// 127.0.0.1 and stay reserved for the cluster's lifetime (on Linux by a
// bound socket that never listens, which the kernel then hands to nobody
// else while etcd can still listen on the port), so parallel tests, two
// clusters in one process and concurrent test processes do not collide,
// and a restarted member gets its URLs back. Peers reach each other through a
// small TCP proxy owned by the cluster, which lets a member stop in
// milliseconds instead of etcd's graceful-shutdown timeouts.
//
// # Tuning
//
// The members are tuned for tests, not for durability: no fsync, a 10ms
// heartbeat and 100ms election timeout (the values etcd's own integration
// tests use), a 256 MiB backend quota (WithQuotaBackendBytes), the cheapest
// bcrypt cost (WithBcryptCost) and no gRPC gateway. A 3-member cluster
// starts and stops in about 0.1s.
//
// # Not for production
//
// The cluster keeps everything in one temporary directory that Close
// removes, generates throw-away certificates and does not sync to disk. Use
// the provider's bundled server (or stock etcd) for real clusters.
package testserver
