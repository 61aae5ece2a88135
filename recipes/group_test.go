package recipes_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3/naming/endpoints"
	"go.etcd.io/etcd/client/v3/naming/resolver"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

func TestGroupBadInput(t *testing.T) {
	if _, err := recipes.NewGroup(nil, ""); !errors.Is(err, recipes.ErrInvalidArgument) {
		t.Fatalf("NewGroup(\"\") = %v, want ErrInvalidArgument", err)
	}
	c := testserver.Start(t, testserver.WithMembers(1))
	ctx := testCtx(t, 30*time.Second)
	g, err := recipes.NewGroup(newClient(t, c), "svc")
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(t, c, 10)
	for _, name := range []string{"", "a/b"} {
		if _, err := g.Join(ctx, s, name, nil); !errors.Is(err, recipes.ErrInvalidArgument) {
			t.Errorf("Join(%q) = %v, want ErrInvalidArgument", name, err)
		}
	}
	if _, err := g.Join(ctx, s, "x", func() {}); !errors.Is(err, recipes.ErrInvalidArgument) {
		t.Errorf("Join with unencodable metadata = %v, want ErrInvalidArgument", err)
	}
	if ms, _, err := g.Members(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("bad joins left members %v, %v", ms, err)
	}
}

// Join, rejoin on the same session, a second session's join of the same
// name, Members with its revision, Watch's events, and the key format of
// etcd's naming/endpoints, read back by an endpoints.Manager.
func TestGroupMembership(t *testing.T) {
	c := testserver.Start(t, testserver.WithMembers(3))
	ctx := testCtx(t, time.Minute)
	cli := newClient(t, c)
	g, err := recipes.NewGroup(cli, "services/api/")
	if err != nil {
		t.Fatal(err)
	}
	wctx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	events, err := g.Watch(wctx)
	if err != nil {
		t.Fatal(err)
	}
	s1, s2 := newSession(t, c, 10), newSession(t, c, 10)
	m1, err := g.Join(ctx, s1, "10.0.0.1:80", map[string]string{"zone": "a"})
	if err != nil {
		t.Fatal(err)
	}
	if m1.Name() != "10.0.0.1:80" || m1.Key() != "services/api/10.0.0.1:80" {
		t.Fatalf("membership name %q, key %q", m1.Name(), m1.Key())
	}
	if _, err := g.Join(ctx, s2, "10.0.0.1:80", nil); !errors.Is(err, recipes.ErrMemberExists) {
		t.Fatalf("second session's Join of a held name = %v, want ErrMemberExists", err)
	}
	again, err := g.Join(ctx, s1, "10.0.0.1:80", map[string]string{"zone": "b"})
	if err != nil || again.Revision() != m1.Revision() {
		t.Fatalf("rejoin on the same session = %v, %v; want the same membership", again, err)
	}
	if _, err := g.Join(ctx, s2, "10.0.0.2:80", nil); err != nil {
		t.Fatal(err)
	}
	ms, rev, err := g.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 2 || ms[0].Name != "10.0.0.1:80" || ms[0].Addr != "10.0.0.1:80" || string(ms[0].Metadata) != `{"zone":"b"}` ||
		ms[0].Lease != int64(s1.Lease()) || ms[1].Name != "10.0.0.2:80" || string(ms[1].Metadata) != "null" || rev < ms[1].Revision {
		t.Fatalf("Members = %+v at %d", ms, rev)
	}

	// etcd's endpoints manager reads the same members.
	em, err := endpoints.NewManager(cli, g.Target())
	if err != nil {
		t.Fatal(err)
	}
	// Its List is a serializable read: a member may not have applied the
	// last join yet.
	var eps endpoints.Key2EndpointMap
	for len(eps) != 2 && ctx.Err() == nil {
		if eps, err = em.List(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(eps) != 2 || eps["services/api/10.0.0.1:80"].Addr != "10.0.0.1:80" {
		t.Fatalf("endpoints.Manager lists %+v", eps)
	}
	if md, _ := json.Marshal(eps["services/api/10.0.0.1:80"].Metadata); string(md) != `{"zone":"b"}` {
		t.Fatalf("endpoints.Manager reads metadata %s", md)
	}

	if ok, err := m1.Leave(ctx); err != nil || !ok {
		t.Fatalf("Leave = %v, %v", ok, err)
	}
	if ok, err := m1.Leave(ctx); err != nil || ok {
		t.Fatalf("second Leave = %v, %v; want false", ok, err)
	}
	want := []struct {
		typ  recipes.GroupEventType
		name string
	}{
		{recipes.MemberJoined, "10.0.0.1:80"},
		{recipes.MemberUpdated, "10.0.0.1:80"},
		{recipes.MemberJoined, "10.0.0.2:80"},
		{recipes.MemberLeft, "10.0.0.1:80"},
	}
	var last int64
	for i, w := range want {
		select {
		case ev := <-events:
			if ev.Type != w.typ || ev.Member.Name != w.name || ev.Revision < last {
				t.Fatalf("event %d = %v %s at %d, want %v %s", i, ev.Type, ev.Member.Name, ev.Revision, w.typ, w.name)
			}
			last = ev.Revision
		case <-ctx.Done():
			t.Fatalf("event %d (%v %s) never came", i, w.typ, w.name)
		}
	}
	stopWatch()
	for range events {
	}
}

// A member whose process dies (its client closes without a revoke) leaves
// when its lease's TTL ends: the key is bound to that lease, and Watch
// reports the leave.
func TestGroupCrashedMemberLeaves(t *testing.T) {
	c := testserver.Start(t, testserver.WithMembers(3))
	ctx := testCtx(t, time.Minute)
	g, err := recipes.NewGroup(newClient(t, c), "crashy")
	if err != nil {
		t.Fatal(err)
	}
	events, err := g.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	crashCli := newClient(t, c)
	const ttl = 2
	s := sessionOn(t, crashCli, ttl)
	m, err := g.Join(ctx, s, "doomed", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-events; ev.Type != recipes.MemberJoined || ev.Member.Lease != int64(s.Lease()) {
		t.Fatalf("first event %+v, want the join bound to lease %x", ev, s.Lease())
	}
	ttlResp, err := c.Client().TimeToLive(ctx, s.Lease())
	if err != nil || ttlResp.GrantedTTL != ttl {
		t.Fatalf("member's lease: %+v, %v; want granted TTL %d", ttlResp, err, ttl)
	}
	crashed := time.Now()
	_ = crashCli.Close()
	select {
	case ev := <-events:
		if ev.Type != recipes.MemberLeft || ev.Member.Name != "doomed" {
			t.Fatalf("event after the crash %+v, want doomed left", ev)
		}
		t.Logf("crashed member left %v after the crash (TTL %ds)", time.Since(crashed), ttl)
	case <-ctx.Done():
		t.Fatal("the crashed member never left")
	}
	if ms, _, err := g.Members(ctx); err != nil || len(ms) != 0 {
		t.Fatalf("Members after the crash = %+v, %v", ms, err)
	}
	if ok, err := m.Leave(ctx); err != nil || ok {
		t.Fatalf("Leave after the lease ended = %v, %v; want false", ok, err)
	}
}

// healthServer serves the gRPC health service on a fresh port; service
// "who" answers SERVING on one server and NOT_SERVING on the other, so a
// client can tell which it reached.
func healthServer(t *testing.T, status healthpb.HealthCheckResponse_ServingStatus) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	h := health.NewServer()
	h.SetServingStatus("who", status)
	healthpb.RegisterHealthServer(srv, h)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return lis.Addr().String()
}

// A Group is a service registry etcd's gRPC resolver dials: a client of
// "etcd:///<target>" reaches the member that joined, and after it leaves
// and another joins, the other.
func TestGroupServesGRPCResolver(t *testing.T) {
	c := testserver.Start(t, testserver.WithMembers(3))
	ctx := testCtx(t, time.Minute)
	cli := newClient(t, c)
	g, err := recipes.NewGroup(cli, "services/health")
	if err != nil {
		t.Fatal(err)
	}
	first := healthServer(t, healthpb.HealthCheckResponse_SERVING)
	second := healthServer(t, healthpb.HealthCheckResponse_NOT_SERVING)
	m, err := g.Join(ctx, newSession(t, c, 10), first, map[string]string{"version": "1"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := resolver.NewBuilder(cli)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("etcd:///"+g.Target(), grpc.WithResolvers(b), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	reach := func(want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		for {
			resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: "who"}, grpc.WaitForReady(true))
			if err == nil && resp.Status == want {
				return
			}
			if ctx.Err() != nil {
				t.Fatalf("never reached the server answering %v (last: %v, %v)", want, resp, err)
			}
			time.Sleep(20 * time.Millisecond) // the resolver applies the change
		}
	}
	reach(healthpb.HealthCheckResponse_SERVING)
	if _, err := g.Join(ctx, newSession(t, c, 10), second, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	reach(healthpb.HealthCheckResponse_NOT_SERVING)
}
