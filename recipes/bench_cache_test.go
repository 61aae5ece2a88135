package recipes_test

// Benchmarks of Cache against plain etcd reads, on the same 3-member
// testserver cluster in the same run:
//
//	go test ./recipes -run '^$' -bench 'BenchmarkCache' -benchtime 2s
//
//   - BenchmarkCacheRead: reads of random keys of a 1,000-key prefix, 8
//     goroutines: "linearizable-get" with clientv3 Get, then "cache" from
//     a Cache; the cache's x-linearizable-get is the throughput ratio.
//   - BenchmarkCacheColdSync: one linearizable Range of the whole prefix
//     (the floor) and a new Cache until its first read is applied,
//     alternating; x-range is the ratio of their medians. It also
//     reports B/key, the heap a synced Cache holds per key, next to the
//     key+value bytes (payload-B/key). RECIPES_BENCH_CACHE_KEYS sets the
//     number of keys (default 10,000; the figure is 100,000).

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// fillPrefix puts n keys of valueSize bytes under prefix, 128 per
// transaction (etcd's default max-txn-ops).
func fillPrefix(b *testing.B, cli *clientv3.Client, prefix string, n, valueSize int) {
	b.Helper()
	ctx := context.Background()
	val := make([]byte, valueSize)
	for i := range val {
		val[i] = 'a' + byte(i%26)
	}
	for i := 0; i < n; i += 128 {
		var ops []clientv3.Op
		for j := i; j < min(n, i+128); j++ {
			ops = append(ops, clientv3.OpPut(fmt.Sprintf("%sk%08d", prefix, j), string(val)))
		}
		if _, err := cli.Txn(ctx).Then(ops...).Commit(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCacheRead(b *testing.B) {
	c := testserver.Start(b, testserver.WithMembers(3))
	cli, err := c.NewClient(clientv3.Config{DialTimeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	const n = 1000
	prefix := benchPrefix("cache", "read") + "/"
	fillPrefix(b, cli, prefix, n, 64)
	key := func(r *rand.Rand) string { return fmt.Sprintf("%sk%08d", prefix, r.IntN(n)) }
	var getRate float64
	b.Run("linearizable-get", func(b *testing.B) {
		b.SetParallelism(8)
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			r := rand.New(rand.NewPCG(rand.Uint64(), 0))
			for pb.Next() {
				resp, err := cli.Get(context.Background(), key(r))
				if err != nil || len(resp.Kvs) != 1 {
					b.Error(err)
					return
				}
			}
		})
		getRate = float64(b.N) / time.Since(start).Seconds()
		b.ReportMetric(getRate, "reads/s")
	})
	b.Run("cache", func(b *testing.B) {
		cache, err := recipes.NewCache(cli, prefix)
		if err != nil {
			b.Fatal(err)
		}
		defer cache.Close()
		if err := cache.WaitForRevision(context.Background(), 0); err != nil {
			b.Fatal(err)
		}
		b.SetParallelism(8)
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			r := rand.New(rand.NewPCG(rand.Uint64(), 0))
			for pb.Next() {
				if _, _, ok := cache.Get(key(r)); !ok {
					b.Error("key missing from the cache")
					return
				}
			}
		})
		rate := float64(b.N) / time.Since(start).Seconds()
		b.ReportMetric(rate, "reads/s")
		if getRate > 0 {
			b.ReportMetric(rate/getRate, "x-linearizable-get")
		}
	})
}

func BenchmarkCacheColdSync(b *testing.B) {
	n := 10_000
	if s := os.Getenv("RECIPES_BENCH_CACHE_KEYS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			b.Fatalf("RECIPES_BENCH_CACHE_KEYS=%q: want a positive number", s)
		}
		n = v
	}
	const valueSize = 64
	c := testserver.Start(b, testserver.WithMembers(3))
	cli, err := c.NewClient(clientv3.Config{DialTimeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	prefix := benchPrefix("cache", "sync") + "/"
	fillPrefix(b, cli, prefix, n, valueSize)
	b.Logf("%d keys of %d-byte values", n, valueSize)
	// Range and cache syncs alternate, so that both see the same state of
	// the cluster and of the machine; the medians are compared.
	b.Run("range-vs-cache", func(b *testing.B) { coldSyncs(b, cli, prefix, n, valueSize) })
}

func coldSyncs(b *testing.B, cli *clientv3.Client, prefix string, n, valueSize int) {
	var ranges, syncs []time.Duration
	for range b.N {
		start := time.Now()
		resp, err := cli.Get(context.Background(), prefix, clientv3.WithPrefix())
		if err != nil || len(resp.Kvs) != n {
			b.Fatalf("range: %v", err)
		}
		ranges = append(ranges, time.Since(start))

		start = time.Now()
		cache, err := recipes.NewCache(cli, prefix)
		if err != nil {
			b.Fatal(err)
		}
		if err := cache.WaitForRevision(context.Background(), 0); err != nil {
			b.Fatal(err)
		}
		syncs = append(syncs, time.Since(start))
		cache.Close()
		if k, _ := cache.Len(); k != n {
			b.Fatalf("cache holds %d keys, want %d", k, n)
		}
	}
	b.ReportMetric(ms(p50(ranges)), "range-p50-ms")
	b.ReportMetric(ms(p50(syncs)), "cache-p50-ms")
	b.ReportMetric(float64(p50(syncs))/float64(p50(ranges)), "x-range")
	func() {
		// The heap one synced cache holds, per key.
		b.StopTimer()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&before)
		cache, err := recipes.NewCache(cli, prefix)
		if err != nil {
			b.Fatal(err)
		}
		if err := cache.WaitForRevision(context.Background(), 0); err != nil {
			b.Fatal(err)
		}
		// Twice: sync.Pool's victim cache (gRPC's buffer pools) is
		// emptied only by the second collection.
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(n), "B/key")
		b.ReportMetric(float64(len(fmt.Sprintf("%sk%08d", prefix, 0))+valueSize), "payload-B/key")
		cache.Close()
	}()
}
