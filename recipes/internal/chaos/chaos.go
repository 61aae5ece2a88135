// Package chaos is the fault-injection harness of the recipes tests: a
// 3-member testserver cluster, clients that each reach it through one
// member's proxy, random faults from a printed, replayable seed, operation
// histories, and counters for the final report.
//
// # Using it from a test
//
//	func TestFaultsSomething(t *testing.T) {
//		env := chaos.Start(t, "something", chaos.AllFaults...) // prints the seed
//		ctx := env.Context()        // ends after 12 s (3 min with RECIPES_LONG=1)
//		stop := env.InjectFaults()  // random faults until stop() (which heals everything)
//		for i := range 6 {
//			w := env.Worker(i)      // a client pinned to one member's proxy
//			go func() {
//				s := w.Session(ctx) // a tracked session (TTL env.TTL), renewed after expiry
//				start := env.Now()
//				... use the recipe with s ...
//				env.History.Add(i, input, output, start, env.Now()) // porcupine history
//				env.Op()            // count an operation
//			}()
//		}
//		... wait for the workers ...
//		stop()
//		env.CheckLinearizable(chaos.LockModel(), env.History) // porcupine; counts a violation on failure
//		env.CheckFencedWrites(&fence)                           // writes made under Guard() (see Fence)
//		env.Violation("what went wrong: %v", x)                 // any other broken invariant
//	}                                                            // the report is printed at cleanup
//
// env.Progress(func() string {...}) logs a status line every 10 s (30 s in
// long mode). LockModel and Fence are ready-made for locks; other
// primitives bring their own porcupine.Model (see faults_queue_test.go and
// faults_barrier_test.go).
//
// Environment:
//   - RECIPES_SEED=N replays a run: the faults (kind, member, timing) and
//     every random choice made through env.Rand() follow from it. The seed
//     is printed at the start and in the report. (Interleavings still vary:
//     the cluster runs in real time.)
//   - RECIPES_LONG=1 selects long mode: Long() is true and Context lasts
//     3 minutes instead of 12 s; workloads should scale their targets
//     (e.g. >= 10,000 grants).
//   - RECIPES_FAULTS_DIR=dir keeps porcupine visualizations of failed
//     checks there (default: the OS temp dir).
//
// Faults (one at a time, so the cluster keeps its quorum; each is healed
// before the next; kinds are dealt from a shuffled deck, so every kind
// comes up once per round):
//   - StopRestart: a member is stopped, then restarted;
//   - KillLeader: the raft leader is hard-stopped, then restarted;
//   - Partition: a member is cut off from its peers, then healed;
//   - Blackhole: one member's client proxy stalls all traffic for less
//     than the session TTL: the connections of the workers on it hang;
//   - Pause: the same for longer than the TTL: those workers' sessions
//     expire while the workers are paused;
//   - RevokeLease: the lease of a random tracked session is revoked.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"go.uber.org/zap"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// Fault is a kind of fault the injector can pick.
type Fault string

// The faults.
const (
	StopRestart Fault = "stop-restart"
	KillLeader  Fault = "kill-leader"
	Partition   Fault = "partition"
	Blackhole   Fault = "blackhole"
	Pause       Fault = "pause"
	RevokeLease Fault = "revoke-lease"
)

// AllFaults lists every fault.
var AllFaults = []Fault{StopRestart, KillLeader, Partition, Blackhole, Pause, RevokeLease}

// TTL is the TTL in seconds of sessions made by Worker.Session.
const TTL = 2

// Env is one fault-injection run.
type Env struct {
	T       testing.TB
	Name    string
	Seed    uint64
	Cluster *testserver.Cluster
	History *History

	faults []Fault
	start  time.Time
	dur    time.Duration

	rmu  sync.Mutex
	rnd  *rand.Rand
	deck []Fault // kinds still to deal in this round (under rmu)

	ops, injected, violations atomic.Int64
	faultCounts               sync.Map // Fault -> *atomic.Int64

	smu      sync.Mutex
	sessions map[clientv3.LeaseID]struct{}

	lmu sync.Mutex
	log []string // fault log, printed when the test fails
}

// Long reports whether RECIPES_LONG=1 asks for the long mode.
func Long() bool { return os.Getenv("RECIPES_LONG") == "1" }

// LongAtLeast is the least time a long run's workload lasts, whatever its
// counts: a workload that reaches them in seconds would otherwise meet
// only a handful of faults. A fault and the gap after it take about 2.5 s
// (a queue run met 76 in 3 minutes), so 5 minutes gives the 100 faults a
// long run must see.
const LongAtLeast = 5 * time.Minute

// seed returns RECIPES_SEED or a fresh random seed.
func seed(tb testing.TB) uint64 {
	if s := os.Getenv("RECIPES_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			tb.Fatalf("RECIPES_SEED=%q: %v", s, err)
		}
		return v
	}
	return rand.Uint64() % 1_000_000_000
}

// Start starts a 3-member cluster with client proxies and returns the run.
// faults are the kinds InjectFaults may pick (none: no faults). The seed is
// logged at once; the report (ops, faults, violations) at cleanup.
func Start(tb testing.TB, name string, faults ...Fault) *Env {
	tb.Helper()
	e := &Env{
		T:        tb,
		Name:     name,
		Seed:     seed(tb),
		faults:   faults,
		History:  &History{},
		sessions: map[clientv3.LeaseID]struct{}{},
		dur:      12 * time.Second,
	}
	if Long() {
		e.dur = 3 * time.Minute
	}
	e.rnd = rand.New(rand.NewPCG(e.Seed, 0x5eed))
	tb.Logf("recipes fault suite %s: seed %d (replay with RECIPES_SEED=%d)", name, e.Seed, e.Seed)
	e.Cluster = testserver.Start(tb, testserver.WithMembers(3), testserver.WithClientProxies(), testserver.WithLogger(zap.NewNop()))
	e.start = time.Now()
	e.History.env = e
	tb.Cleanup(e.report)
	return e
}

// SetDuration overrides how long Context lasts.
func (e *Env) SetDuration(d time.Duration) { e.dur = d }

// Reached reports whether a long run's workload may stop: n reached
// target and the run has lasted LongAtLeast. It is false while target is 0
// (short mode: the workload runs until Context ends).
func (e *Env) Reached(n, target int64) bool {
	return target > 0 && n >= target && time.Since(e.start) >= LongAtLeast
}

// Context returns a context that ends with the test or after the run's
// duration: 12 s, 3 minutes in long mode, or what SetDuration set.
func (e *Env) Context() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), e.dur)
	e.T.Cleanup(cancel)
	return ctx
}

// Now is the time since the start of the run in nanoseconds, the clock of
// every History entry.
func (e *Env) Now() int64 { return int64(time.Since(e.start)) }

// Rand calls f with the run's seeded random source (serialized).
func (e *Env) Rand(f func(r *rand.Rand)) {
	e.rmu.Lock()
	defer e.rmu.Unlock()
	f(e.rnd)
}

// Intn returns a seeded random int in [0, n).
func (e *Env) Intn(n int) (v int) {
	e.Rand(func(r *rand.Rand) { v = r.IntN(n) })
	return v
}

// Op counts one operation of the workload.
func (e *Env) Op() { e.ops.Add(1) }

// Violation records a broken invariant and fails the test.
func (e *Env) Violation(format string, args ...any) {
	e.violations.Add(1)
	e.T.Errorf("VIOLATION: "+format, args...)
}

// Logf adds a line to the run's log, printed if the test fails.
func (e *Env) Logf(format string, args ...any) {
	e.lmu.Lock()
	defer e.lmu.Unlock()
	e.log = append(e.log, fmt.Sprintf("%8.3fs ", time.Since(e.start).Seconds())+fmt.Sprintf(format, args...))
}

func (e *Env) report() {
	if e.T.Failed() {
		e.lmu.Lock()
		e.T.Logf("fault log:\n%s", strings.Join(e.log, "\n"))
		e.lmu.Unlock()
	}
	var kinds []string
	for _, f := range AllFaults {
		if v, ok := e.faultCounts.Load(f); ok {
			kinds = append(kinds, fmt.Sprintf("%s=%d", f, v.(*atomic.Int64).Load()))
		}
	}
	mode := "short"
	if Long() {
		mode = "long"
	}
	msg := fmt.Sprintf("recipes fault suite %s (%s, seed %d): %d operations, %d faults injected [%s], %d violations, %.1fs",
		e.Name, mode, e.Seed, e.ops.Load(), e.injected.Load(), strings.Join(kinds, " "), e.violations.Load(), time.Since(e.start).Seconds())
	e.T.Log(msg)
	// Also on stdout, so `go test` without -v shows the counts.
	fmt.Println(msg)
}

// Worker is one simulated process: a client pinned to one member's proxy
// (so Blackhole and Pause hit it) and its current session.
type Worker struct {
	ID     int
	Member string
	Client *clientv3.Client
	env    *Env

	mu      sync.Mutex
	session *concurrency.Session
}

// Worker returns worker i, whose client reaches the cluster through the
// proxy of member i mod 3. It is closed at cleanup.
func (e *Env) Worker(i int) *Worker {
	members := e.Cluster.Members()
	m := members[i%len(members)].Name
	cli, err := e.Cluster.NewClient(clientv3.Config{
		Endpoints:            []string{e.Cluster.ProxyEndpoint(m)},
		DialTimeout:          2 * time.Second,
		DialKeepAliveTime:    2 * time.Second,
		DialKeepAliveTimeout: 2 * time.Second,
		Logger:               zap.NewNop(),
	})
	if err != nil {
		e.T.Fatalf("worker %d: %v", i, err)
	}
	e.T.Cleanup(func() { e.closeClient(i, cli) })
	return &Worker{ID: i, Member: m, Client: cli, env: e}
}

// clientCloseWait bounds a worker client's Close at cleanup.
const clientCloseWait = 30 * time.Second

// closeClient closes a worker's client, giving up after clientCloseWait.
// etcd's client (3.7.3) can hang in Close after many watches were
// opened and cancelled under faults: a watch substream that ends while its
// gRPC stream shuts down blocks on a channel nobody reads any more
// (watchGRPCStream.serveSubstream's deferred send on closingc), and Close
// waits for it for ever. That is etcd's goroutine, not a recipe's; the run
// is over by then, so the suite logs it and leaks the client rather than
// hang until the test binary's timeout.
func (e *Env) closeClient(i int, cli *clientv3.Client) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = cli.Close()
	}()
	select {
	case <-done:
	case <-time.After(clientCloseWait):
		e.T.Logf("worker %d: its etcd client did not close within %v (etcd client watch teardown); left behind", i, clientCloseWait)
	}
}

// Session returns the worker's live session, replacing one that ended (it
// expired, was revoked, or its client lost its keep-alives). New sessions
// are tracked for RevokeLease. It returns nil only when ctx ends.
func (w *Worker) Session(ctx context.Context) *concurrency.Session {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.session != nil {
		select {
		case <-w.session.Done():
			w.env.untrack(w.session.Lease())
			w.session = nil
		default:
			return w.session
		}
	}
	for ctx.Err() == nil {
		// Grant with a deadline (NewSession's own Grant would wait as long
		// as the keep-alive context lives), then keep the lease alive.
		gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		grant, err := w.Client.Grant(gctx, TTL)
		cancel()
		var s *concurrency.Session
		if err == nil {
			s, err = concurrency.NewSession(w.Client, concurrency.WithLease(grant.ID), concurrency.WithTTL(TTL))
		}
		if err == nil {
			w.session = s
			w.env.track(s.Lease())
			return s
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// Close ends the worker's session (revoking its lease if etcd is reachable).
func (w *Worker) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.session != nil {
		w.env.untrack(w.session.Lease())
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, _ = w.Client.Revoke(ctx, w.session.Lease())
		cancel()
		w.session.Orphan()
		w.session = nil
	}
}

func (e *Env) track(id clientv3.LeaseID) {
	e.smu.Lock()
	defer e.smu.Unlock()
	e.sessions[id] = struct{}{}
}

func (e *Env) untrack(id clientv3.LeaseID) {
	e.smu.Lock()
	defer e.smu.Unlock()
	delete(e.sessions, id)
}

// InjectFaults injects random faults of the kinds given to Start until the
// returned stop is called; stop heals the current fault, restarts every
// member and waits until the cluster serves again.
func (e *Env) InjectFaults() (stop func()) {
	if len(e.faults) == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			var gap time.Duration
			e.Rand(func(r *rand.Rand) { gap = time.Duration(200+r.IntN(800)) * time.Millisecond })
			select {
			case <-ctx.Done():
				return
			case <-time.After(gap):
			}
			e.injectOne(ctx)
		}
	}()
	return func() {
		cancel()
		<-done
		e.healAll()
	}
}

func (e *Env) count(f Fault) {
	e.injected.Add(1)
	v, _ := e.faultCounts.LoadOrStore(f, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// hold sleeps for d or until ctx ends (faults are always healed after).
func hold(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (e *Env) injectOne(ctx context.Context) {
	var (
		f    Fault
		m    string
		d    time.Duration
		pick int
	)
	members := e.Cluster.Members()
	e.Rand(func(r *rand.Rand) {
		// Deal the kinds from a shuffled deck, so that even a short run
		// injects every kind.
		if len(e.deck) == 0 {
			e.deck = slices.Clone(e.faults)
			r.Shuffle(len(e.deck), func(i, j int) { e.deck[i], e.deck[j] = e.deck[j], e.deck[i] })
		}
		f, e.deck = e.deck[0], e.deck[1:]
		m = members[r.IntN(len(members))].Name
		d = time.Duration(300+r.IntN(900)) * time.Millisecond
		pick = r.IntN(1 << 30)
	})
	bg := context.Background()
	switch f {
	case StopRestart:
		if err := e.Cluster.StopMember(bg, m); err != nil {
			e.Logf("stop %s: %v", m, err)
			return
		}
		e.count(f)
		e.Logf("stopped %s for %v", m, d)
		hold(ctx, d)
		e.restart(m)
	case KillLeader:
		lm, err := e.Cluster.KillLeader(bg)
		if err != nil {
			e.Logf("kill leader: %v", err)
			return
		}
		e.count(f)
		e.Logf("killed leader %s for %v", lm.Name, d)
		hold(ctx, d)
		e.restart(lm.Name)
	case Partition:
		if err := e.Cluster.Partition(m); err != nil {
			e.Logf("partition %s: %v", m, err)
			return
		}
		e.count(f)
		e.Logf("partitioned %s for %v", m, d)
		hold(ctx, d)
		if err := e.Cluster.Heal(m); err != nil {
			e.T.Errorf("heal %s: %v", m, err)
		}
	case Blackhole, Pause:
		if f == Pause {
			d = TTL*time.Second + d // past the TTL: the sessions expire
		} else {
			d = d / 2 // well below the TTL
		}
		if err := e.Cluster.Blackhole(m); err != nil {
			e.Logf("blackhole %s: %v", m, err)
			return
		}
		e.count(f)
		e.Logf("%s: proxy of %s stalled for %v", f, m, d)
		hold(ctx, d)
		if err := e.Cluster.Unblackhole(m); err != nil {
			e.T.Errorf("unblackhole %s: %v", m, err)
		}
	case RevokeLease:
		e.smu.Lock()
		var ids []clientv3.LeaseID
		for id := range e.sessions {
			ids = append(ids, id)
		}
		e.smu.Unlock()
		if len(ids) == 0 {
			return
		}
		slices.Sort(ids)
		id := ids[pick%len(ids)]
		rctx, cancel := context.WithTimeout(bg, 5*time.Second)
		err := e.Cluster.RevokeLease(rctx, id)
		cancel()
		if err != nil {
			e.Logf("revoke lease %x: %v", int64(id), err)
			return
		}
		e.count(f)
		e.Logf("revoked lease %x", int64(id))
	}
}

// restart restarts member m, retrying for up to 30 s.
func (e *Env) restart(m string) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := e.Cluster.RestartMember(ctx, m)
		cancel()
		if err == nil || errors.Is(err, testserver.ErrMemberRunning) {
			return
		}
		if time.Now().After(deadline) {
			e.T.Errorf("restart %s: %v", m, err)
			return
		}
		e.Logf("restart %s: %v (retrying)", m, err)
		time.Sleep(100 * time.Millisecond)
	}
}

// healAll undoes every fault and waits until a linearizable read works.
func (e *Env) healAll() {
	for _, m := range e.Cluster.Members() {
		_ = e.Cluster.Unblackhole(m.Name)
		_ = e.Cluster.Heal(m.Name)
		e.restart(m.Name)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := e.Cluster.Client().Get(ctx, "chaos-health")
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.T.Errorf("cluster unhealthy after the faults: %v", err)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Progress logs status() every 30 s (long mode) or 10 s until stop is
// called, so long runs show where they are.
func (e *Env) Progress(status func() string) (stop func()) {
	every := 10 * time.Second
	if Long() {
		every = 30 * time.Second
	}
	done := make(chan struct{})
	var once sync.Once
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				msg := fmt.Sprintf("%s: %.0fs: %s; %d ops, %d faults, %d violations",
					e.Name, time.Since(e.start).Seconds(), status(), e.ops.Load(), e.injected.Load(), e.violations.Load())
				e.T.Log(msg)
				if Long() {
					fmt.Println(msg)
				}
			}
		}
	}()
	return func() { once.Do(func() { close(done) }) }
}
