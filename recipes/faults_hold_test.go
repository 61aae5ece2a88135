package recipes_test

// The fault workloads of the hold context, Lead and LockAll. Workers use
// recipes.Session (2 s TTL, default margin) with a clock whose rate is
// skewed by up to ±10%, against partitions, member restarts, leader
// kills, black-holed proxies and stalls past the TTL (chaos.HoldFaults:
// not lease revocation, which hands a lock over at once). Every time is
// taken on the run's one clock (env.Now).
//
//   - Hold context: the old holder's context had ended (or it had stopped
//     on its own) before the next holder's Lock returned, for every pair
//     of consecutive grants; the slack is reported as a distribution.
//   - Lead: the functions' intervals never overlap.
//   - LockAll: per resource, holds never overlap; after the faults, every
//     worker gets its random sets again (no deadlock).
//
// Long mode (RECIPES_LONG=1): at least 3,000 grants (hold), 1,000 leader
// changes (Lead), 10,000 grants (LockAll).

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/recipes/internal/chaos"
)

// span is one hold on the run's clock: granted when the acquisition
// returned, stopped when its context ended or the holder stopped by
// itself, whichever came first.
type span struct {
	worker  int
	token   int64
	granted int64
	stopped int64
	cause   string // "released", "deadline", "lost"
}

func skewedSession(ctx context.Context, env *chaos.Env, w *chaos.Worker) *recipes.Session {
	rate := 0.9 + float64(env.Intn(201))/1000 // 0.9 .. 1.1
	return w.HoldSession(ctx, recipes.WithSessionClock(chaos.NewSkewedClock(rate)))
}

// holdFor runs a hold's work under hctx for up to d and returns when it
// stopped, and why.
func holdFor(hctx context.Context, env *chaos.Env, d time.Duration) (int64, string) {
	var ended atomic.Int64
	stop := context.AfterFunc(hctx, func() { ended.Store(env.Now()) })
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-hctx.Done():
	case <-t.C:
	}
	now := env.Now()
	if !stop() { // the context ended: take the time it did
		for ended.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		if e := ended.Load(); e < now {
			now = e
		}
		switch cause := context.Cause(hctx); {
		case errors.Is(cause, recipes.ErrLeaseDeadline):
			return now, "deadline"
		case errors.Is(cause, recipes.ErrNotHeld), errors.Is(cause, context.DeadlineExceeded), errors.Is(cause, context.Canceled):
			return now, "released"
		default:
			return now, "lost"
		}
	}
	return now, "released"
}

// checkSpans checks that in token order every span stopped before the
// next was granted; it returns the number of pairs and, by the cause that
// ended the first span of a pair, the slacks of the pairs whose first span
// did not stop by itself.
func checkSpans(env *chaos.Env, what string, spans []span) (pairs int, slacks map[string][]time.Duration) {
	slacks = map[string][]time.Duration{}
	sort.Slice(spans, func(i, j int) bool { return spans[i].token < spans[j].token })
	for i := 1; i < len(spans); i++ {
		a, b := spans[i-1], spans[i]
		pairs++
		if a.stopped > b.granted {
			env.Violation("%s: holder %d (token %d, %s) stopped %v after holder %d (token %d) was granted",
				what, a.worker, a.token, a.cause, time.Duration(a.stopped-b.granted), b.worker, b.token)
		}
		if a.cause != "released" {
			slacks[a.cause] = append(slacks[a.cause], time.Duration(b.granted-a.stopped))
		}
	}
	return pairs, slacks
}

// byCause is distribution for each cause, in a fixed order.
func byCause(slacks map[string][]time.Duration) string {
	if len(slacks) == 0 {
		return "none"
	}
	causes := slices.Sorted(maps.Keys(slacks))
	parts := make([]string, 0, len(causes))
	for _, c := range causes {
		parts = append(parts, c+": "+distribution(slacks[c]))
	}
	return strings.Join(parts, "; ")
}

func distribution(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	slices.Sort(ds)
	q := func(p float64) time.Duration { return ds[int(p*float64(len(ds)-1))] }
	return fmt.Sprintf("n=%d min=%v p10=%v p50=%v p90=%v max=%v", len(ds),
		q(0).Round(time.Millisecond), q(0.1).Round(time.Millisecond), q(0.5).Round(time.Millisecond),
		q(0.9).Round(time.Millisecond), q(1).Round(time.Millisecond))
}

func TestFaultsHoldContext(t *testing.T) {
	env := chaos.Start(t, "hold-context", chaos.HoldFaults...)
	target := grantsTarget(0, 3_000)
	if chaos.Long() {
		env.SetDuration(15 * time.Minute) // until the target, not 3 minutes
	}
	ctx := env.Context()
	var mu sync.Mutex
	var spans []span
	var grants, failed atomic.Int64
	causes := map[string]int{}
	stop := env.InjectFaults()
	defer env.Progress(func() string { return fmt.Sprintf("%d grants, %d failed", grants.Load(), failed.Load()) })()
	var wg sync.WaitGroup
	for i := range 5 {
		w := env.Worker(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.CloseHoldSession()
			for ctx.Err() == nil && !env.Reached(grants.Load(), target) {
				s := skewedSession(ctx, env, w)
				if s == nil {
					return
				}
				lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				l, err := recipes.NewMutex(s.Concurrency(), "chaos/hold").Lock(lctx)
				granted := env.Now()
				cancel()
				env.Op()
				if err != nil {
					failed.Add(1)
					continue
				}
				grants.Add(1)
				// Half the holds are short, half last up to 3 s: long enough for
				// a stall past the TTL to end them by the deadline.
				d := time.Duration(env.Intn(300)) * time.Millisecond
				if env.Intn(2) == 0 {
					d = time.Duration(env.Intn(3000)) * time.Millisecond
				}
				stopped, cause := holdFor(l.Context(), env, d)
				release(env, w, l.Unlock)
				mu.Lock()
				spans = append(spans, span{worker: w.ID, token: l.Token(), granted: granted, stopped: stopped, cause: cause})
				causes[cause]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	stop()
	pairs, slacks := checkSpans(env, "hold context", spans)
	t.Logf("hold context: %d grants (%d failed attempts), causes %v; %d consecutive pairs, all checked for stop-before-next-grant; "+
		"slack (next grant - stop) by what ended the hold: %s (margin %v)", grants.Load(), failed.Load(), causes, pairs,
		byCause(slacks), chaos.TTL*time.Second/3)
	if grants.Load() == 0 {
		env.Violation("no lock was granted")
	}
}

func TestFaultsLead(t *testing.T) {
	env := chaos.Start(t, "lead", chaos.HoldFaults...)
	target := grantsTarget(0, 1_000)
	if chaos.Long() {
		// Until the target, not 3 minutes: about 1 leader run per second
		// under the hold faults on a loaded 2-core machine.
		env.SetDuration(30 * time.Minute)
	}
	ctx := env.Context()
	var mu sync.Mutex
	var spans []span
	var runs, stuck atomic.Int64
	stop := env.InjectFaults()
	defer env.Progress(func() string { return fmt.Sprintf("%d leader runs", runs.Load()) })()
	var wg sync.WaitGroup
	for i := range 4 {
		w := env.Worker(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.CloseHoldSession()
			for ctx.Err() == nil && !env.Reached(runs.Load(), target) {
				s := skewedSession(ctx, env, w)
				if s == nil {
					return
				}
				// A "deploy" ends this Lead after a while.
				lctx, cancel := context.WithTimeout(ctx, time.Duration(50+env.Intn(500))*time.Millisecond)
				err := recipes.Lead(lctx, recipes.NewElection(s.Concurrency(), "chaos/lead"), fmt.Sprintf("w%d", w.ID),
					func(fctx context.Context, l *recipes.Leadership) error {
						granted := env.Now()
						runs.Add(1)
						stopped, cause := holdFor(fctx, env, time.Hour)
						mu.Lock()
						spans = append(spans, span{worker: w.ID, token: l.Token(), granted: granted, stopped: stopped, cause: cause})
						mu.Unlock()
						return nil
					}, recipes.WithGrace(2*time.Second))
				cancel()
				env.Op()
				if errors.Is(err, recipes.ErrLeaderStuck) {
					stuck.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	stop()
	pairs, slacks := checkSpans(env, "lead", spans)
	t.Logf("lead: %d leader runs, %d consecutive pairs checked for overlap, %d stuck; slack by what ended the run: %s",
		runs.Load(), pairs, stuck.Load(), byCause(slacks))
	if stuck.Load() > 0 {
		env.Violation("%d leader functions reported stuck although each returns when its context ends", stuck.Load())
	}
	if runs.Load() < 2 {
		env.Violation("only %d leader runs", runs.Load())
	}
}

func TestFaultsLockAll(t *testing.T) {
	env := chaos.Start(t, "lockall", chaos.HoldFaults...)
	target := grantsTarget(0, 10_000)
	if chaos.Long() {
		env.SetDuration(15 * time.Minute)
	}
	ctx := env.Context()
	const resources = 5
	var mu sync.Mutex
	spans := make([][]span, resources)
	var grants, failed atomic.Int64
	round := func(ctx context.Context, w *chaos.Worker, s *recipes.Session, timeout time.Duration) error {
		var ms []*recipes.Mutex
		for _, r := range rperm(env, resources)[:1+env.Intn(3)] {
			ms = append(ms, recipes.NewMutex(s.Concurrency(), fmt.Sprintf("chaos/all/r%d", r)))
		}
		lctx, cancel := context.WithTimeout(ctx, timeout)
		ml, err := recipes.LockAll(lctx, ms...)
		granted := env.Now()
		cancel()
		env.Op()
		if err != nil {
			failed.Add(1)
			return err
		}
		grants.Add(1)
		stopped, cause := holdFor(ml.Context(), env, time.Duration(env.Intn(50))*time.Millisecond)
		release(env, w, ml.Unlock)
		mu.Lock()
		defer mu.Unlock()
		for _, l := range ml.Locks() {
			var r int
			if _, err := fmt.Sscanf(l.Key(), "chaos/all/r%d/", &r); err != nil {
				env.Violation("key %s: %v", l.Key(), err)
				continue
			}
			spans[r] = append(spans[r], span{worker: w.ID, token: l.Token(), granted: granted, stopped: stopped, cause: cause})
		}
		return nil
	}
	stop := env.InjectFaults()
	defer env.Progress(func() string { return fmt.Sprintf("%d grants, %d failed", grants.Load(), failed.Load()) })()
	var wg sync.WaitGroup
	workers := make([]*chaos.Worker, 6)
	for i := range workers {
		w := env.Worker(i)
		workers[i] = w
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && !env.Reached(grants.Load(), target) {
				s := skewedSession(ctx, env, w)
				if s == nil {
					return
				}
				_ = round(ctx, w, s, 5*time.Second)
			}
		}()
	}
	wg.Wait()
	stop()
	// No deadlock: without faults, every worker gets 10 random sets, each
	// within 20 s. A session whose lease expired (its keep-alives starved
	// on a busy machine) is no deadlock: LockAll says so with
	// ErrSessionExpired, and the worker takes a new session and tries that
	// set again, up to 10 times.
	var deadlocks, expired atomic.Int64
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.CloseHoldSession()
			for done, expiries := 0, 0; done < 10; {
				s := skewedSession(context.Background(), env, w)
				err := round(context.Background(), w, s, 20*time.Second)
				if errors.Is(err, recipes.ErrSessionExpired) && expiries < 10 {
					expiries++
					expired.Add(1)
					env.Logf("worker %d: LockAll after the faults: %v; again with a new session", w.ID, err)
					w.CloseHoldSession()
					continue
				}
				if err != nil {
					deadlocks.Add(1)
					env.Logf("worker %d: LockAll after the faults: %v", w.ID, err)
				}
				done++
			}
		}()
	}
	wg.Wait()
	if n := expired.Load(); n > 0 {
		t.Logf("lockall: %d sessions expired after the faults (keep-alives starved); their sets were tried again", n)
	}
	if deadlocks.Load() > 0 {
		env.Violation("%d LockAll calls did not succeed within 20 s after the faults", deadlocks.Load())
	}
	pairs := 0
	for r := range spans {
		n, _ := checkSpans(env, fmt.Sprintf("lockall r%d", r), spans[r])
		pairs += n
	}
	t.Logf("lockall: %d grants (%d failed attempts), %d consecutive per-resource pairs checked", grants.Load(), failed.Load(), pairs)
	if grants.Load() == 0 {
		env.Violation("nothing was granted")
	}
}

// release unlocks, retrying while etcd cannot be reached; if it still
// cannot, it closes the worker's session (revoking the lease when etcd is
// back), as a holder should rather than leave its key held.
func release(env *chaos.Env, w *chaos.Worker, unlock func(context.Context) error) {
	for range 5 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err := unlock(ctx)
		cancel()
		env.Op()
		if err == nil || errors.Is(err, recipes.ErrLockLost) || errors.Is(err, recipes.ErrNotHeld) {
			return
		}
	}
	w.CloseHoldSession()
}

// rperm is a seeded permutation of 0..n-1.
func rperm(env *chaos.Env, n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	for i := n - 1; i > 0; i-- {
		j := env.Intn(i + 1)
		p[i], p[j] = p[j], p[i]
	}
	return p
}
