package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

func openFor(t *testing.T, cfg Config) *Client {
	t.Helper()
	cfg.LookupEnv = func(string) (string, bool) { return "", false }
	s, err := cfg.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := Open(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

func (c *Client) readRequests() int { return int(c.reads.requests.Load()) }

func (c *Client) readFallbacks() int { return int(c.reads.fallbacks.Load()) }

// holdReads holds c's senders back until release is called: reads queue
// up and nothing is sent. queued is closed once n reads are waiting, so a
// test can release exactly the batch it built. Call it before the reads.
func (c *Client) holdReads(n int) (queued <-chan struct{}, release func()) {
	all, gate := make(chan struct{}), make(chan struct{})
	allQueued := sync.OnceFunc(func() { close(all) })
	c.reads.hooks = &readHooks{
		queued: func(waiting int) {
			if waiting >= n {
				allQueued()
			}
		},
		take: func() { <-gate },
	}
	return all, sync.OnceFunc(func() { close(gate) })
}

// waitQueued waits for queued (from holdReads) or fails the test at ctx's end.
func waitQueued(ctx context.Context, t *testing.T, queued <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-queued:
	case <-ctx.Done():
		t.Fatalf("%s were not queued: %v", what, ctx.Err())
	}
}

// Many concurrent reads share few requests, and each gets its own key's
// answer: value and revisions, or not found. The senders are held until
// every read is queued, so the count of requests does not depend on how
// the scheduler interleaves the readers: they go out in full batches.
func TestGetKeyConcurrentReadsShareRequests(t *testing.T) {
	cluster := testserver.Start(t, testserver.WithMembers(3))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := openFor(t, Config{Endpoints: cluster.Endpoints()})
	const n = 400
	revs := make([]int64, n)
	for i := range n {
		if i%5 == 4 {
			continue // absent
		}
		resp, err := cluster.Client().Put(ctx, fmt.Sprintf("/batch/%03d", i), fmt.Sprintf("v%d", i))
		if err != nil {
			t.Fatal(err)
		}
		revs[i] = resp.Header.Revision
	}
	before := cl.readRequests()
	queued, release := cl.holdReads(n)
	defer release()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			kv, err := cl.GetKey(ctx, fmt.Sprintf("/batch/%03d", i))
			switch {
			case i%5 == 4:
				if !errors.Is(err, ErrKeyNotFound) {
					errs <- fmt.Errorf("key %d: want not found, got %v, %v", i, kv, err)
				}
			case err != nil:
				errs <- fmt.Errorf("key %d: %v", i, err)
			case string(kv.Value) != fmt.Sprintf("v%d", i) || kv.ModRevision != revs[i] || kv.CreateRevision != revs[i] || kv.Version != 1:
				errs <- fmt.Errorf("key %d: got %+v, want value v%d at revision %d", i, kv, i, revs[i])
			}
		})
	}
	waitQueued(ctx, t, queued, fmt.Sprintf("%d concurrent reads", n))
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	sent := cl.readRequests() - before
	want := (n + maxReadBatch - 1) / maxReadBatch
	t.Logf("%d concurrent reads took %d requests", n, sent)
	if sent != want {
		t.Errorf("%d queued reads took %d requests, want %d batches of up to %d", n, sent, want, maxReadBatch)
	}
}

// A read started after a write has finished sees it, batched or not: every
// writer reads its own write back while other reads keep batches full.
func TestGetKeyReadsOwnWrites(t *testing.T) {
	cluster := testserver.Start(t, testserver.WithMembers(3))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cl := openFor(t, Config{Endpoints: cluster.Endpoints()})
	stop := make(chan struct{})
	var noise sync.WaitGroup
	for range 8 {
		noise.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, _ = cl.GetKey(ctx, "/own/noise")
			}
		})
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			key := fmt.Sprintf("/own/%d", w)
			for i := range 50 {
				// Written through another client, so only the cluster
				// orders the write before the read.
				put, err := cluster.Client().Put(ctx, key, fmt.Sprint(i))
				if err != nil {
					t.Error(err)
					return
				}
				kv, err := cl.GetKey(ctx, key)
				if err != nil || string(kv.Value) != fmt.Sprint(i) || kv.ModRevision < put.Header.Revision {
					t.Errorf("%s after writing %d at revision %d: read %+v, %v", key, i, put.Header.Revision, kv, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	noise.Wait()
}

// A batch with a key the user may not read fails as a whole on the
// server; every read then gets its own answer. The three reads are held
// until all are queued, so they always form that batch.
func TestGetKeyBatchWithDeniedKey(t *testing.T) {
	cluster := testserver.Start(t, testserver.WithMembers(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root := openFor(t, Config{Endpoints: cluster.Endpoints(), Username: "root", Password: "root-pw"})
	raw := cluster.Client()
	for _, step := range []func() error{
		func() error { _, err := raw.Put(ctx, "/open/a", "a"); return err },
		func() error { _, err := raw.Put(ctx, "/secret/b", "b"); return err },
		func() error { return root.CreateUser(ctx, "root", "root-pw", false) },
		func() error { return root.GrantRole(ctx, "root", "root") },
		func() error { return root.CreateUser(ctx, "reader", "reader-pw", false) },
		func() error { _, err := raw.RoleAdd(ctx, "open-reader"); return err },
		func() error {
			_, err := raw.RoleGrantPermission(ctx, "open-reader", "/open/", clientv3.GetPrefixRangeEnd("/open/"), clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { return root.GrantRole(ctx, "reader", "open-reader") },
		func() error { return root.EnableAuth(ctx, "root") },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	cl := openFor(t, Config{Endpoints: cluster.Endpoints(), Username: "reader", Password: "reader-pw"})
	before := cl.readRequests()
	queued, release := cl.holdReads(3)
	defer release()
	var wg sync.WaitGroup
	var openErr, secretErr, againErr error
	var openKV, againKV *KeyValue
	wg.Go(func() { openKV, openErr = cl.GetKey(ctx, "/open/a") })
	wg.Go(func() { _, secretErr = cl.GetKey(ctx, "/secret/b") })
	wg.Go(func() { againKV, againErr = cl.GetKey(ctx, "/open/a") })
	waitQueued(ctx, t, queued, "the three reads")
	release()
	wg.Wait()
	for _, r := range []struct {
		kv  *KeyValue
		err error
	}{{openKV, openErr}, {againKV, againErr}} {
		if r.err != nil || string(r.kv.Value) != "a" {
			t.Errorf("readable key: %+v, %v", r.kv, r.err)
		}
	}
	if !errors.Is(secretErr, ErrPermissionDenied) {
		t.Errorf("denied key: %v, want ErrPermissionDenied", secretErr)
	}
	if n := cl.readFallbacks(); n != 1 {
		t.Errorf("%d batches were read again one by one, want 1: the batch of three", n)
	}
	if n := cl.readRequests() - before; n != 4 {
		t.Errorf("%d requests, want 4: the batch of three, then each key alone", n)
	}
}

// A caller that gives up returns at once, and its read is not sent if it
// has not been yet: the senders are held while it gives up, and when they
// go, only the live read behind it costs a request.
func TestGetKeyCallerGivesUp(t *testing.T) {
	cluster := testserver.Start(t, testserver.WithMembers(1))
	cl := openFor(t, Config{Endpoints: cluster.Endpoints()})
	before := cl.readRequests()
	queued, release := cl.holdReads(2)
	defer release()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := cl.GetKey(ctx, "/gone"); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled read: %v", err)
	}
	live, stop := context.WithTimeout(context.Background(), time.Minute)
	defer stop()
	liveErr := make(chan error, 1)
	go func() { _, err := cl.GetKey(live, "/gone"); liveErr <- err }()
	waitQueued(live, t, queued, "the canceled and the live read")
	release()
	if err := <-liveErr; !errors.Is(err, ErrKeyNotFound) {
		t.Fatalf("read after a canceled one: %v", err)
	}
	if n := cl.readRequests() - before; n != 1 {
		t.Fatalf("%d requests, want 1: the canceled read must not be sent", n)
	}
}
