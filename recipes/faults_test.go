package recipes_test

// The fault-injection suite of the locks and elections. Each test runs
// workers (each a client pinned to one member's proxy, with a 2 s session)
// against a 3-member cluster while recipes/internal/chaos injects random
// faults, then checks the histories:
//
//   - Mutex, RWMutex: writes made under Guard() to a shared register never
//     interleave (chaos.CheckFencedWrites); the history of grants, guarded
//     writes and releases is linearizable as a lock (porcupine,
//     chaos.LockModel); every holder whose guarded write was refused saw
//     Done() close.
//   - Election: the same for leaderships, plus: every observer saw every
//     change of leader in revision order, the leader it reports at the
//     revision of every guarded write is the writer, and observers agree.
//
// Short mode (default) runs each test for ~12 s. RECIPES_LONG=1 runs until
// at least 10,000 lock grants (Mutex) / 3,000 (RWMutex) / 3,000
// leaderships, and for at least chaos.LongAtLeast. RECIPES_SEED=N replays
// a run's faults.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/recipes/internal/chaos"
)

// grantee is what the lock workloads need from a Lock or a Leadership.
type grantee interface {
	Token() int64
	Guard() clientv3.Cmp
	Done() <-chan struct{}
}

// holdStats counts how holds ended.
type holdStats struct {
	grants, failed, released, lostSeen, lostAtRelease, unknown atomic.Int64
}

func (s *holdStats) String() string {
	return fmt.Sprintf("%d grants (%d failed attempts): %d released, %d lost and seen by Done, %d found lost at release, %d release outcome unknown",
		s.grants.Load(), s.failed.Load(), s.released.Load(), s.lostSeen.Load(), s.lostAtRelease.Load(), s.unknown.Load())
}

// useGrant runs the critical section of one grant: 1-3 writes guarded by
// g to register, recorded in the fence and the history, then the release.
// It checks that a holder whose guarded write was refused sees Done close.
func useGrant(env *chaos.Env, w *chaos.Worker, st *holdStats, fence *chaos.Fence, g grantee, shared bool, register string,
	acqCall int64, release func(context.Context) error, lostErr error) {
	tok := g.Token()
	lost := false
	unsure := false
	writes := 1 + env.Intn(3)
	for i := 0; i < writes && !lost && !unsure; i++ {
		select {
		case <-g.Done():
			lost = true
			continue
		default:
		}
		if env.Intn(4) == 0 {
			time.Sleep(time.Duration(env.Intn(20)) * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c0 := env.Now()
		resp, err := w.Client.Txn(ctx).If(g.Guard()).Then(clientv3.OpPut(register, fmt.Sprintf("%d/%d/%d", w.ID, tok, i))).Commit()
		c1 := env.Now()
		cancel()
		env.Op()
		switch {
		case err != nil:
			unsure = true // may or may not have been applied: not recorded
		case !resp.Succeeded:
			lost = true
			// etcd refused the guard: the key is gone, so Done must close.
			if !closedWithin(g.Done(), 5*time.Second) {
				env.Violation("worker %d: guarded write of token %d refused but Done still open 5s later", w.ID, tok)
			}
		default:
			fence.Record(chaos.FencedWrite{Rev: resp.Header.Revision, Token: tok, Shared: shared, Client: w.ID})
			env.History.Add(w.ID, chaos.LockOp{Kind: chaos.Use, Token: tok}, nil, c0, c1)
		}
	}
	if unsure {
		// Cut off: give a lost session time to be noticed.
		closedWithin(g.Done(), chaos.TTL*time.Second+time.Second)
	}
	select {
	case <-g.Done():
		lost = true
	default:
	}
	u0 := env.Now()
	var err error
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		err = release(ctx)
		cancel()
		env.Op()
		if err == nil || errors.Is(err, lostErr) || errors.Is(err, recipes.ErrNotHeld) {
			break
		}
	}
	u1 := env.Now()
	switch {
	case lost:
		st.lostSeen.Add(1)
		env.History.Add(w.ID, chaos.LockOp{Kind: chaos.Release, Token: tok}, nil, acqCall, u1)
	case err == nil:
		st.released.Add(1)
		env.History.Add(w.ID, chaos.LockOp{Kind: chaos.Release, Token: tok}, nil, u0, u1)
	case errors.Is(err, lostErr):
		st.lostAtRelease.Add(1)
		env.History.Add(w.ID, chaos.LockOp{Kind: chaos.Release, Token: tok}, nil, acqCall, u1)
	default:
		// Unreachable: the key goes when the lease does, at an unknown time.
		st.unknown.Add(1)
		env.History.Add(w.ID, chaos.LockOp{Kind: chaos.Release, Token: tok}, nil, u0, math.MaxInt64/2)
	}
}

func grantsTarget(short, long int64) int64 {
	if chaos.Long() {
		return long
	}
	return short
}

func TestFaultsMutex(t *testing.T) {
	env := chaos.Start(t, "mutex", chaos.AllFaults...)
	target := grantsTarget(0, 10_000)
	if chaos.Long() {
		env.SetDuration(15 * time.Minute)
	}
	ctx := env.Context()
	var st holdStats
	var fence chaos.Fence
	stop := env.InjectFaults()
	defer env.Progress(st.String)()
	var wg sync.WaitGroup
	for i := range 6 {
		w := env.Worker(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Close()
			for ctx.Err() == nil && !env.Reached(st.grants.Load(), target) {
				s := w.Session(ctx)
				if s == nil {
					return
				}
				m := recipes.NewMutex(s, "chaos/mutex")
				lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				call := env.Now()
				l, err := m.Lock(lctx)
				ret := env.Now()
				cancel()
				env.Op()
				if err != nil {
					st.failed.Add(1)
					continue
				}
				st.grants.Add(1)
				env.History.Add(w.ID, chaos.LockOp{Kind: chaos.Acquire, Token: l.Token()}, nil, call, ret)
				useGrant(env, w, &st, &fence, l, false, "chaos/mutex-register", call, l.Unlock, recipes.ErrLockLost)
			}
		}()
	}
	wg.Wait()
	stop()
	t.Logf("mutex: %s; %d fenced writes", &st, fence.Len())
	if st.grants.Load() == 0 {
		env.Violation("no lock was granted")
	}
	if target > 0 && st.grants.Load() < target {
		t.Errorf("only %d grants, want %d", st.grants.Load(), target)
	}
	env.CheckFencedWrites(&fence)
	env.CheckLinearizable(chaos.LockModel(), env.History)
}

func TestFaultsRWMutex(t *testing.T) {
	env := chaos.Start(t, "rwmutex", chaos.AllFaults...)
	target := grantsTarget(0, 3_000)
	if chaos.Long() {
		env.SetDuration(10 * time.Minute)
	}
	ctx := env.Context()
	var st holdStats
	var fence chaos.Fence
	stop := env.InjectFaults()
	defer env.Progress(st.String)()
	var wg sync.WaitGroup
	for i := range 6 {
		w := env.Worker(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Close()
			for ctx.Err() == nil && !env.Reached(st.grants.Load(), target) {
				s := w.Session(ctx)
				if s == nil {
					return
				}
				rw := recipes.NewRWMutex(s, "chaos/rw")
				shared := env.Intn(3) > 0
				lock, register := rw.Lock, "chaos/rw-register"
				if shared {
					lock, register = rw.RLock, fmt.Sprintf("chaos/rw-readers/%d", w.ID)
				}
				lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				call := env.Now()
				l, err := lock(lctx)
				ret := env.Now()
				cancel()
				env.Op()
				if err != nil {
					st.failed.Add(1)
					continue
				}
				st.grants.Add(1)
				env.History.Add(w.ID, chaos.LockOp{Kind: chaos.Acquire, Token: l.Token(), Shared: shared}, nil, call, ret)
				useGrant(env, w, &st, &fence, l, shared, register, call, l.Unlock, recipes.ErrLockLost)
			}
		}()
	}
	wg.Wait()
	stop()
	t.Logf("rwmutex: %s; %d fenced writes", &st, fence.Len())
	if st.grants.Load() == 0 {
		env.Violation("no lock was granted")
	}
	env.CheckFencedWrites(&fence)
	env.CheckLinearizable(chaos.LockModel(), env.History)
}

// win is a successful campaign: its token and the revision it won at.
type win struct{ token, rev int64 }

// observer collects what one Observe reports.
type observer struct {
	mu  sync.Mutex
	obs []recipes.Observation
}

func (o *observer) add(x recipes.Observation) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.obs = append(o.obs, x)
}

func (o *observer) last() (recipes.Observation, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.obs) == 0 {
		return recipes.Observation{}, false
	}
	return o.obs[len(o.obs)-1], true
}

func TestFaultsElection(t *testing.T) {
	env := chaos.Start(t, "election", chaos.AllFaults...)
	target := grantsTarget(0, 3_000)
	if chaos.Long() {
		env.SetDuration(10 * time.Minute)
	}
	ctx := env.Context()
	const prefix = "chaos/election"
	var st holdStats
	var fence chaos.Fence
	var wmu sync.Mutex
	var wins []win

	// Observers, on their own workers, for the whole run.
	octx, ocancel := context.WithCancel(context.Background())
	defer ocancel()
	observers := make([]*observer, 2)
	var owg sync.WaitGroup
	for i := range observers {
		ob := &observer{}
		observers[i] = ob
		w := env.Worker(100 + i)
		s := w.Session(ctx)
		if s == nil {
			t.Fatal("no session for an observer")
		}
		ch := recipes.NewElection(s, prefix).Observe(octx)
		owg.Add(1)
		go func() {
			defer owg.Done()
			for o := range ch {
				ob.add(o)
			}
		}()
	}

	stop := env.InjectFaults()
	defer env.Progress(st.String)()
	var wg sync.WaitGroup
	for i := range 5 {
		w := env.Worker(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer w.Close()
			for ctx.Err() == nil && !env.Reached(st.grants.Load(), target) {
				s := w.Session(ctx)
				if s == nil {
					return
				}
				lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				call := env.Now()
				l, err := recipes.NewElection(s, prefix).Campaign(lctx, fmt.Sprintf("w%d", w.ID))
				ret := env.Now()
				cancel()
				env.Op()
				if err != nil {
					st.failed.Add(1)
					continue
				}
				st.grants.Add(1)
				wmu.Lock()
				wins = append(wins, win{l.Token(), l.Revision()})
				wmu.Unlock()
				env.History.Add(w.ID, chaos.LockOp{Kind: chaos.Acquire, Token: l.Token()}, nil, call, ret)
				if env.Intn(3) == 0 {
					pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					_ = l.Proclaim(pctx, fmt.Sprintf("w%d'", w.ID))
					cancel()
					env.Op()
				}
				useGrant(env, w, &st, &fence, l, false, "chaos/election-register", call, l.Resign, recipes.ErrLeadershipLost)
			}
		}()
	}
	wg.Wait()
	stop()

	// A last leader, elected after the faults, that every observer must
	// reach: then they have seen the whole run.
	fs := env.Worker(200).Session(context.Background())
	if fs == nil {
		t.Fatal("no session for the final campaign")
	}
	fctx, fcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer fcancel()
	final, err := recipes.NewElection(fs, prefix).Campaign(fctx, "final")
	if err != nil {
		t.Fatalf("final campaign: %v", err)
	}
	for i, ob := range observers {
		for {
			if o, ok := ob.last(); ok && o.Leader != nil && o.Leader.Token == final.Token() {
				break
			}
			if fctx.Err() != nil {
				o, _ := ob.last()
				env.Violation("observer %d never reported the final leader %d; last observation %+v", i, final.Token(), o)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	ocancel()
	owg.Wait()
	_ = final.Resign(fctx)

	t.Logf("election: %s; %d fenced writes; observations %d/%d", &st, fence.Len(), len(observers[0].obs), len(observers[1].obs))
	if st.grants.Load() == 0 {
		env.Violation("nobody was elected")
	}
	env.CheckFencedWrites(&fence)
	env.CheckLinearizable(chaos.LockModel(), env.History)
	checkObservers(env, observers, fence.Writes(), wins)
}

// checkObservers checks each observer's sequence and holds it against the
// fenced writes and the wins.
func checkObservers(env *chaos.Env, observers []*observer, writes []chaos.FencedWrite, wins []win) {
	for i, ob := range observers {
		obs := ob.obs
		if len(obs) == 0 {
			env.Violation("observer %d saw nothing", i)
			continue
		}
		seen := map[int64]bool{}
		var lastTok int64
		for j, o := range obs {
			if j > 0 && o.Revision <= obs[j-1].Revision {
				env.Violation("observer %d: revision %d after %d", i, o.Revision, obs[j-1].Revision)
			}
			if o.Resynced {
				env.Violation("observer %d: resynced at revision %d although nothing was compacted", i, o.Revision)
			}
			if o.Leader != nil {
				if o.Leader.Token < lastTok {
					env.Violation("observer %d: leader token %d after %d", i, o.Leader.Token, lastTok)
				}
				lastTok = o.Leader.Token
				seen[o.Leader.Token] = true
			}
		}
		start := obs[0].Revision
		// Every win after the observer started was reported.
		for _, w := range wins {
			if w.rev > start && !seen[w.token] {
				env.Violation("observer %d never reported leader %d (won at revision %d)", i, w.token, w.rev)
			}
		}
		// At the revision of every fenced write, the observer's leader is
		// the writer.
		k := 0
		for _, w := range writes {
			if w.Rev < start {
				continue
			}
			for k+1 < len(obs) && obs[k+1].Revision <= w.Rev {
				k++
			}
			o := obs[k]
			if o.Leader == nil || o.Leader.Token != w.Token {
				env.Violation("observer %d: at revision %d token %d wrote under Guard but the observed leader (since %d) is %+v",
					i, w.Rev, w.Token, o.Revision, o.Leader)
			}
		}
	}
	// Observers agree from the later start on.
	if len(observers) == 2 && len(observers[0].obs) > 0 && len(observers[1].obs) > 0 {
		a, b := observers[0].obs, observers[1].obs
		from := max(a[0].Revision, b[0].Revision)
		trim := func(os []recipes.Observation) []string {
			var out []string
			for _, o := range os {
				if o.Revision <= from {
					continue
				}
				s := fmt.Sprintf("%d:none", o.Revision)
				if o.Leader != nil {
					s = fmt.Sprintf("%d:%d=%s", o.Revision, o.Leader.Token, o.Leader.Value)
				}
				out = append(out, s)
			}
			return out
		}
		ta, tb := trim(a), trim(b)
		if fmt.Sprint(ta) != fmt.Sprint(tb) {
			n := min(len(ta), len(tb))
			for j := 0; j < n; j++ {
				if ta[j] != tb[j] {
					env.Violation("observers disagree at entry %d: %s vs %s", j, ta[j], tb[j])
					return
				}
			}
			env.Violation("observers disagree: %d vs %d changes", len(ta), len(tb))
		}
	}
}
