package recipes_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// Concurrent Adds from several clients to a counter in 4 shards: none is
// lost, every shard took some, and Get sums the shards at one revision.
func TestShardedCounterAdds(t *testing.T) {
	c := testserver.Start(t, testserver.WithMembers(3))
	ctx := testCtx(t, 60*time.Second)
	const clients, adds, shards = 4, 50, 4
	var wg sync.WaitGroup
	for range clients {
		sc, err := recipes.NewShardedCounter(newClient(t, c), "hits", shards)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range adds {
				if err := sc.Add(ctx, 2); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	sc, err := recipes.NewShardedCounter(c.Client(), "hits", shards)
	if err != nil {
		t.Fatal(err)
	}
	v, rev, err := sc.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v != 2*clients*adds {
		t.Fatalf("sum = %d, want %d", v, 2*clients*adds)
	}
	resp, err := c.Client().Get(ctx, "hits/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != shards {
		t.Errorf("%d shard keys written, want %d (Adds should spread)", len(resp.Kvs), shards)
	}
	if rev < resp.Kvs[0].ModRevision {
		t.Errorf("Get's revision %d is older than a shard's write", rev)
	}
}

func TestShardedCounterBadInput(t *testing.T) {
	if _, err := recipes.NewShardedCounter(nil, "", 2); !errors.Is(err, recipes.ErrInvalidArgument) {
		t.Fatalf("empty prefix = %v, want ErrInvalidArgument", err)
	}
	if _, err := recipes.NewShardedCounter(nil, "p", 0); !errors.Is(err, recipes.ErrInvalidArgument) {
		t.Fatalf("n=0 = %v, want ErrInvalidArgument", err)
	}
	c := testserver.Start(t, testserver.WithMembers(1))
	ctx := testCtx(t, 30*time.Second)
	cli := newClient(t, c)
	if _, err := cli.Put(ctx, "bad/1", "x"); err != nil {
		t.Fatal(err)
	}
	sc, err := recipes.NewShardedCounter(cli, "bad", 2)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := sc.Get(ctx); !errors.Is(err, recipes.ErrNotNumber) {
		t.Fatalf("Get over a shard holding %q = %v, want ErrNotNumber", "x", err)
	}
}
