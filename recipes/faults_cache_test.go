package recipes_test

// The fault-injection suite of Cache. Three caches, each on a client
// pinned to one member's proxy, follow a prefix that three writers change
// (puts, deletes, multi-key transactions) while chaos injects faults and a
// compactor keeps compacting the history, so that caches cut off by a
// fault must re-read. The checks:
//
//   - at every checkpoint, a cache's contents equal a linearizable Get of
//     the prefix at the cache's own revision (checkpoints whose revision
//     was compacted meanwhile are counted as skipped);
//   - a replica built only from a cache's events never sees an impossible
//     step (an add of a key it holds, an update or delete of one it does
//     not, an update whose Prev is not what it holds, a revision going
//     back), and at the end equals the cache and etcd: no event was lost
//     or invented across compactions and restarts.
//
// Short mode runs ~12 s; RECIPES_LONG=1 runs until 10,000 writes and
// checkpoints, and at least chaos.LongAtLeast.

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/recipes/internal/chaos"
)

// cacheReplica applies a cache's events to a map of its own.
type cacheReplica struct {
	env    *chaos.Env
	name   string
	mu     sync.Mutex
	kvs    map[string]recipes.CachedKV
	rev    int64
	events atomic.Int64
}

func (r *cacheReplica) handle(ev recipes.CacheEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events.Add(1)
	if ev.Revision < r.rev {
		r.env.Violation("%s: event at revision %d after one at %d", r.name, ev.Revision, r.rev)
	}
	r.rev = ev.Revision
	old, had := r.kvs[ev.KV.Key]
	switch ev.Type {
	case recipes.CacheAdd:
		if had {
			r.env.Violation("%s: add of %s, held as %+v", r.name, ev.KV.Key, old)
		}
		r.kvs[ev.KV.Key] = ev.KV
	case recipes.CacheUpdate:
		if !had || old != ev.Prev {
			r.env.Violation("%s: update of %s with prev %+v, held %+v (%v)", r.name, ev.KV.Key, ev.Prev, old, had)
		}
		r.kvs[ev.KV.Key] = ev.KV
	case recipes.CacheDelete:
		if !had || old != ev.KV {
			r.env.Violation("%s: delete of %+v, held %+v (%v)", r.name, ev.KV, old, had)
		}
		delete(r.kvs, ev.KV.Key)
	}
}

// cacheMatches compares a cache's view at rev with etcd's keys at rev.
func cacheMatches(got []recipes.CachedKV, resp *clientv3.GetResponse) error {
	if len(got) != len(resp.Kvs) {
		return fmt.Errorf("%d keys, etcd %d", len(got), len(resp.Kvs))
	}
	for i, kv := range resp.Kvs {
		g := got[i]
		if g.Key != string(kv.Key) || g.Value != string(kv.Value) || g.ModRevision != kv.ModRevision || g.CreateRevision != kv.CreateRevision || g.Version != kv.Version {
			return fmt.Errorf("key %d: %+v, etcd %v", i, g, kv)
		}
	}
	return nil
}

func TestFaultsCache(t *testing.T) {
	env := chaos.Start(t, "cache", chaos.AllFaults...)
	var target int64
	if chaos.Long() {
		target = 10_000
		env.SetDuration(20 * time.Minute)
	}
	const prefix = "chaos-cache/"
	ctx := env.Context()
	stop := env.InjectFaults()
	direct := env.Cluster.Client()

	var caches []*recipes.Cache
	var replicas []*cacheReplica
	for i := range 3 {
		w := env.Worker(i)
		r := &cacheReplica{env: env, name: fmt.Sprintf("cache on %s", w.Member), kvs: map[string]recipes.CachedKV{}}
		c, err := recipes.NewCache(w.Client, prefix, recipes.WithCacheHandler(r.handle))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		caches = append(caches, c)
		replicas = append(replicas, r)
	}

	var writes, checkpoints, skipped, compactions atomic.Int64
	done := func() bool { return ctx.Err() != nil || env.Reached(min(writes.Load(), checkpoints.Load()), target) }
	var wg sync.WaitGroup
	for i := 3; i < 6; i++ {
		w := env.Worker(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !done() {
				k := func() string { return fmt.Sprintf("%sk%02d", prefix, env.Intn(24)) }
				var ops []clientv3.Op
				switch env.Intn(4) {
				case 0:
					ops = []clientv3.Op{clientv3.OpDelete(k())}
				case 1:
					a, b := k(), k()
					if a == b {
						continue
					}
					ops = []clientv3.Op{clientv3.OpPut(a, fmt.Sprint(env.Now())), clientv3.OpDelete(b), clientv3.OpPut(prefix+"x/"+a, "")}
				default:
					ops = []clientv3.Op{clientv3.OpPut(k(), fmt.Sprint(env.Now()))}
				}
				wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := w.Client.Txn(wctx).Then(ops...).Commit()
				cancel()
				if err == nil {
					writes.Add(1)
					env.Op()
				}
			}
		}()
	}
	// The compactor: every 500 ms, compact up to the revision of 500 ms
	// before, so a cache cut off for longer must re-read.
	wg.Add(1)
	go func() {
		defer wg.Done()
		var last int64
		for !done() {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			resp, err := direct.Get(cctx, "chaos-cache-compactor")
			if err == nil && last > 0 {
				if _, err := direct.Compact(cctx, last); err == nil {
					compactions.Add(1)
				}
			}
			cancel()
			if err == nil {
				last = resp.Header.Revision
			}
			select {
			case <-ctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	// Checkpoints: a cache's view against etcd at the same revision.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !done() {
			// Paced, not a busy loop: the machine is shared.
			time.Sleep(20 * time.Millisecond)
			c := caches[env.Intn(len(caches))]
			got, rev := c.List("")
			if rev == 0 {
				continue
			}
			gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			resp, err := direct.Get(gctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev))
			cancel()
			switch {
			case errors.Is(err, rpctypes.ErrCompacted):
				skipped.Add(1)
			case err != nil:
			default:
				if err := cacheMatches(got, resp); err != nil {
					env.Violation("checkpoint at revision %d: %v", rev, err)
				}
				checkpoints.Add(1)
				env.Op()
			}
		}
	}()
	stopProgress := env.Progress(func() string {
		return fmt.Sprintf("%d writes, %d checkpoints (%d skipped), %d compactions", writes.Load(), checkpoints.Load(), skipped.Load(), compactions.Load())
	})
	wg.Wait()
	stopProgress()
	stop()

	// The end: every cache reaches the latest revision and equals etcd
	// there, and so does the replica built from its events alone.
	fctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := direct.Get(fctx, prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range caches {
		if err := c.WaitForRevision(fctx, resp.Header.Revision); err != nil {
			env.Violation("cache %d did not reach revision %d: %v", i, resp.Header.Revision, err)
			continue
		}
		c.Close() // every handler call has returned
		got, rev := c.List("")
		at, err := direct.Get(fctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(rev))
		if err != nil {
			t.Fatal(err)
		}
		if err := cacheMatches(got, at); err != nil {
			env.Violation("cache %d at the end (revision %d): %v", i, rev, err)
		}
		r := replicas[i]
		r.mu.Lock()
		held := map[string]recipes.CachedKV{}
		for _, kv := range got {
			held[kv.Key] = kv
		}
		if !maps.Equal(held, r.kvs) {
			env.Violation("%s: the replica built from its %d events differs from the cache", r.name, r.events.Load())
		}
		r.mu.Unlock()
	}
	t.Logf("cache: %d writes, %d checkpoints, %d skipped (compacted), %d compactions, events per cache %d/%d/%d",
		writes.Load(), checkpoints.Load(), skipped.Load(), compactions.Load(),
		replicas[0].events.Load(), replicas[1].events.Load(), replicas[2].events.Load())
	if checkpoints.Load() == 0 {
		t.Fatal("no checkpoint was checked")
	}
}
