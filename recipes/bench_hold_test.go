package recipes_test

// Benchmarks of the hold context, LockAll and Lead, each against its
// reference in the same run:
//
//	go test ./recipes -run '^$' -bench 'HoldContext|LockAll|LeadHandOver' -benchtime 400x
//
// The two sides of a ratio take turns in blocks of 20 operations (see
// BenchmarkMutexUncontendedInterleaved); x-ref is the median over turns of
// the ratio of the blocks' p50 latencies.

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// benchRecipesSession returns a recipes.Session on its own client.
func benchRecipesSession(b *testing.B, c *testserver.Cluster, ttl int) *recipes.Session {
	b.Helper()
	s, err := recipes.NewSession(benchClient(b, c), recipes.WithSessionTTL(ttl))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// interleave runs ops[0] (the reference) and ops[1] b.N times each, in
// alternating blocks, and reports x-ref and both p50s.
func interleave(b *testing.B, what string, ops [2]func(ctx context.Context) error) {
	const block = 20
	ctx := context.Background()
	var all [2][]time.Duration
	var turns []float64
	b.ResetTimer()
	for turn := 0; turn*block < b.N; turn++ {
		var blockP50 [2]time.Duration
		for k := range 2 {
			i := (turn + k) % 2
			lat := make([]time.Duration, 0, block)
			for range min(block, b.N-turn*block) {
				t0 := time.Now()
				if err := ops[i](ctx); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			blockP50[i] = p50(lat)
			all[i] = append(all[i], lat...)
		}
		turns = append(turns, float64(blockP50[1])/float64(blockP50[0]))
	}
	b.StopTimer()
	slices.Sort(turns)
	b.ReportMetric(turns[len(turns)/2], "x-ref")
	b.ReportMetric(ms(p50(all[0])), "ref-p50-ms")
	b.ReportMetric(ms(p50(all[1])), "p50-ms")
	b.Logf("%s: reference p50 %.3f ms, measured p50 %.3f ms, median block ratio %.3f", what, ms(p50(all[0])), ms(p50(all[1])), turns[len(turns)/2])
}

func lockUnlock(m *recipes.Mutex, use func(*recipes.Lock)) func(context.Context) error {
	return func(ctx context.Context) error {
		l, err := m.Lock(ctx)
		if err != nil {
			return err
		}
		if use != nil {
			use(l)
		}
		return l.Unlock(ctx)
	}
}

// BenchmarkHoldContextBookkeeping: an uncontended Lock+Unlock with a
// recipes.Session (its grants join the session's deadline epoch) against
// the same with a plain concurrency.Session.
func BenchmarkHoldContextBookkeeping(b *testing.B) {
	c := testserver.Start(b)
	// One client for both: a client talking to the raft leader is faster
	// than one talking to a follower, whatever the session.
	rs := benchRecipesSession(b, c, 10)
	cs, err := concurrency.NewSession(rs.Concurrency().Client(), concurrency.WithTTL(10))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cs.Close() })
	plain := recipes.NewMutex(cs, benchPrefix("bookkeeping", "plain"))
	held := recipes.NewMutex(rs.Concurrency(), benchPrefix("bookkeeping", "session"))
	interleave(b, "lock+unlock, recipes.Session vs concurrency.Session", [2]func(context.Context) error{
		lockUnlock(plain, nil), lockUnlock(held, nil)})
}

// BenchmarkHoldContextVsDone: Lock, Context(), Unlock against Lock,
// Done(), Unlock (both start the key's watch), with a recipes.Session.
func BenchmarkHoldContextVsDone(b *testing.B) {
	c := testserver.Start(b)
	s := benchRecipesSession(b, c, 10)
	done := recipes.NewMutex(s.Concurrency(), benchPrefix("ctxdone", "done"))
	hctx := recipes.NewMutex(s.Concurrency(), benchPrefix("ctxdone", "ctx"))
	interleave(b, "lock+Context+unlock vs lock+Done+unlock", [2]func(context.Context) error{
		lockUnlock(done, func(l *recipes.Lock) { _ = l.Done() }),
		lockUnlock(hctx, func(l *recipes.Lock) { _ = l.Context() }),
	})
}

// BenchmarkLockAll3: LockAll of 3 free locks and its Unlock against one
// Mutex's Lock and Unlock.
func BenchmarkLockAll3(b *testing.B) {
	c := testserver.Start(b)
	s := benchSession(b, c, 10)
	one := recipes.NewMutex(s, benchPrefix("lockall", "one"))
	pfx := benchPrefix("lockall", "three")
	three := []*recipes.Mutex{recipes.NewMutex(s, pfx+"/a"), recipes.NewMutex(s, pfx+"/b"), recipes.NewMutex(s, pfx+"/c")}
	interleave(b, "LockAll(3)+Unlock vs Mutex.Lock+Unlock", [2]func(context.Context) error{
		lockUnlock(one, nil),
		func(ctx context.Context) error {
			ml, err := recipes.LockAll(ctx, three...)
			if err != nil {
				return err
			}
			return ml.Unlock(ctx)
		},
	})
}

// BenchmarkLeadHandOver: two Lead loops on one election; the leader's
// context is cancelled (a rolling deploy) and the time until the other's
// function starts is measured (p50), against the TTL that a hand-over
// without ReleaseOnCancel waits for.
func BenchmarkLeadHandOver(b *testing.B) {
	c := testserver.Start(b)
	const ttl = 10
	pfx := benchPrefix("lead", "handover")
	type start struct {
		who int
		at  time.Time
	}
	started := make(chan start, 4)
	var mu sync.Mutex
	cancels := [2]context.CancelFunc{}
	stopAll, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 2 {
		s := benchRecipesSession(b, c, ttl)
		e := recipes.NewElection(s.Concurrency(), pfx)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for stopAll.Err() == nil {
				ctx, cancel := context.WithCancel(stopAll)
				mu.Lock()
				cancels[i] = cancel
				mu.Unlock()
				err := recipes.Lead(ctx, e, fmt.Sprint(i), func(fctx context.Context, _ *recipes.Leadership) error {
					started <- start{i, time.Now()}
					<-fctx.Done()
					return nil
				})
				cancel()
				if err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	// Both candidates queued: the cancelled one must be behind the other.
	queued := func() {
		for {
			resp, err := c.Client().Get(context.Background(), pfx+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
			if err != nil {
				b.Fatal(err)
			}
			if resp.Count == 2 {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
	var lat []time.Duration
	cur := <-started
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		queued()
		b.StartTimer()
		mu.Lock()
		cancel := cancels[cur.who]
		mu.Unlock()
		t0 := time.Now()
		cancel()
		next := <-started
		if next.who == cur.who { // the cancelled one queued behind the other
			stop()
			b.Fatalf("runner %d led twice in a row", cur.who)
		}
		lat = append(lat, next.at.Sub(t0))
		cur = next
	}
	b.StopTimer()
	stop()
	wg.Wait()
	b.ReportMetric(ms(p50(lat)), "p50-ms")
	b.ReportMetric(float64(p50(lat))/float64(ttl*time.Second), "x-ttl")
	b.Logf("Lead hand-over on ReleaseOnCancel: p50 %.3f ms over %d hand-overs; without it a hand-over waits for the %d s TTL (ratio %.5f)",
		ms(p50(lat)), len(lat), ttl, float64(p50(lat))/float64(ttl*time.Second))
}

// BenchmarkMutexWaiters: n sessions (on 16 clients) queue on one lock and
// take turns, each unlocking at once and queuing again; the time per grant
// is the hand-off time with n-1 waiters. n = 4 and 1,000, for etcd's
// concurrency.Mutex and ours, in the same run. Timing starts after a
// warm-up of n grants, when every session has had its turn and queued
// again: the first waits of 1,000 sessions, each reading the line once,
// would otherwise still run during the first hundreds of grants.
//
//	go test ./recipes -run '^$' -bench MutexWaiters -benchtime 300x
func BenchmarkMutexWaiters(b *testing.B) {
	c := testserver.Start(b)
	var clients []*clientv3.Client
	for range 16 {
		cli, err := c.NewClient(clientv3.Config{DialTimeout: 5 * time.Second})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = cli.Close() })
		clients = append(clients, cli)
	}
	perGrant := map[string]time.Duration{}
	for _, n := range []int{4, 1000} {
		for _, impl := range impls {
			name := fmt.Sprintf("%s/%d", impl.name, n)
			b.Run(name, func(b *testing.B) {
				pfx := benchPrefix("waiters", name)
				lockers := make([]locker, n)
				for i := range lockers {
					s, err := concurrency.NewSession(clients[i%len(clients)], concurrency.WithTTL(60))
					if err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { _ = s.Close() })
					lockers[i] = impl.lock(s, pfx)
				}
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				var mu sync.Mutex
				grants, from := 0, -1 // from: grants when measuring started
				var first, last time.Time
				done := make(chan struct{})
				warmed, warm := n, make(chan struct{})
				var wg sync.WaitGroup
				for _, lock := range lockers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for ctx.Err() == nil {
							unlock, err := lock(ctx)
							if err != nil {
								if ctx.Err() == nil {
									// Fail loudly: the wait for n keys below
									// would otherwise never end.
									b.Error(err)
									cancel()
								}
								return
							}
							mu.Lock()
							grants++
							if grants == warmed {
								close(warm)
							}
							if from >= 0 && grants-from == b.N {
								last = time.Now()
								close(done)
							}
							mu.Unlock()
							_ = unlock(context.Background())
						}
					}()
				}
				// Measure once every session waits (n keys under the prefix)
				// and then had its turn (warm is closed after n grants).
				for {
					if ctx.Err() != nil { // a Lock failed
						wg.Wait()
						b.FailNow()
					}
					resp, err := c.Client().Get(ctx, pfx+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
					if err != nil {
						continue // ctx ended, or retry
					}
					if resp.Count >= int64(n) {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				select {
				case <-warm:
				case <-ctx.Done(): // a Lock failed
					wg.Wait()
					b.FailNow()
				}
				b.ResetTimer()
				mu.Lock()
				from, first = grants, time.Now()
				mu.Unlock()
				select {
				case <-done:
				case <-ctx.Done(): // a Lock failed
					wg.Wait()
					b.FailNow()
				}
				b.StopTimer()
				cancel()
				wg.Wait()
				d := last.Sub(first) / time.Duration(b.N)
				perGrant[name] = d
				b.ReportMetric(ms(d), "ms/grant")
			})
		}
	}
	for _, impl := range impls {
		few, many := perGrant[impl.name+"/4"], perGrant[impl.name+"/1000"]
		if few > 0 && many > 0 {
			b.Logf("%s: %.3f ms per grant with 4 sessions, %.3f ms with 1,000 (x%.2f)", impl.name, ms(few), ms(many), float64(many)/float64(few))
		}
	}
}
