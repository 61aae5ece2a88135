package recipes_test

// The fault-injection suite of Counter: six workers, each a client pinned
// to one member's proxy, Add 1 to one counter while chaos injects faults.
// An Add that returned nil was applied once; one that failed may or may
// not have been (its outcome is unknown). The check: the final value lies
// between the acknowledged Adds and the acknowledged plus the unknown
// ones: no acknowledged Add was lost, none was applied twice.
//
// Short mode runs ~12 s; RECIPES_LONG=1 runs until 10,000 Adds were
// acknowledged, and at least chaos.LongAtLeast.

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/recipes/internal/chaos"
)

func TestFaultsCounter(t *testing.T) {
	env := chaos.Start(t, "counter", chaos.AllFaults...)
	var target int64
	if chaos.Long() {
		target = 10_000
		env.SetDuration(20 * time.Minute)
	}
	const key = "chaos-counter"
	ctx := env.Context()
	stop := env.InjectFaults()
	var acked, unknown atomic.Int64
	var wg sync.WaitGroup
	for i := range 6 {
		w := env.Worker(i)
		cn, err := recipes.NewCounter(w.Client, key)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && !env.Reached(acked.Load(), target) {
				actx, cancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := cn.Add(actx, 1)
				cancel()
				if err != nil {
					unknown.Add(1)
					continue
				}
				acked.Add(1)
				env.Op()
			}
		}()
	}
	wg.Wait()
	stop()
	fctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	final, _ := recipes.NewCounter(env.Cluster.Client(), key)
	v, _, err := final.Get(fctx)
	if err != nil {
		t.Fatal(err)
	}
	a, u := acked.Load(), unknown.Load()
	if v < a || v > a+u {
		env.Violation("final value %d, want between %d acknowledged and %d acknowledged+unknown Adds", v, a, a+u)
	}
	t.Logf("counter: final %d, %d acknowledged Adds, %d with unknown outcome (%d of them applied)", v, a, u, v-a)
	if a == 0 {
		t.Fatal("no Add was acknowledged")
	}
}
