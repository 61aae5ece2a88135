package membership_test

import (
	"context"
	"errors"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/membership"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/membership/membertest"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestParseID(t *testing.T) {
	for in, want := range map[string]uint64{"8e9e05c52164694d": 0x8e9e05c52164694d, "0x1a": 0x1a, " ff ": 0xff} {
		got, err := membership.ParseID(in)
		if err != nil || got != want {
			t.Errorf("ParseID(%q) = %x, %v", in, got, err)
		}
		if s := membership.FormatID(want); s == "" {
			t.Error("empty format")
		}
	}
	for _, in := range []string{"", "0", "xyz", "12345678901234567", "-1"} {
		if _, err := membership.ParseID(in); !errors.Is(err, membership.ErrInvalidID) {
			t.Errorf("ParseID(%q): %v", in, err)
		}
	}
}

func TestValidatePeerURLs(t *testing.T) {
	if err := membership.ValidatePeerURLs([]string{"https://10.0.0.1:2380", "http://[::1]:2380"}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]string{
		nil,
		{"10.0.0.1:2380"},
		{"https://10.0.0.1"},
		{"ftp://10.0.0.1:2380"},
		{"https://10.0.0.1:2380/x"},
		{"https://10.0.0.1:2380", "https://10.0.0.1:2380"},
	} {
		if err := membership.ValidatePeerURLs(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestMemberListAndHealth(t *testing.T) {
	c := testserver.Start(t)
	ctx := ctxT(t, 30*time.Second)
	cli := c.Client()
	l, err := membership.MemberList(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Members) != 3 || l.Leader != leader.ID || l.ClusterID == 0 {
		t.Fatalf("list %+v, leader %x", l, leader.ID)
	}
	leaders := 0
	for _, m := range l.Members {
		if m.IsLeader {
			leaders++
		}
		if !m.Started() || m.IsLearner || len(m.ClientURLs) != 1 {
			t.Errorf("member %+v", m)
		}
	}
	if leaders != 1 {
		t.Fatalf("%d leaders", leaders)
	}
	if m, err := membership.FindByName(ctx, cli, leader.Name); err != nil || m.ID != leader.ID || !m.IsLeader {
		t.Fatalf("by name: %+v %v", m, err)
	}
	if _, err := membership.FindByName(ctx, cli, "nope"); !errors.Is(err, membership.ErrNotFound) {
		t.Fatal(err)
	}
	if _, err := membership.FindByID(ctx, cli, 42); !errors.Is(err, membership.ErrNotFound) {
		t.Fatal(err)
	}
	h, err := membership.CheckQuorum(ctx, cli)
	if err != nil || h.HealthyVoters() != 3 || h.Leader != leader.ID {
		t.Fatalf("health %+v %v", h, err)
	}

	// One member down: still a quorum, and it is named.
	stopped := l.Members[0]
	if stopped.ID == leader.ID {
		stopped = l.Members[1]
	}
	if err := c.StopMember(ctx, stopped.Name); err != nil {
		t.Fatal(err)
	}
	h, err = membership.CheckQuorum(ctx, cli)
	if err != nil || h.HealthyVoters() != 2 {
		t.Fatalf("health with one down %+v %v", h, err)
	}
	if mh, _ := h.ByID(stopped.ID); mh.Healthy || mh.Err == nil {
		t.Fatalf("stopped member reported %+v", mh)
	}
	// Removing a healthy member now would leave 1 of 2: refused.
	var healthy uint64
	for _, m := range l.Members {
		if m.ID != stopped.ID && m.ID != leader.ID {
			healthy = m.ID
		}
	}
	err = membership.Remove(ctx, cli, healthy)
	var qe *membership.QuorumError
	if !errors.As(err, &qe) || !errors.Is(err, membership.ErrQuorum) || qe.Healthy != 1 || qe.Needed != 2 || len(qe.Unhealthy) != 1 {
		t.Fatalf("remove with a member down: %v", err)
	}
	t.Log(err)
	// Removing the dead member is fine: 2 of 2 left.
	if err := membership.Remove(ctx, cli, stopped.ID); err != nil {
		t.Fatal(err)
	}
	if err := membership.Remove(ctx, cli, stopped.ID); !errors.Is(err, membership.ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
}

// An alarm raised in the cluster (here NOSPACE, through etcd's alarm
// API) makes every member unhealthy and is named in its Alarms until it is
// disarmed.
func TestProbeReportsAlarms(t *testing.T) {
	c := testserver.Start(t)
	ctx := ctxT(t, 30*time.Second)
	cli := c.Client()
	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	mc := pb.NewMaintenanceClient(cli.ActiveConnection())
	if _, err := mc.Alarm(ctx, &pb.AlarmRequest{Action: pb.AlarmRequest_ACTIVATE, MemberID: leader.ID, Alarm: pb.AlarmType_NOSPACE}); err != nil {
		t.Fatal(err)
	}
	// probeUntil probes until every member satisfies ok: a member that has
	// not applied the alarm's raft entry yet does not report it.
	probeUntil := func(what string, ok func(membership.MemberHealth) bool) membership.Health {
		for {
			h, err := membership.Probe(ctx, cli)
			all := err == nil && len(h.Members) == 3
			for _, m := range h.Members {
				all = all && ok(m)
			}
			if all {
				return h
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: %+v, %v", what, h, err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	h := probeUntil("not every member reports the NOSPACE alarm", func(m membership.MemberHealth) bool { return len(m.Alarms) > 0 })
	for _, m := range h.Members {
		if m.Healthy || len(m.Alarms) != 1 || m.Alarms[0] != (membership.Alarm{MemberID: leader.ID, Type: "NOSPACE"}) || m.Err == nil {
			t.Errorf("member %s with a NOSPACE alarm raised: healthy %v, alarms %+v, err %v", m.Name, m.Healthy, m.Alarms, m.Err)
		}
	}
	if _, err := cli.AlarmDisarm(ctx, &clientv3.AlarmMember{MemberID: leader.ID, Alarm: pb.AlarmType_NOSPACE}); err != nil {
		t.Fatal(err)
	}
	h = probeUntil("not healthy after the disarm", func(m membership.MemberHealth) bool { return m.Healthy })
	for _, m := range h.Members {
		if len(m.Alarms) != 0 {
			t.Errorf("member %s after the disarm: alarms %+v", m.Name, m.Alarms)
		}
	}
}

func TestRemoveLeaderMovesLeadership(t *testing.T) {
	c := testserver.Start(t)
	ctx := ctxT(t, 60*time.Second)
	cli := c.Client()
	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := membership.Remove(ctx, cli, leader.ID); err != nil {
		t.Fatal(err)
	}
	t.Logf("removed the leader in %s", time.Since(begin))
	// A removed in-process member panics on the next request it serves
	// ("failed to find local ID in cluster members"): stop it at once and
	// talk to the others only.
	_ = c.StopMember(ctx, leader.Name)
	var others []string
	for _, m := range c.Members() {
		if m.ID != leader.ID {
			others = append(others, m.ClientURLs...)
		}
	}
	cli, err = clientv3.New(clientv3.Config{Endpoints: others, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	l, err := membership.MemberList(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Members) != 2 || l.Leader == 0 || l.Leader == leader.ID {
		t.Fatalf("after removal: %+v", l)
	}
	var eps []string
	for _, m := range l.Members {
		eps = append(eps, m.ClientURLs...)
	}
	rest, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer rest.Close()
	if _, err := rest.Put(ctx, "still", "writable"); err != nil {
		t.Fatal(err)
	}
}

func TestAddLearnerPromote(t *testing.T) {
	c := testserver.Start(t)
	ctx := ctxT(t, 90*time.Second)
	cli := c.Client()
	for i := range 50 {
		if _, err := cli.Put(ctx, "k"+string(rune('a'+i%26)), "v"); err != nil {
			t.Fatal(err)
		}
	}
	peer, client := membertest.FreeURL(t), membertest.FreeURL(t)
	begin := time.Now()
	m, err := membership.AddLearner(ctx, cli, []string{peer})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("learner %s added after %s", membership.FormatID(m.ID), time.Since(begin))
	if !m.IsLearner || m.Started() {
		t.Fatalf("added %+v", m)
	}
	// The same peer URL again: names the member.
	_, err = membership.AddLearner(ctx, cli, []string{peer})
	var ee *membership.ExistsError
	if !errors.As(err, &ee) || ee.Member.ID != m.ID {
		t.Fatalf("duplicate add: %v", err)
	}
	l, err := membership.MemberList(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	initial := l.InitialCluster(m.ID, "joiner")
	if len(initial) != 4 {
		t.Fatalf("initial cluster %+v", initial)
	}
	j := membertest.Join(t, "joiner", peer, client, initial)
	if _, err := membership.WaitStarted(ctx, cli, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := membership.WaitCaughtUp(ctx, cli, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := membership.Promote(ctx, cli, m.ID); err != nil {
		t.Fatal(err)
	}
	if err := membership.Promote(ctx, cli, m.ID); err != nil {
		t.Fatalf("promote again: %v", err)
	}
	t.Logf("joined and promoted after %s", time.Since(begin))
	if err := j.Ready(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	h, err := membership.CheckQuorum(ctx, cli)
	if err != nil || h.Voters() != 4 || h.HealthyVoters() != 4 {
		t.Fatalf("after promote: %+v %v", h, err)
	}
	jc, err := clientv3.New(clientv3.Config{Endpoints: []string{client}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer jc.Close()
	if r, err := jc.Get(ctx, "ka"); err != nil || len(r.Kvs) != 1 {
		t.Fatalf("read through the new member: %v %v", r, err)
	}
	// Scale back: remove it again (and stop it at once: a removed
	// in-process member panics on the next request it serves).
	if err := membership.Remove(ctx, cli, m.ID); err != nil {
		t.Fatal(err)
	}
	j.Stop()
}

func TestPromoteNotFound(t *testing.T) {
	c := testserver.Start(t)
	ctx := ctxT(t, 20*time.Second)
	if err := membership.Promote(ctx, c.Client(), 12345); !errors.Is(err, membership.ErrNotFound) {
		t.Fatal(err)
	}
	if err := membership.Remove(ctx, c.Client(), 12345); !errors.Is(err, membership.ErrNotFound) {
		t.Fatal(err)
	}
}

// TestStalledMember: a member whose connections hang (as after a power loss)
// must not stall membership calls that the client balances onto it.
func TestStalledMember(t *testing.T) {
	c := testserver.Start(t, testserver.WithClientProxies())
	ctx := ctxT(t, 60*time.Second)
	var eps []string
	for _, m := range c.Members() {
		eps = append(eps, c.ProxyEndpoint(m.Name))
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := membership.MemberList(ctx, cli); err != nil { // every connection up
		t.Fatal(err)
	}
	stalled := c.Members()[0]
	if err := c.Blackhole(stalled.Name); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Unblackhole(stalled.Name) }()
	begin := time.Now()
	for range 6 {
		one := time.Now()
		l, err := membership.MemberList(ctx, cli)
		if err != nil {
			t.Fatal(err)
		}
		if len(l.Members) != 3 || l.Leader == 0 {
			t.Fatalf("list %+v", l)
		}
		if d := time.Since(one); d > 3*time.Second {
			t.Fatalf("member list took %s with a stalled member", d)
		}
	}
	t.Logf("6 member lists with one member stalled: %s", time.Since(begin))
}
