package recipes_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// The helpers every test of the package shares. The fault suite brings
// its own clients and sessions (recipes/internal/chaos).

// testCtx returns a context that ends with the test. It guards against a
// hang, never against slowness: on a busy machine a test may take many
// times d (what it takes on a quiet one), so the context lasts at least d
// and otherwise until shortly before the test binary's own deadline
// (go test -timeout), where a hang still fails the test with a message
// rather than the timeout's panic.
func testCtx(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	end := time.Now().Add(d)
	if dt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if deadline, ok := dt.Deadline(); ok && deadline.Add(-hangMargin).After(end) {
			end = deadline.Add(-hangMargin)
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), end)
	t.Cleanup(cancel)
	return ctx
}

// hangMargin is how long before the binary's deadline testCtx's context
// ends: time for the test to fail and clean up.
const hangMargin = 30 * time.Second

// newClient returns a new client of c, closed when the test ends.
func newClient(t testing.TB, c *testserver.Cluster) *clientv3.Client {
	t.Helper()
	cli, err := c.NewClient(clientv3.Config{DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// newSession returns a session with the given TTL (seconds) on its own
// client, closed when the test ends.
func newSession(t testing.TB, c *testserver.Cluster, ttl int) *concurrency.Session {
	t.Helper()
	return sessionOn(t, newClient(t, c), ttl)
}

// sessionOn returns a session with the given TTL (seconds) on cli, closed
// when the test ends.
func sessionOn(t testing.TB, cli *clientv3.Client, ttl int) *concurrency.Session {
	t.Helper()
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(ttl))
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// closedWithin reports whether ch is closed within d.
func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

// waitForKeys waits until exactly n keys exist under prefix.
func waitForKeys(t *testing.T, c *testserver.Cluster, prefix string, n int64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := c.Client().Get(context.Background(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err == nil && resp.Count == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("keys under %s: %v %v, want %d", prefix, resp, err, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// lockLater calls lock in a goroutine and delivers the grant on the
// channel returned; on an error it reports it and delivers nil.
func lockLater(t testing.TB, ctx context.Context, lock func(context.Context) (*recipes.Lock, error)) <-chan *recipes.Lock {
	c := make(chan *recipes.Lock, 1)
	go func() {
		l, err := lock(ctx)
		if err != nil {
			t.Error(err)
		}
		c <- l
	}()
	return c
}
