package testserver_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// testCtx bounds one test's waiting, generously: every wait in these
// tests is for a condition, and a busy machine may take long to meet it.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// memberClient is a client that talks to one endpoint only.
func memberClient(t *testing.T, c *testserver.Cluster, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := c.NewClient(clientv3.Config{Endpoints: []string{endpoint}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// mustGet reads key through cli and fails the test unless it has value.
func mustGet(ctx context.Context, t *testing.T, cli *clientv3.Client, key, value string) {
	t.Helper()
	resp, err := cli.Get(ctx, key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != value {
		t.Fatalf("get %s = %v, want %q", key, resp.Kvs, value)
	}
}

func TestStartSizes(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			ctx := testCtx(t)
			c := testserver.Start(t, testserver.WithMembers(n))

			members := c.Members()
			if len(members) != n || len(c.Endpoints()) != n {
				t.Fatalf("members %v endpoints %v, want %d", members, c.Endpoints(), n)
			}
			ids := map[uint64]bool{}
			for i, m := range members {
				if m.ID == 0 || ids[m.ID] {
					t.Errorf("member %d: bad or duplicate ID %x", i, m.ID)
				}
				ids[m.ID] = true
				if len(m.ClientURLs) != 1 || m.ClientURLs[0] != c.Endpoints()[i] || !strings.HasPrefix(m.ClientURLs[0], "http://127.0.0.1:") {
					t.Errorf("member %d: client URLs %v, endpoints %v", i, m.ClientURLs, c.Endpoints())
				}
				if len(m.PeerURLs) != 1 || !strings.HasPrefix(m.PeerURLs[0], "http://127.0.0.1:") {
					t.Errorf("member %d: peer URLs %v", i, m.PeerURLs)
				}
			}

			// The cluster agrees on its membership.
			resp, err := c.Client().MemberList(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Members) != n {
				t.Fatalf("member list has %d members, want %d", len(resp.Members), n)
			}
			for _, m := range resp.Members {
				if !ids[m.ID] {
					t.Errorf("member list has unknown member %x", m.ID)
				}
			}

			leader, err := c.Leader(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !ids[leader.ID] {
				t.Fatalf("leader %x is not a member", leader.ID)
			}

			// A write through the shared client is visible on every member.
			if _, err := c.Client().Put(ctx, "k", "v"); err != nil {
				t.Fatal(err)
			}
			for _, ep := range c.Endpoints() {
				mustGet(ctx, t, memberClient(t, c, ep), "k", "v")
			}
		})
	}
}

func TestMembersOutOfRange(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, -1, testserver.MaxMembers + 1} {
		c, err := testserver.New(t.Context(), testserver.WithMembers(n))
		if err == nil {
			c.Close()
			t.Fatalf("WithMembers(%d): no error", n)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("WithMembers(%d)", n)) {
			t.Errorf("WithMembers(%d): error %q does not name the option", n, err)
		}
	}
}

func TestTwoClusters(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	a := testserver.Start(t)
	b := testserver.Start(t)

	seen := map[string]bool{}
	for _, c := range []*testserver.Cluster{a, b} {
		for _, m := range c.Members() {
			for _, u := range append(m.ClientURLs, m.PeerURLs...) {
				if seen[u] {
					t.Fatalf("URL %s used twice", u)
				}
				seen[u] = true
			}
		}
	}
	if _, err := a.Client().Put(ctx, "k", "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Client().Put(ctx, "k", "b"); err != nil {
		t.Fatal(err)
	}
	mustGet(ctx, t, a.Client(), "k", "a")
	mustGet(ctx, t, b.Client(), "k", "b")
}

func TestCloseIdempotent(t *testing.T) {
	t.Parallel()
	c, err := testserver.New(t.Context(), testserver.WithMembers(1), testserver.WithTLS())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.TLS().CAFile); err != nil {
		t.Fatal(err)
	}
	cli := c.Client()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if cli.Ctx().Err() == nil {
		t.Fatal("Close did not close the cluster's client")
	}
	// The files are gone (the TLS files live in the data directory).
	if _, err := os.Stat(c.TLS().CAFile); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s after Close: %v", c.TLS().CAFile, err)
	}
	for _, m := range c.Members() {
		conn, err := net.DialTimeout("tcp", strings.TrimPrefix(m.ClientURLs[0], "https://"), time.Second)
		if err == nil {
			conn.Close()
			t.Errorf("member %s still accepts connections after Close", m.Name)
		}
	}
}

func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		c, err := testserver.New(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if err := c.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestWithLogger(t *testing.T) {
	t.Parallel()
	core, logs := observer.New(zap.InfoLevel)
	testserver.Start(t, testserver.WithMembers(1), testserver.WithLogger(zap.New(core)))
	if n := logs.FilterField(zap.String("member", "m0")).Len(); n == 0 {
		t.Fatal("no server log reached the logger")
	}
}

// Fill writes size bytes of distinct 1 KiB values under the prefix, keys
// numbered from 000000000, and says how many.
func TestFill(t *testing.T) {
	c := testserver.Start(t, testserver.WithMembers(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	n, err := c.Fill(ctx, "/fill/", 300<<10+100) // not a whole number of transactions
	if err != nil || n != 300 {
		t.Fatalf("Fill: %d keys, %v; want 300", n, err)
	}
	r, err := c.Client().Get(ctx, "/fill/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, kv := range r.Kvs {
		if want := fmt.Sprintf("/fill/%09d", i); string(kv.Key) != want || len(kv.Value) != 1024 {
			t.Fatalf("key %d: %s with %d bytes, want %s with 1024", i, kv.Key, len(kv.Value), want)
		}
		seen[string(kv.Value)] = true
	}
	if len(r.Kvs) != 300 || len(seen) != 300 {
		t.Fatalf("%d keys with %d distinct values, want 300 of each", len(r.Kvs), len(seen))
	}
}
