package recipes

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// Helpers for the tests of the locks and elections.

// testCtx returns a context that ends with the test or after d.
func testCtx(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

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
	s, err := concurrency.NewSession(newClient(t, c), concurrency.WithTTL(ttl))
	if err != nil {
		t.Fatalf("new session: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// closed reports whether ch is closed within d.
func closedWithin(ch <-chan struct{}, d time.Duration) bool {
	select {
	case <-ch:
		return true
	case <-time.After(d):
		return false
	}
}

func TestNormalizePrefix(t *testing.T) {
	for in, want := range map[string]string{"a": "a/", "a/": "a/", "a//": "a/", "/x/y": "/x/y/"} {
		got, err := normalizePrefix(in)
		if err != nil || got != want {
			t.Errorf("normalizePrefix(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "/", "//"} {
		if _, err := normalizePrefix(in); err == nil {
			t.Errorf("normalizePrefix(%q) succeeded, want ErrInvalidArgument", in)
		}
	}
}
