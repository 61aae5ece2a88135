package recipes

import (
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.etcd.io/etcd/client/v3/namespace"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// A client whose KV, Watcher and Lease are wrapped (here by
// clientv3/namespace) is used as it is: onceKV must not bypass the
// wrapper, or a write would land outside the namespace that every read and
// watch looks in (a Dequeue would wait forever for the item just put).
func TestAcquireThroughNamespacedClient(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	cli := newClient(t, c)
	cli.KV = namespace.NewKV(cli.KV, "ns/")
	cli.Watcher = namespace.NewWatcher(cli.Watcher, "ns/")
	cli.Lease = namespace.NewLease(cli.Lease, "ns/")
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(5))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	other := newSession(t, c, 5)

	l, err := NewMutex(s, "locks/ns").Lock(ctx)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if !strings.HasPrefix(l.Key(), "locks/ns/") {
		t.Fatalf("key %q", l.Key())
	}
	resp, err := c.Client().Get(ctx, "ns/locks/ns/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 1 {
		t.Fatalf("keys under ns/locks/ns/: %v %v, want 1", resp, err)
	}
	if _, err := NewMutex(other, "ns/locks/ns").TryLock(ctx); !errors.Is(err, ErrLocked) {
		t.Fatalf("TryLock of the namespaced lock by another client = %v, want ErrLocked", err)
	}
	if err := l.Err(); err != nil {
		t.Fatalf("Err while held: %v", err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	q := NewQueue(cli, "jobs")
	if err := q.Enqueue(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if v, err := q.Dequeue(ctx); err != nil || v != "x" {
		t.Fatalf("Dequeue = %q, %v", v, err)
	}
}
