package testserver_test

import (
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/goleak"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// TestNoGoroutineLeak is not parallel: goleak sees every goroutine of the
// process, and parallel tests only start after the sequential ones ended.
func TestNoGoroutineLeak(t *testing.T) {
	ctx := testCtx(t)

	c, err := testserver.New(ctx, testserver.WithTLS(), testserver.WithAuth(), testserver.WithClientProxies())
	if err != nil {
		t.Fatal(err)
	}
	// Exercise what starts goroutines: watches and keep-alive streams left
	// open, proxied connections, a stop and restart, a partition.
	cli := c.Client()
	cli.Watch(ctx, "w")
	s, err := concurrency.NewSession(cli)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	name := c.Members()[1].Name
	proxied := memberClient(t, c, c.ProxyEndpoint(name))
	mustGet(ctx, t, proxied, "k", "v")
	if err := c.StopMember(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := c.RestartMember(ctx, name); err != nil {
		t.Fatal(err)
	}
	if err := c.Partition(name); err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeLease(ctx, s.Lease()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.Done():
	case <-ctx.Done():
		t.Fatal("session survived RevokeLease")
	}
	proxied.Close()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// The goroutines of closed connections and servers end on their own
	// schedule; goleak's own retries last under half a second, too short
	// on a busy machine. Wait for the leaks to go, and fail only on those
	// still there a minute after Close.
	deadline := time.Now().Add(time.Minute)
	for {
		err := goleak.Find()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
