package recipes_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// eventLog records a cache's events.
type eventLog struct {
	mu    sync.Mutex
	evs   []recipes.CacheEvent
	added chan struct{} // closed and replaced at every event
}

func (l *eventLog) add(ev recipes.CacheEvent) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	if l.added != nil {
		close(l.added)
		l.added = nil
	}
	l.mu.Unlock()
}

// waitSince waits until n events are recorded from index i on and
// returns every event recorded from i. A cache runs its handlers after
// the change is visible, so WaitForRevision can return before them.
func (l *eventLog) waitSince(t *testing.T, ctx context.Context, i, n int) []recipes.CacheEvent {
	t.Helper()
	for {
		l.mu.Lock()
		if len(l.evs)-i >= n {
			got := slices.Clone(l.evs[i:])
			l.mu.Unlock()
			return got
		}
		if l.added == nil {
			l.added = make(chan struct{})
		}
		ch := l.added
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			t.Fatalf("waiting for %d events: %d so far: %v", n, len(l.since(i)), describeEvents(l.since(i)))
		}
	}
}

// since returns the events recorded from index i on.
func (l *eventLog) since(i int) []recipes.CacheEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs[i:])
}

func (l *eventLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.evs)
}

func describeEvents(evs []recipes.CacheEvent) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, fmt.Sprintf("%s %s=%s", ev.Type, ev.KV.Key, ev.KV.Value))
	}
	return out
}

// checkCacheAt compares the cache's contents with a linearizable read of
// its prefix at the cache's own revision.
func checkCacheAt(t *testing.T, ctx context.Context, cli *clientv3.Client, c *recipes.Cache) int64 {
	t.Helper()
	got, rev := c.List("")
	resp, err := cli.Get(ctx, c.Prefix(), clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		t.Fatalf("get at %d: %v", rev, err)
	}
	if len(got) != len(resp.Kvs) {
		t.Fatalf("cache at %d holds %d keys, etcd %d", rev, len(got), len(resp.Kvs))
	}
	for i, kv := range resp.Kvs {
		g := got[i]
		if g.Key != string(kv.Key) || g.Value != string(kv.Value) || g.ModRevision != kv.ModRevision || g.CreateRevision != kv.CreateRevision || g.Version != kv.Version || g.Lease != kv.Lease {
			t.Fatalf("cache at %d: %+v, etcd %v", rev, g, kv)
		}
	}
	return rev
}

func TestCacheEmptyPrefix(t *testing.T) {
	for _, p := range []string{"", "/"} {
		if _, err := recipes.NewCache(nil, p); !errors.Is(err, recipes.ErrInvalidArgument) {
			t.Errorf("NewCache(%q) = %v, want ErrInvalidArgument", p, err)
		}
	}
}

// The cache follows puts, updates, deletes and multi-key transactions, in
// revision order, each labelled with its revision; after each write,
// WaitForRevision with the write's revision makes the write visible, and
// the cache equals etcd at the cache's revision. A write outside the
// prefix is waited for through a progress notice.
func TestCacheFollowsWrites(t *testing.T) {
	c := testserver.Start(t, testserver.WithMembers(3))
	ctx := testCtx(t, time.Minute)
	cli := newClient(t, c)
	if _, err := cli.Put(ctx, "cfg/a", "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctx, "cfgX", "not under cfg/"); err != nil {
		t.Fatal(err)
	}
	var log eventLog
	cache, err := recipes.NewCache(newClient(t, c), "cfg", recipes.WithCacheHandler(log.add))
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	if err := cache.WaitForRevision(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if !cache.Synced() {
		t.Fatal("not synced after the first read")
	}
	if kv, rev, ok := cache.Get("cfg/a"); !ok || kv.Value != "1" || rev < kv.ModRevision {
		t.Fatalf("Get(cfg/a) = %+v, %d, %v", kv, rev, ok)
	}
	if _, _, ok := cache.Get("cfgX"); ok {
		t.Fatal("a key outside the prefix is cached")
	}
	checkCacheAt(t, ctx, cli, cache)
	if got := describeEvents(log.waitSince(t, ctx, 0, 1)); !slices.Equal(got, []string{"add cfg/a=1"}) {
		t.Fatalf("first read: events %v, want [add cfg/a=1]", got)
	}

	writes := []func() (*clientv3.TxnResponse, error){
		func() (*clientv3.TxnResponse, error) { return cli.Txn(ctx).Then(clientv3.OpPut("cfg/b", "2")).Commit() },
		func() (*clientv3.TxnResponse, error) {
			return cli.Txn(ctx).Then(clientv3.OpPut("cfg/a", "1b")).Commit()
		},
		func() (*clientv3.TxnResponse, error) {
			return cli.Txn(ctx).Then(clientv3.OpPut("cfg/c", "3"), clientv3.OpDelete("cfg/b"), clientv3.OpPut("cfgY", "y")).Commit()
		},
		func() (*clientv3.TxnResponse, error) {
			return cli.Txn(ctx).Then(clientv3.OpPut("elsewhere", "x")).Commit()
		},
		func() (*clientv3.TxnResponse, error) {
			return cli.Txn(ctx).Then(clientv3.OpDelete("cfg/", clientv3.WithPrefix())).Commit()
		},
	}
	want := [][]string{
		{"add cfg/b=2"},
		{"update cfg/a=1b"},
		{"add cfg/c=3", "delete cfg/b=2"},
		nil,
		{"delete cfg/a=1b", "delete cfg/c=3"},
	}
	for i, w := range writes {
		from := log.len()
		resp, err := w()
		if err != nil {
			t.Fatal(err)
		}
		rev := resp.Header.Revision
		if err := cache.WaitForRevision(ctx, rev); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		if got := cache.Revision(); got < rev {
			t.Fatalf("write %d: revision %d after waiting for %d", i, got, rev)
		}
		got := log.waitSince(t, ctx, from, len(want[i]))
		if !slices.Equal(describeEvents(got), want[i]) {
			t.Fatalf("write %d: events %v, want %v", i, describeEvents(got), want[i])
		}
		for _, ev := range got {
			if ev.Revision != rev {
				t.Fatalf("write %d: event %v at revision %d, want %d", i, describeEvents([]recipes.CacheEvent{ev}), ev.Revision, rev)
			}
		}
		checkCacheAt(t, ctx, cli, cache)
	}
	if n, _ := cache.Len(); n != 0 {
		t.Fatalf("Len = %d after deleting everything", n)
	}
	// Handlers run in revision order: once a last write's event is in,
	// any late event of the writes above would be too.
	from := log.len()
	if _, err := cli.Put(ctx, "cfg/last", "z"); err != nil {
		t.Fatal(err)
	}
	if got := describeEvents(log.waitSince(t, ctx, from, 1)); !slices.Equal(got, []string{"add cfg/last=z"}) {
		t.Fatalf("after the writes: events %v, want only the last write's add", got)
	}
	cache.Close()
	if err := cache.WaitForRevision(ctx, cache.Revision()+1000); !errors.Is(err, recipes.ErrClosed) {
		t.Fatalf("WaitForRevision on a closed cache = %v, want ErrClosed", err)
	}
}

// clientOnMember returns a client that reaches only member m.
func clientOnMember(t *testing.T, c *testserver.Cluster, m testserver.Member) *clientv3.Client {
	t.Helper()
	cli, err := c.NewClient(clientv3.Config{Endpoints: m.ClientURLs, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// While the cache's only member is down, keys change and etcd compacts
// the history. When the member is back, the cache cannot resume its watch:
// it reads the prefix again and delivers exactly the difference (an
// update, a delete and an add at the read's revision), no event for the
// key that did not change, and no delete-and-add for the updated one.
// Then a plain restart (no compaction) is resumed without a re-read: the
// events keep their own revisions.
func TestCacheCompactionDeliversDiff(t *testing.T) {
	c := testserver.Start(t, testserver.WithMembers(3))
	ctx := testCtx(t, 2*time.Minute)
	m := c.Members()[0]
	other := clientOnMember(t, c, c.Members()[1])
	for k, v := range map[string]string{"d/same": "s", "d/upd": "1", "d/del": "x"} {
		if _, err := other.Put(ctx, k, v); err != nil {
			t.Fatal(err)
		}
	}
	var log eventLog
	cache, err := recipes.NewCache(clientOnMember(t, c, m), "d/", recipes.WithCacheHandler(log.add))
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	if err := cache.WaitForRevision(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if got := log.waitSince(t, ctx, 0, 3); len(got) != 3 {
		t.Fatalf("first read delivered %v, want 3 adds", describeEvents(got))
	}

	if err := c.StopMember(ctx, m.Name); err != nil {
		t.Fatal(err)
	}
	from := log.len()
	if _, err := other.Put(ctx, "d/upd", "2"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Delete(ctx, "d/del"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Put(ctx, "d/add", "new"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Put(ctx, "d/upd", "3"); err != nil {
		t.Fatal(err)
	}
	resp, err := other.Put(ctx, "elsewhere", "z")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	if err := c.RestartMember(ctx, m.Name); err != nil {
		t.Fatal(err)
	}
	if err := cache.WaitForRevision(ctx, resp.Header.Revision); err != nil {
		t.Fatal(err)
	}
	want := []string{"add d/add=new", "update d/upd=3", "delete d/del=x"}
	got := log.waitSince(t, ctx, from, len(want))
	if !slices.Equal(describeEvents(got), want) {
		t.Fatalf("after compaction: events %v, want exactly %v", describeEvents(got), want)
	}
	for _, ev := range got {
		if ev.Revision != got[0].Revision || ev.Revision < resp.Header.Revision {
			t.Fatalf("diff events at revisions %d and %d, want one read's revision >= %d", got[0].Revision, ev.Revision, resp.Header.Revision)
		}
	}
	if got[1].Prev.Value != "1" {
		t.Fatalf("update's Prev = %+v, want the value the cache held (1)", got[1].Prev)
	}
	checkCacheAt(t, ctx, other, cache)

	// A restart without compaction: the watch resumes where it stopped,
	// each event at its own revision.
	if err := c.StopMember(ctx, m.Name); err != nil {
		t.Fatal(err)
	}
	from = log.len()
	r1, err := other.Put(ctx, "d/same", "s2")
	if err != nil {
		t.Fatal(err)
	}
	r2, err := other.Delete(ctx, "d/add")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RestartMember(ctx, m.Name); err != nil {
		t.Fatal(err)
	}
	if err := cache.WaitForRevision(ctx, r2.Header.Revision); err != nil {
		t.Fatal(err)
	}
	got = log.waitSince(t, ctx, from, 2)
	if !slices.Equal(describeEvents(got), []string{"update d/same=s2", "delete d/add=new"}) ||
		got[0].Revision != r1.Header.Revision || got[1].Revision != r2.Header.Revision {
		t.Fatalf("after a restart: %v at %d, %d; want the update at %d and the delete at %d",
			describeEvents(got), got[0].Revision, got[len(got)-1].Revision, r1.Header.Revision, r2.Header.Revision)
	}
	checkCacheAt(t, ctx, other, cache)
}
