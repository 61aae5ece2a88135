package membership

import (
	"context"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// pinned returns the Cluster API through one of cli's endpoints that answers
// now and knows a leader (all endpoints are asked at once; the first good
// answer wins), and the leader that endpoint reports.
//
// A member that died without closing its connections (power loss, a cut
// link) keeps its connection "ready" in the client's balancer until TCP gives
// up, minutes later, and every request balanced onto it hangs. Membership
// changes are exactly what an operator does while a member is dead, so they
// go through an endpoint known to answer. When none answers, or the client
// has a single endpoint, the client's own balancer is used.
func pinned(ctx context.Context, cli *clientv3.Client) (api clientv3.Cluster, leader uint64, done func()) {
	eps := cli.Endpoints()
	if len(eps) < 2 {
		return cli.Cluster, 0, func() {}
	}
	ep, leader := firstAnswer(ctx, cli, eps)
	if ep == "" {
		return cli.Cluster, 0, func() {}
	}
	conn, err := cli.Dial(ep)
	if err != nil {
		return cli.Cluster, leader, func() {}
	}
	return clientv3.NewClusterFromClusterClient(pb.NewClusterClient(conn), cli), leader, func() { conn.Close() }
}

// firstAnswer asks every endpoint for its status at once and returns the
// first that answers with a leader, and that leader.
func firstAnswer(ctx context.Context, cli *clientv3.Client, eps []string) (string, uint64) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	type answer struct {
		ep     string
		leader uint64
	}
	answers := make(chan answer, len(eps))
	for _, ep := range eps {
		go func() {
			st, err := cli.Status(ctx, ep)
			if err != nil {
				answers <- answer{}
				return
			}
			answers <- answer{ep, st.Leader}
		}()
	}
	for range eps {
		if a := <-answers; a.leader != 0 {
			return a.ep, a.leader
		}
	}
	return "", 0
}
