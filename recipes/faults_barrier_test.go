package recipes_test

// The fault-injection suite of the barriers. Like the lock and queue
// suites (faults_test.go, faults_queue_test.go) each test runs workers
// (each a client pinned to one member's proxy, with a 2 s session) against
// a 3-member cluster while recipes/internal/chaos injects random faults,
// then checks:
//
//   - Barrier: the history of holds, releases and waits is linearizable
//     against a barrier whose hold can silently expire: no Wait passes
//     unless a Release happened after the last Hold.
//   - DoubleBarrier: in lockstep rounds of 3 participants, no Enter returns
//     before all 3 called Enter, and no Leave returns before every other
//     participant called Leave or lost its session.
//
// Operation outcomes (fqOK, fqLost, fqUnknown) are the queue suite's.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/recipes/internal/chaos"
)

type fbKind int

const (
	fbHold        fbKind = iota // Out: fqOK or fqUnknown
	fbHoldRefused               // ErrBarrierHeld
	fbRelease                   // Out: fqOK, fqLost (ErrBarrierAbandoned) or fqUnknown
	fbWaitPassed
	fbWaitAbandoned
)

type fbOp struct {
	Kind fbKind
	Out  fqOutcome
}

const (
	fbFree = iota
	fbHeld
	fbAbandoned // the holder's lease ended without a Release
)

// fbStep is a barrier whose hold may expire at any moment.
func fbStep(s int, op fbOp) []int {
	var out []int
	starts := []int{s}
	if s == fbHeld {
		starts = append(starts, fbAbandoned)
	}
	for _, s := range starts {
		switch op.Kind {
		case fbHold:
			out = append(out, fbHeld)
			if op.Out == fqUnknown {
				out = append(out, s)
			}
		case fbHoldRefused:
			if s == fbHeld {
				out = append(out, s)
			}
		case fbRelease:
			switch op.Out {
			case fqOK:
				if s != fbAbandoned {
					out = append(out, fbFree)
				}
			case fqLost:
				if s == fbAbandoned {
					out = append(out, fbFree)
				}
			default:
				out = append(out, fbFree, s)
			}
		case fbWaitPassed:
			if s == fbFree {
				out = append(out, s)
			}
		case fbWaitAbandoned:
			if s == fbAbandoned {
				out = append(out, s)
			}
		}
	}
	return out
}

func fbModel() porcupine.Model {
	m := porcupine.NondeterministicModel{
		Init: func() []any { return []any{fbFree} },
		Step: func(state, input, _ any) []any {
			var out []any
			for _, s := range fbStep(state.(int), input.(fbOp)) {
				if !containsAny(out, s) {
					out = append(out, s)
				}
			}
			return out
		},
		DescribeOperation: func(input, _ any) string {
			op := input.(fbOp)
			return fmt.Sprintf("%s %s", [...]string{"hold", "hold-refused", "release", "wait-passed", "wait-abandoned"}[op.Kind],
				[...]string{"ok", "lost", "unknown"}[op.Out])
		},
		DescribeState: func(state any) string { return [...]string{"free", "held", "abandoned"}[state.(int)] },
	}
	return m.ToModel()
}

func containsAny(xs []any, x any) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func TestFaultsBarrier(t *testing.T) {
	env := chaos.Start(t, "barrier", chaos.AllFaults...)
	const key = "chaos-barrier"
	ctx := env.Context()
	var holds, releases, passed, abandoned, failedWaits atomic.Int64
	record := func(w *chaos.Worker, op fbOp, call int64) {
		ret := env.Now()
		if op.Out == fqUnknown {
			ret = math.MaxInt64 / 2
		}
		env.History.Add(w.ID, op, nil, call, ret)
		env.Op()
	}
	stop := env.InjectFaults()
	var wg sync.WaitGroup
	coord := env.Worker(0)
	wg.Add(1)
	go func() { // the coordinator: hold, let the waiters wait, release
		defer wg.Done()
		defer coord.Close()
		for ctx.Err() == nil {
			s := coord.Session(ctx)
			if s == nil {
				return
			}
			b := recipes.NewBarrier(s, key)
			hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			call := env.Now()
			err := b.Hold(hctx)
			cancel()
			switch {
			case err == nil:
				holds.Add(1)
				record(coord, fbOp{Kind: fbHold}, call)
			case errors.Is(err, recipes.ErrBarrierHeld):
				record(coord, fbOp{Kind: fbHoldRefused}, call)
			case errors.Is(err, recipes.ErrSessionExpired):
				continue // nothing happened
			default:
				record(coord, fbOp{Kind: fbHold, Out: fqUnknown}, call)
			}
			time.Sleep(time.Duration(100+env.Intn(400)) * time.Millisecond)
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			call = env.Now()
			err = b.Release(rctx)
			cancel()
			out := fqOK
			switch {
			case err == nil:
				releases.Add(1)
			case errors.Is(err, recipes.ErrBarrierAbandoned):
				out = fqLost
			default:
				out = fqUnknown
			}
			record(coord, fbOp{Kind: fbRelease, Out: out}, call)
			time.Sleep(time.Duration(env.Intn(60)) * time.Millisecond)
		}
	}()
	for i := 1; i <= 4; i++ {
		w := env.Worker(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Close()
			for ctx.Err() == nil {
				s := w.Session(ctx)
				if s == nil {
					return
				}
				wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				call := env.Now()
				err := recipes.NewBarrier(s, key).Wait(wctx)
				cancel()
				switch {
				case err == nil:
					passed.Add(1)
					record(w, fbOp{Kind: fbWaitPassed}, call)
				case errors.Is(err, recipes.ErrBarrierAbandoned):
					abandoned.Add(1)
					record(w, fbOp{Kind: fbWaitAbandoned}, call)
				default:
					failedWaits.Add(1) // no information
					env.Op()
				}
				time.Sleep(time.Duration(env.Intn(50)) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	stop()
	t.Logf("barrier: %d holds, %d releases, %d waits passed, %d waits saw the holder's session end, %d waits cut off by faults",
		holds.Load(), releases.Load(), passed.Load(), abandoned.Load(), failedWaits.Load())
	if passed.Load() == 0 {
		env.Violation("no Wait ever passed")
	}
	env.CheckLinearizable(fbModel(), env.History)
}

// ---- DoubleBarrier ----

func TestFaultsDoubleBarrier(t *testing.T) {
	env := chaos.Start(t, "double-barrier", chaos.AllFaults...)
	ctx := env.Context()
	const groups = 2
	var rounds, complete [groups]int
	stop := env.InjectFaults()
	var wg sync.WaitGroup
	for g := range groups {
		workers := make([]*chaos.Worker, fdbCount)
		for i := range workers {
			workers[i] = env.Worker(g*fdbCount + i)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rounds[g], complete[g] = fdbRounds(ctx, env, fmt.Sprintf("chaos-double-barrier-%d", g), workers)
		}()
	}
	wg.Wait()
	stop()
	total, done := rounds[0]+rounds[1], complete[0]+complete[1]
	t.Logf("double barrier: %d rounds of %d participants in %d groups, %d completed, %d broken by faults", total, fdbCount, groups, done, total-done)
	if done == 0 {
		env.Violation("no round completed")
	}
}

const fdbCount = 3

// fdbTurn is one participant's part in one round.
type fdbTurn struct {
	lease                 clientv3.LeaseID
	enterCall, enterRet   int64
	enterErr              error
	leaveCall, leaveRet   int64
	leaveErr              error
	enterTried, leftTried bool
}

// fdbRounds runs lockstep rounds of Enter, work, Leave on one double
// barrier for workers until ctx ends, and checks each round.
func fdbRounds(ctx context.Context, env *chaos.Env, key string, workers []*chaos.Worker) (rounds, complete int) {
	defer func() {
		for _, w := range workers {
			w.Close()
		}
	}()
	cli := env.Cluster.Client()
	for ctx.Err() == nil {
		rounds++
		turns := make([]fdbTurn, len(workers))
		var wg sync.WaitGroup
		for i, w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tr := &turns[i]
				s := w.Session(ctx)
				if s == nil {
					return
				}
				tr.lease = s.Lease()
				b := recipes.NewDoubleBarrier(s, key, len(workers))
				time.Sleep(time.Duration(env.Intn(200)) * time.Millisecond) // arrive at different times
				ectx, cancel := context.WithTimeout(ctx, 3*time.Second)
				tr.enterTried, tr.enterCall = true, env.Now()
				tr.enterErr = b.Enter(ectx)
				tr.enterRet = env.Now()
				cancel()
				env.Op()
				if tr.enterErr != nil {
					return
				}
				time.Sleep(time.Duration(env.Intn(200)) * time.Millisecond) // work, then leave at different times
				lctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				tr.leftTried, tr.leaveCall = true, env.Now()
				tr.leaveErr = b.Leave(lctx)
				tr.leaveRet = env.Now()
				cancel()
				env.Op()
			}()
		}
		wg.Wait()
		// No Enter passes before every participant called Enter.
		for i, ti := range turns {
			if !ti.enterTried || ti.enterErr != nil {
				continue
			}
			for j, tj := range turns {
				if !tj.enterTried || tj.enterCall > ti.enterRet {
					env.Violation("%s round %d: participant %d passed Enter at %v before participant %d called it", key, rounds, i, time.Duration(ti.enterRet), j)
				}
			}
		}
		// No Leave passes before every other participant left or lost its
		// session (a lease alive now was alive then).
		for i, ti := range turns {
			if !ti.leftTried || ti.leaveErr != nil {
				continue
			}
			for j, tj := range turns {
				if j == i || !tj.enterTried || tj.enterErr != nil || (tj.leftTried && tj.leaveCall <= ti.leaveRet) {
					continue
				}
				tctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				ttl, err := cli.TimeToLive(tctx, tj.lease)
				cancel()
				if err == nil && ttl.TTL > 0 {
					env.Violation("%s round %d: participant %d passed Leave while participant %d, alive, had not left", key, rounds, i, j)
				}
			}
		}
		ok := true
		for _, tr := range turns {
			if tr.enterErr != nil || tr.leaveErr != nil || !tr.leftTried {
				ok = false
			}
		}
		if ok {
			complete++
			continue
		}
		// A broken round: end the sessions of those who failed, so that no
		// key of theirs is counted in the next round.
		for i, tr := range turns {
			if tr.lease == 0 || (tr.enterErr == nil && tr.leaveErr == nil && tr.leftTried) {
				continue
			}
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, _ = cli.Revoke(rctx, tr.lease)
			cancel()
			if s := workers[i].Session(context.Background()); s != nil && s.Lease() == tr.lease {
				select {
				case <-s.Done():
				case <-time.After((chaos.TTL + 1) * time.Second):
				}
			}
		}
	}
	return rounds, complete
}
