// Package membership changes and inspects the member list of a running etcd
// cluster through an ordinary clientv3 client: list members with leader and
// learner flags, add a member (as a learner or a voter), wait for a learner
// to catch up, promote it, and remove a member without losing quorum.
//
// It is plain Go shared by the etcd_cluster and etcd_member resources and
// knows nothing about Terraform or SSH. Every call that waits is bounded by
// its context; the add, catch-up and promote loops also have a default bound
// (see the Default* constants) when the context has no deadline. Errors wrap
// the sentinels below (errors.Is) or etcd's rpctypes errors.
//
// The order for a new member follows etcd's runtime reconfiguration guide:
//
//	m, err := membership.AddLearner(ctx, cli, []string{"https://10.0.0.4:2380"})
//	list, err := membership.MemberList(ctx, cli)
//	initial := list.InitialCluster(m.ID, "node4") // for the new member's config
//	// start the member with initial-cluster-state "existing" and an empty
//	// data dir, then:
//	err = membership.WaitCaughtUp(ctx, cli, m.ID)
//	err = membership.Promote(ctx, cli, m.ID)
//
// and for removal:
//
//	err := membership.Remove(ctx, cli, id) // moves leadership away first
package membership
