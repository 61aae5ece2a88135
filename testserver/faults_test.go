package testserver_test

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// eventually retries f until it succeeds or ctx ends.
func eventually(ctx context.Context, t *testing.T, what string, f func(ctx context.Context) error) {
	t.Helper()
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		err := f(rctx)
		cancel()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: %v", what, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func TestStopRestartKeepsData(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := testserver.Start(t, testserver.WithMembers(1))
	m := c.Members()[0]
	if _, err := c.Client().Put(ctx, "k", "before"); err != nil {
		t.Fatal(err)
	}
	if err := c.StopMember(ctx, m.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client().Get(shortCtx(t), "k"); err == nil {
		t.Fatal("stopped single member still serves")
	}
	if err := c.StopMember(ctx, m.Name); !errors.Is(err, testserver.ErrMemberStopped) {
		t.Fatalf("second stop: %v, want %v", err, testserver.ErrMemberStopped)
	}
	// With one member, only its own data directory can hold the key.
	if err := c.RestartMember(ctx, m.Name); err != nil {
		t.Fatal(err)
	}
	if err := c.RestartMember(ctx, m.Name); !errors.Is(err, testserver.ErrMemberRunning) {
		t.Fatalf("restart of a running member: %v, want %v", err, testserver.ErrMemberRunning)
	}
	after := c.Members()[0]
	if after.ID != m.ID || after.ClientURLs[0] != m.ClientURLs[0] || after.PeerURLs[0] != m.PeerURLs[0] {
		t.Fatalf("member changed across restart: %+v -> %+v", m, after)
	}
	mustGet(ctx, t, c.Client(), "k", "before")
}

func TestStopRestartCatchesUp(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := testserver.Start(t)
	m := c.Members()[1]
	if _, err := c.Client().Put(ctx, "k", "before"); err != nil {
		t.Fatal(err)
	}
	if err := c.StopMember(ctx, m.Name); err != nil {
		t.Fatal(err)
	}
	stopped := memberClient(t, c, m.ClientURLs[0])
	if _, err := stopped.Get(shortCtx(t), "k"); err == nil {
		t.Fatal("stopped member still serves")
	}
	// The other two are a majority.
	if _, err := c.Client().Put(ctx, "k2", "while stopped"); err != nil {
		t.Fatal(err)
	}
	if err := c.RestartMember(ctx, m.Name); err != nil {
		t.Fatal(err)
	}
	// RestartMember waited until it serves: no retry needed.
	mustGet(ctx, t, stopped, "k", "before")
	mustGet(ctx, t, stopped, "k2", "while stopped")
}

func TestKillLeader(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := testserver.Start(t)
	if _, err := c.Client().Put(ctx, "k", "before"); err != nil {
		t.Fatal(err)
	}
	old, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	killed, err := c.KillLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if killed.ID != old.ID {
		t.Fatalf("killed %s, but the leader was %s", killed.Name, old.Name)
	}
	if _, err := memberClient(t, c, killed.ClientURLs[0]).Get(shortCtx(t), "k"); err == nil {
		t.Fatal("killed leader still serves")
	}
	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if leader.ID == killed.ID {
		t.Fatalf("leader is still the killed member %s", killed.Name)
	}
	eventually(ctx, t, "write after leader change", func(ctx context.Context) error {
		_, err := c.Client().Put(ctx, "k", "after")
		return err
	})
	if err := c.RestartMember(ctx, killed.Name); err != nil {
		t.Fatal(err)
	}
	mustGet(ctx, t, memberClient(t, c, killed.ClientURLs[0]), "k", "after")
}

func TestPartition(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := testserver.Start(t)
	if _, err := c.Client().Put(ctx, "k", "before"); err != nil {
		t.Fatal(err)
	}
	// Cut off the leader: the most disruptive case.
	cut, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var majority []string
	for _, m := range c.Members() {
		if m.Name != cut.Name {
			majority = append(majority, m.ClientURLs[0])
		}
	}
	if err := c.Partition(cut.Name); err != nil {
		t.Fatal(err)
	}
	maj, err := c.NewClient(clientv3.Config{Endpoints: majority})
	if err != nil {
		t.Fatal(err)
	}
	defer maj.Close()
	eventually(ctx, t, "write through the majority", func(ctx context.Context) error {
		_, err := maj.Put(ctx, "k", "during")
		return err
	})
	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if leader.ID == cut.ID {
		t.Fatal("the partitioned member is still leader")
	}

	isolated := memberClient(t, c, cut.ClientURLs[0])
	if resp, err := isolated.Get(shortCtx(t), "k"); err == nil {
		t.Fatalf("linearizable read on the partitioned member succeeded: %v", resp.Kvs)
	}

	if err := c.Heal(cut.Name); err != nil {
		t.Fatal(err)
	}
	eventually(ctx, t, "healed member catches up", func(ctx context.Context) error {
		resp, err := isolated.Get(ctx, "k")
		if err != nil {
			return err
		}
		if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "during" {
			return errors.New("stale value")
		}
		return nil
	})
}

func TestBlackhole(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := testserver.Start(t, testserver.WithMembers(1), testserver.WithClientProxies())
	if _, err := c.Client().Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	m := c.Members()[0]
	ep := c.ProxyEndpoint(m.Name)
	if ep == "" || ep == m.ClientURLs[0] {
		t.Fatalf("ProxyEndpoint = %q, member URL %s", ep, m.ClientURLs[0])
	}
	if c.ProxyEndpoint("nope") != "" {
		t.Fatal("ProxyEndpoint of an unknown member is not empty")
	}
	viaProxy := memberClient(t, c, ep)
	mustGet(ctx, t, viaProxy, "k", "v")

	if err := c.Blackhole(m.Name); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err := viaProxy.Get(rctx, "k")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("get through blackholed proxy: %v, want %v", err, context.DeadlineExceeded)
	}
	// A new connection hangs as well.
	fresh := memberClient(t, c, ep)
	rctx, cancel = context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = fresh.Get(rctx, "k")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("get through blackholed proxy on a new connection: %v, want %v", err, context.DeadlineExceeded)
	}
	// The member itself is fine.
	mustGet(ctx, t, c.Client(), "k", "v")

	if err := c.Unblackhole(m.Name); err != nil {
		t.Fatal(err)
	}
	mustGet(ctx, t, viaProxy, "k", "v")
	mustGet(ctx, t, fresh, "k", "v")
}

func TestRevokeLease(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := testserver.Start(t)
	s, err := concurrency.NewSession(c.Client(), concurrency.WithTTL(60))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := c.Client().Put(ctx, "owned", "v", clientv3.WithLease(s.Lease())); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
		t.Fatal("session ended before the revoke")
	default:
	}
	if err := c.RevokeLease(ctx, s.Lease()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-ctx.Done():
		t.Fatal("session still alive after RevokeLease")
	}
	resp, err := c.Client().Get(ctx, "owned")
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 0 {
		t.Fatal("key attached to the revoked lease still exists")
	}
	if err := c.RevokeLease(ctx, s.Lease()); err == nil {
		t.Fatal("revoking an unknown lease succeeded")
	}
}
