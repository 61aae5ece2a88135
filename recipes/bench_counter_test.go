package recipes_test

// BenchmarkCounterAdd: 8 clients add 1 to one counter, b.N Adds in all:
// "naive-get-cas", a Get then a CAS transaction on the mod revision,
// retried from the Get; then "recipes", Counter.Add; then "sharded-8",
// ShardedCounter.Add over 8 shards. x-naive is the throughput ratio
// against naive.
//
//	go test ./recipes -run '^$' -bench 'BenchmarkCounterAdd' -benchtime 400x

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// naiveAdd adds delta to key with a Get followed by a CAS, from the Get
// again until the CAS succeeds.
func naiveAdd(ctx context.Context, cli *clientv3.Client, key string, delta int64) error {
	for {
		resp, err := cli.Get(ctx, key)
		if err != nil {
			return err
		}
		var v, mod int64
		if len(resp.Kvs) == 1 {
			if v, err = strconv.ParseInt(string(resp.Kvs[0].Value), 10, 64); err != nil {
				return err
			}
			mod = resp.Kvs[0].ModRevision
		}
		t, err := cli.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", mod)).
			Then(clientv3.OpPut(key, strconv.FormatInt(v+delta, 10))).Commit()
		if err != nil {
			return err
		}
		if t.Succeeded {
			return nil
		}
	}
}

func BenchmarkCounterAdd(b *testing.B) {
	c := testserver.Start(b, testserver.WithMembers(3))
	const clients = 8
	var clis []*clientv3.Client
	for range clients {
		cli, err := c.NewClient(clientv3.Config{DialTimeout: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		defer cli.Close()
		clis = append(clis, cli)
	}
	run := func(b *testing.B, add func(i int) error) float64 {
		var left atomic.Int64
		left.Store(int64(b.N))
		var wg sync.WaitGroup
		start := time.Now()
		for i := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for left.Add(-1) >= 0 {
					if err := add(i); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		rate := float64(b.N) / time.Since(start).Seconds()
		b.ReportMetric(rate, "adds/s")
		return rate
	}
	check := func(b *testing.B, key string) {
		resp, err := clis[0].Get(context.Background(), key)
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != strconv.Itoa(b.N) {
			b.Fatalf("counter %s = %v, %v; want %d", key, resp.Kvs, err, b.N)
		}
	}
	var naive float64
	b.Run("naive-get-cas", func(b *testing.B) {
		key := benchPrefix("counter", "naive")
		naive = run(b, func(i int) error { return naiveAdd(context.Background(), clis[i], key, 1) })
		check(b, key)
	})
	b.Run("recipes", func(b *testing.B) {
		key := benchPrefix("counter", "recipes")
		var counters []*recipes.Counter
		for _, cli := range clis {
			cn, err := recipes.NewCounter(cli, key)
			if err != nil {
				b.Fatal(err)
			}
			counters = append(counters, cn)
		}
		b.ResetTimer()
		rate := run(b, func(i int) error {
			_, err := counters[i].Add(context.Background(), 1)
			return err
		})
		check(b, key)
		if naive > 0 {
			b.ReportMetric(rate/naive, "x-naive")
		}
	})
	b.Run("sharded-8", func(b *testing.B) {
		pfx := benchPrefix("counter", "sharded")
		var counters []*recipes.ShardedCounter
		for _, cli := range clis {
			sc, err := recipes.NewShardedCounter(cli, pfx, 8)
			if err != nil {
				b.Fatal(err)
			}
			counters = append(counters, sc)
		}
		b.ResetTimer()
		rate := run(b, func(i int) error { return counters[i].Add(context.Background(), 1) })
		if v, _, err := counters[0].Get(context.Background()); err != nil || v != int64(b.N) {
			b.Fatalf("sharded counter = %d, %v; want %d", v, err, b.N)
		}
		if naive > 0 {
			b.ReportMetric(rate/naive, "x-naive")
		}
	})
}
