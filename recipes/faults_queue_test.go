package recipes_test

// The fault-injection suite of the queues. Like the lock suite
// (faults_test.go) and the barrier suite (faults_barrier_test.go) each
// test runs workers (each a client pinned to one member's proxy, with a
// 2 s session) against a 3-member cluster while recipes/internal/chaos
// injects random faults, then checks:
//
//   - Queue, at least once (Claim/Ack/Nack): the per-item history of
//     enqueues, claims, writes guarded by the claim, acks and nacks is
//     linearizable (porcupine, partitioned by item) against a model in
//     which an item is acked at most once, a guarded write or an ack needs
//     the latest claim, and at the end every enqueued item was acked; and
//     etcd's own event history of the queue (a watch from the start) shows
//     every item put once and deleted once, claims of one item never
//     overlapping, no claim of a deleted item, and nothing left.
//     Consumers crash mid-item (their session is orphaned: no Nack, no
//     revoke), nack, or lose their claim to lease faults.
//   - Producers enqueue WithID and send an Enqueue whose outcome was
//     unknown again until it is answered: etcd's history must show every
//     value put as exactly one item (retries counted and logged).
//   - Delayed items (TestFaultsQueueDelay, the at-least-once workload
//     with half the items enqueued WithNotBefore up to 1 s ahead): on top
//     of the above, no claim of an item returns before its time (one
//     clock: the test process's), and none is lost.
//   - Visibility timeout (TestFaultsQueueVisibilityTimeout): consumers
//     with a 2 s visibility timeout, some stuck past it while alive, some
//     extending first. The same checks: no two claims of one item exist at
//     once in etcd's history, and a stale claim's guarded writes and acks
//     never succeed.
//   - Batches (TestFaultsQueueBatch*): the same two workloads with
//     producers using EnqueueAll and consumers ClaimN or DequeueN, of up
//     to 16 items: the same per-item checks.
//   - Queue, at most once (Dequeue): no item is delivered twice
//     (porcupine, same model) and etcd's history shows every item put once
//     and deleted at most once; items lost to unknown outcomes are counted.
//
// Short mode runs each workload for ~12 s; RECIPES_LONG=1 runs the queue
// workloads until 10,000 items were acked (and 10,000 dequeued), and for
// at least chaos.LongAtLeast.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/recipes/internal/chaos"
)

// ---- the per-item queue model ----

type fqKind int

const (
	fqEnqueue fqKind = iota
	fqClaim          // Token: the claim's token
	fqUse            // a write guarded by the claim Token succeeded
	fqAck
	fqNack
	fqDequeue
	fqFinal // after the drain: the item must be gone, and acked if it was enqueued
)

type fqOutcome int

const (
	fqOK fqOutcome = iota
	fqLost
	fqUnknown
)

// fqOp is the input of one operation on one item (the output is unused).
type fqOp struct {
	Kind  fqKind
	Item  string
	Token int64
	Out   fqOutcome
}

// fqState is the model state of one item.
type fqState struct {
	enqueued bool  // an Enqueue took effect
	present  bool  // in the queue
	acked    bool  // removed by an Ack (or a Dequeue)
	holder   int64 // token of the latest claim that may still hold it; 0: none
}

// fqStep lists the states item s can be in after op. Ack and Nack whose
// outcome is unknown may or may not have happened; a lost claim (ErrClaimLost)
// tells only that the claim no longer holds.
func fqStep(s fqState, op fqOp) []fqState {
	holds := s.present && s.holder == op.Token && op.Token != 0
	release := s
	if s.holder == op.Token {
		release.holder = 0
	}
	switch op.Kind {
	case fqEnqueue:
		if s.enqueued {
			return nil
		}
		added := fqState{enqueued: true, present: true}
		if op.Out == fqOK {
			return []fqState{added}
		}
		return []fqState{added, s}
	case fqClaim:
		// A new claim may replace one whose lease expired unseen; a
		// claim handed out again (after a lost answer) keeps its token.
		if !s.present || op.Token < s.holder {
			return nil
		}
		n := s
		n.holder = op.Token
		return []fqState{n}
	case fqUse:
		if !holds {
			return nil
		}
		return []fqState{s}
	case fqAck:
		acked := fqState{enqueued: s.enqueued, acked: true}
		switch op.Out {
		case fqOK:
			if !holds {
				return nil
			}
			return []fqState{acked}
		case fqLost:
			return []fqState{release}
		default:
			if holds {
				return []fqState{acked, s, release}
			}
			return []fqState{s, release}
		}
	case fqNack:
		switch op.Out {
		case fqOK:
			if !holds {
				return nil
			}
			return []fqState{release}
		default:
			return []fqState{s, release}
		}
	case fqDequeue:
		if !s.present || s.holder != 0 {
			return nil
		}
		return []fqState{{enqueued: s.enqueued, acked: true}}
	case fqFinal:
		if s.present || (s.enqueued && !s.acked) {
			return nil
		}
		return []fqState{s}
	}
	return nil
}

func fqModel() porcupine.Model {
	m := porcupine.NondeterministicModel{
		Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
			byItem := map[string][]porcupine.Operation{}
			var items []string
			for _, op := range history {
				it := op.Input.(fqOp).Item
				if _, ok := byItem[it]; !ok {
					items = append(items, it)
				}
				byItem[it] = append(byItem[it], op)
			}
			out := make([][]porcupine.Operation, 0, len(items))
			for _, it := range items {
				out = append(out, byItem[it])
			}
			return out
		},
		Init: func() []any { return []any{fqState{}} },
		Step: func(state, input, _ any) []any {
			next := fqStep(state.(fqState), input.(fqOp))
			out := make([]any, len(next))
			for i, s := range next {
				out[i] = s
			}
			return out
		},
		Equal: func(a, b any) bool { return a.(fqState) == b.(fqState) },
		DescribeOperation: func(input, _ any) string {
			op := input.(fqOp)
			kind := [...]string{"enqueue", "claim", "use", "ack", "nack", "dequeue", "final"}[op.Kind]
			out := [...]string{"ok", "lost", "unknown"}[op.Out]
			return fmt.Sprintf("%s %s tok=%d %s", kind, op.Item, op.Token, out)
		},
		DescribeState: func(state any) string { return fmt.Sprintf("%+v", state.(fqState)) },
	}
	return m.ToModel()
}

// fqRecord adds op to the history. Unknown outcomes stay open to the end.
func fqRecord(env *chaos.Env, client int, op fqOp, call int64) {
	ret := env.Now()
	if op.Out == fqUnknown {
		ret = math.MaxInt64 / 2
	}
	env.History.Add(client, op, nil, call, ret)
	env.Op()
}

// fqOutcomeOf classifies the error of Ack or Nack.
func fqOutcomeOf(err error) fqOutcome {
	switch {
	case err == nil:
		return fqOK
	case errors.Is(err, recipes.ErrClaimLost):
		return fqLost
	default:
		return fqUnknown
	}
}

// ---- etcd's own history of the queue ----

// fqServerLog records every event under a prefix from the start of the
// run, through a client of all members, resuming after broken watches.
type fqServerLog struct {
	mu     sync.Mutex
	events []*clientv3.Event
	next   int64
	cancel context.CancelFunc
	done   chan struct{}
}

func fqWatchServer(t *testing.T, cli *clientv3.Client, prefix string) *fqServerLog {
	t.Helper()
	resp, err := cli.Get(context.Background(), prefix, clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &fqServerLog{next: resp.Header.Revision + 1, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for ctx.Err() == nil {
			l.mu.Lock()
			from := l.next
			l.mu.Unlock()
			for wr := range cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithRev(from)) {
				if wr.Err() != nil {
					break
				}
				l.mu.Lock()
				for _, ev := range wr.Events {
					l.events = append(l.events, ev)
					l.next = ev.Kv.ModRevision + 1
				}
				l.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	t.Cleanup(l.stop)
	return l
}

func (l *fqServerLog) stop() {
	l.cancel()
	<-l.done
}

// finish writes a marker key under prefix and returns every event before
// it, once the log has seen it.
func (l *fqServerLog) finish(t *testing.T, cli *clientv3.Client, marker string) []*clientv3.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := cli.Put(ctx, marker, "end")
	if err != nil {
		t.Fatalf("marker: %v", err)
	}
	for {
		l.mu.Lock()
		n := l.next
		l.mu.Unlock()
		if n > resp.Header.Revision {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("server log did not reach revision %d", resp.Header.Revision)
		case <-time.After(20 * time.Millisecond):
		}
	}
	l.stop()
	var evs []*clientv3.Event
	for _, ev := range l.events {
		if ev.Kv.ModRevision < resp.Header.Revision {
			evs = append(evs, ev)
		}
	}
	return evs
}

// fqServerCheck checks etcd's history of a queue under prefix: every value
// was put in exactly one item key, every item key was put once and deleted
// at most once, claims of one item never overlap and never follow the
// item's deletion. It returns the values whose item was deleted.
func fqServerCheck(env *chaos.Env, prefix string, evs []*clientv3.Event) (deleted map[string]bool) {
	items, claims := prefix+"/items/", prefix+"/claims/"
	valueOf := map[string]string{} // item key -> value
	puts := map[string]int{}       // value -> item puts
	gone := map[string]bool{}      // item key -> deleted
	claimed := map[string]bool{}   // claim key -> exists
	deleted = map[string]bool{}
	for _, ev := range evs {
		key := string(ev.Kv.Key)
		switch {
		case strings.HasPrefix(key, items):
			if ev.Type == clientv3.EventTypePut {
				if _, ok := valueOf[key]; ok {
					env.Violation("item key %s put twice (revision %d)", key, ev.Kv.ModRevision)
				}
				valueOf[key] = string(ev.Kv.Value)
				puts[string(ev.Kv.Value)]++
				continue
			}
			if gone[key] {
				env.Violation("item key %s deleted twice (revision %d)", key, ev.Kv.ModRevision)
			}
			gone[key] = true
			deleted[valueOf[key]] = true
		case strings.HasPrefix(key, claims):
			item := items + strings.TrimPrefix(key, claims)
			if ev.Type == clientv3.EventTypePut {
				if claimed[key] {
					env.Violation("claim %s put while the previous claim of the item still existed (revision %d)", key, ev.Kv.ModRevision)
				}
				if gone[item] {
					env.Violation("claim %s of a deleted item (revision %d)", key, ev.Kv.ModRevision)
				}
				claimed[key] = true
			} else {
				claimed[key] = false
			}
		}
	}
	for v, n := range puts {
		if n != 1 {
			env.Violation("value %s enqueued as %d items", v, n)
		}
	}
	return deleted
}

// ---- workloads ----

// fqLongItems is how many items a long run gets through.
const fqLongItems = 10_000

// fqDue records the not-before time of every delayed item, by value.
type fqDue struct {
	mu      sync.Mutex
	due     map[string]time.Time
	checked atomic.Int64 // deliveries of delayed items checked
}

func (d *fqDue) set(v string, t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.due == nil {
		d.due = map[string]time.Time{}
	}
	if old, ok := d.due[v]; !ok || t.Before(old) {
		d.due[v] = t
	}
}

// check reports a violation if item v was handed out (the call returned
// at now, so it was handed out no later) before its time.
func (d *fqDue) check(env *chaos.Env, v string, now time.Time) {
	if d == nil {
		return
	}
	d.mu.Lock()
	at, ok := d.due[v]
	d.mu.Unlock()
	if ok && now.Before(at) {
		env.Violation("item %s handed out %v before its time", v, at.Sub(now))
	}
	if ok {
		d.checked.Add(1)
	}
}

// fqProduceWith enqueues values "<prefix>-<worker>-<seq>" until ctx ends
// or enough items were enqueued in a long run (target > 0, see
// chaos.Env.Reached), keeping at most 64 in flight. When due is not nil,
// half the items get a random delay of up to 1 s, recorded in due; with
// batch > 0 it enqueues batches of up to batch items with EnqueueAll.
func fqProduceWith(ctx context.Context, env *chaos.Env, w *chaos.Worker, prefix string, enqueued *atomic.Int64, inFlight func() int64, target int64, due *fqDue, batch int) {
	q := recipes.NewQueue(w.Client, prefix)
	for seq := 0; ctx.Err() == nil && !env.Reached(enqueued.Load(), target); seq++ {
		for inFlight() > 64 && ctx.Err() == nil {
			time.Sleep(5 * time.Millisecond)
		}
		if batch > 0 {
			// EnqueueAll of 1 to batch items, sent once: an unknown
			// outcome leaves every item of it unknown.
			var vs []string
			for range 1 + env.Intn(batch) {
				vs = append(vs, fmt.Sprintf("%s-%d-%d", prefix, w.ID, seq))
				seq++
			}
			octx, cancel := context.WithTimeout(ctx, 3*time.Second)
			call := env.Now()
			_, err := q.EnqueueAll(octx, vs)
			cancel()
			out := fqOK
			if err != nil {
				out = fqUnknown
			} else {
				enqueued.Add(int64(len(vs)))
			}
			for _, v := range vs {
				fqRecord(env, w.ID, fqOp{Kind: fqEnqueue, Item: v, Out: out}, call)
			}
			continue
		}
		v := fmt.Sprintf("%s-%d-%d", prefix, w.ID, seq)
		call := env.Now()
		// WithID: an Enqueue whose outcome is unknown is sent again with
		// the same id until it gets an answer; the server check below
		// finds any value put as two items.
		opts := []recipes.EnqueueOption{recipes.WithID(v)}
		if due != nil && env.Intn(2) == 0 {
			at := time.Now().Add(time.Duration(1+env.Intn(1000)) * time.Millisecond)
			// Recorded before the Enqueue: the earliest it may go out.
			due.set(v, at)
			opts = append(opts, recipes.WithNotBefore(at))
		}
		var err error
		for try := 0; try == 0 || err != nil && ctx.Err() == nil && !errors.Is(err, recipes.ErrInvalidArgument); try++ {
			octx, cancel := context.WithTimeout(ctx, 3*time.Second)
			var it recipes.Item
			it, err = q.Enqueue(octx, v, opts...)
			cancel()
			if err != nil {
				retriedEnqueues.Add(1)
			} else if it.Duplicate {
				duplicateEnqueues.Add(1)
			}
		}
		out := fqOK
		if err != nil {
			out = fqUnknown // it may or may not have been added
		} else {
			enqueued.Add(1)
		}
		fqRecord(env, w.ID, fqOp{Kind: fqEnqueue, Item: v, Out: out}, call)
	}
}

// retriedEnqueues counts Enqueue attempts that failed and were sent again
// WithID; duplicateEnqueues the retries that found their item added by an
// earlier attempt.
var retriedEnqueues, duplicateEnqueues atomic.Int64

// fqStats counts what happened to claims.
type fqStats struct {
	enqueued, claims, acked, drained, crashes, nacks, lostClaims, unknownAcks, uses atomic.Int64
	stalls, extends, lostExtends                                                    atomic.Int64 // visibility timeout
}

// fqProcessWith handles one claimed item like a worker process would:
// crash with it (crash is called), nack it, or write its result under the
// claim's Guard and ack it. With a visibility timeout some consumers also
// get stuck with the item past the timeout (alive, session kept alive),
// and some extend their claim first.
func fqProcessWith(env *chaos.Env, w *chaos.Worker, prefix string, cl *recipes.Claim, st *fqStats, crash func(), cfg fqConfig) {
	r := env.Intn(100)
	if r < 4 {
		st.crashes.Add(1)
		crash()
		return
	}
	if cfg.vis > 0 {
		switch v := env.Intn(100); {
		case v < 8:
			st.stalls.Add(1)
			time.Sleep(cfg.vis + time.Duration(env.Intn(1500))*time.Millisecond)
		case v < 30:
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			switch err := cl.Extend(ctx); {
			case err == nil:
				st.extends.Add(1)
			case errors.Is(err, recipes.ErrClaimLost):
				st.lostExtends.Add(1) // expired under a fault: go on, the ack must fail
			}
			cancel()
		}
	}
	if r < 10 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		call := env.Now()
		err := cl.Nack(ctx)
		cancel()
		st.nacks.Add(1)
		fqRecord(env, w.ID, fqOp{Kind: fqNack, Item: cl.Value(), Token: cl.Token(), Out: fqOutcomeOf(err)}, call)
		return
	}
	for i := range 1 + env.Intn(2) {
		if env.Intn(5) == 0 {
			time.Sleep(time.Duration(env.Intn(30)) * time.Millisecond)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		call := env.Now()
		resp, err := w.Client.Txn(ctx).If(cl.Guard()).
			Then(clientv3.OpPut(prefix+"-results/"+cl.Value(), fmt.Sprintf("%d/%d", cl.Token(), i))).Commit()
		cancel()
		if err != nil || !resp.Succeeded {
			break // cut off, or the claim is gone
		}
		st.uses.Add(1)
		fqRecord(env, w.ID, fqOp{Kind: fqUse, Item: cl.Value(), Token: cl.Token()}, call)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	call := env.Now()
	err := cl.Ack(ctx)
	cancel()
	out := fqOutcomeOf(err)
	switch out {
	case fqOK:
		st.acked.Add(1)
	case fqLost:
		st.lostClaims.Add(1)
	default:
		st.unknownAcks.Add(1)
	}
	fqRecord(env, w.ID, fqOp{Kind: fqAck, Item: cl.Value(), Token: cl.Token(), Out: out}, call)
}

// fqDrain claims and acks what is left once the faults are over, until the
// queue is empty (claims of crashed consumers come free when their leases
// expire).
func fqDrain(env *chaos.Env, prefix string, st *fqStats) {
	w := env.Worker(60)
	defer w.Close()
	q := recipes.NewQueue(w.Client, prefix)
	deadline := time.Now().Add(2 * time.Minute)
	var s *concurrency.Session
	var con *recipes.Consumer
	for time.Now().Before(deadline) {
		if ns := w.Session(context.Background()); ns != s {
			s, con = ns, recipes.NewConsumer(ns, prefix)
		}
		ctx, cancel := context.WithTimeout(context.Background(), (chaos.TTL+2)*time.Second)
		call := env.Now()
		cl, err := con.Claim(ctx)
		cancel()
		if err != nil {
			if n, lerr := q.Len(context.Background()); lerr == nil && n == 0 {
				return
			}
			continue
		}
		st.claims.Add(1)
		fqRecord(env, w.ID, fqOp{Kind: fqClaim, Item: cl.Value(), Token: cl.Token()}, call)
		for range 5 {
			actx, acancel := context.WithTimeout(context.Background(), 2*time.Second)
			call = env.Now()
			err = cl.Ack(actx)
			acancel()
			out := fqOutcomeOf(err)
			fqRecord(env, w.ID, fqOp{Kind: fqAck, Item: cl.Value(), Token: cl.Token(), Out: out}, call)
			if out == fqOK {
				st.acked.Add(1)
				st.drained.Add(1)
			}
			if out != fqUnknown {
				break
			}
		}
	}
	env.Violation("the drain did not empty queue %s within 2 minutes", prefix)
}

// fqItems returns every item named in the history, and those whose Enqueue
// succeeded.
func fqItems(env *chaos.Env) (all, enqueued map[string]bool) {
	all, enqueued = map[string]bool{}, map[string]bool{}
	for _, op := range env.History.Operations() {
		in := op.Input.(fqOp)
		all[in.Item] = true
		if in.Kind == fqEnqueue && in.Out == fqOK {
			enqueued[in.Item] = true
		}
	}
	return all, enqueued
}

// fqCheckEmpty checks that nothing but the end marker is left under prefix.
func fqCheckEmpty(env *chaos.Env, prefix string) {
	resp, err := env.Cluster.Client().Get(context.Background(), prefix+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		env.T.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if k := string(kv.Key); k != prefix+"/zz-end" && k != prefix+"/floor" && !strings.HasPrefix(k, prefix+"/ids/") {
			env.Violation("key %s left after the drain", kv.Key)
		}
	}
}

func TestFaultsQueueAtLeastOnce(t *testing.T) {
	fqAtLeastOnce(t, "queue-at-least-once", "chaos-q1", fqConfig{})
}

// fqConfig varies the at-least-once workload.
type fqConfig struct {
	delays bool          // half the items are delayed; none may go out early
	vis    time.Duration // consumers' visibility timeout (0: none)
	batch  int           // producers use EnqueueAll, consumers ClaimN or DequeueN, of up to batch items
}

// fqAtLeastOnce runs the at-least-once workload (see the top of the file).
func fqAtLeastOnce(t *testing.T, name, prefix string, cfg fqConfig) {
	env := chaos.Start(t, name, chaos.AllFaults...)
	var target int64
	if chaos.Long() {
		target = fqLongItems
		env.SetDuration(20 * time.Minute)
	}
	var due *fqDue
	if cfg.delays {
		due = &fqDue{}
	}
	log := fqWatchServer(t, env.Cluster.Client(), prefix+"/")
	ctx := env.Context()
	var st fqStats
	inFlight := func() int64 { return st.enqueued.Load() - st.acked.Load() }
	stop := env.InjectFaults()

	var producers, consumers sync.WaitGroup
	var producing atomic.Bool
	producing.Store(true)
	for i := range 2 {
		w := env.Worker(i)
		producers.Add(1)
		go func() {
			defer producers.Done()
			fqProduceWith(ctx, env, w, prefix, &st.enqueued, inFlight, target, due, cfg.batch)
		}()
	}
	for i := 2; i < 6; i++ {
		w := env.Worker(i)
		consumers.Add(1)
		go func() {
			defer consumers.Done()
			defer w.Close()
			var s *concurrency.Session
			var con *recipes.Consumer
			for ctx.Err() == nil {
				if ns := w.Session(ctx); ns != s || con == nil {
					if s = ns; s == nil {
						return
					}
					var opts []recipes.QueueOption
					if cfg.vis > 0 {
						opts = append(opts, recipes.WithVisibilityTimeout(cfg.vis))
					}
					con = recipes.NewConsumer(s, prefix, opts...)
				}
				cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				call := env.Now()
				var cls []*recipes.Claim
				var err error
				if cfg.batch > 0 {
					cls, err = con.ClaimN(cctx, cfg.batch)
				} else {
					var cl *recipes.Claim
					cl, err = con.Claim(cctx)
					cls = []*recipes.Claim{cl}
				}
				cancel()
				if err != nil {
					if !producing.Load() && errors.Is(err, context.DeadlineExceeded) {
						return // long mode: produced everything, nothing left to claim
					}
					continue
				}
				now := time.Now()
				for _, cl := range cls {
					st.claims.Add(1)
					due.check(env, cl.Value(), now)
					fqRecord(env, w.ID, fqOp{Kind: fqClaim, Item: cl.Value(), Token: cl.Token()}, call)
				}
				crashed := false
				for _, cl := range cls {
					if crashed {
						break // the rest of the batch dies with the process
					}
					fqProcessWith(env, w, prefix, cl, &st, func() {
						// The process dies with its claim: no Nack, no
						// revoke; its lease expires and a new process takes
						// its place.
						s.Orphan()
						con = nil
						crashed = true
					}, cfg)
				}
			}
		}()
	}
	producers.Wait()
	producing.Store(false)
	consumers.Wait()
	stop()
	fqDrain(env, prefix, &st)

	all, enqueued := fqItems(env)
	final := env.Now()
	for it := range all {
		env.History.Add(99, fqOp{Kind: fqFinal, Item: it}, nil, final, final)
	}
	evs := log.finish(t, env.Cluster.Client(), prefix+"/zz-end")
	deleted := fqServerCheck(env, prefix, evs)
	for it := range enqueued {
		if !deleted[it] {
			env.Violation("enqueued item %s was never removed", it)
		}
	}
	fqCheckEmpty(env, prefix)
	t.Logf("enqueues WithID: %d attempts retried, %d retries found their item already added", retriedEnqueues.Load(), duplicateEnqueues.Load())
	t.Logf("queue at-least-once: %d items enqueued (%d named), %d claims, %d acked (%d by the final drain), %d guarded writes, "+
		"%d consumer crashes mid-item, %d nacks, %d acks refused (claim lost to a fault), %d acks with unknown outcome; %d etcd events checked",
		st.enqueued.Load(), len(all), st.claims.Load(), st.acked.Load(), st.drained.Load(), st.uses.Load(),
		st.crashes.Load(), st.nacks.Load(), st.lostClaims.Load(), st.unknownAcks.Load(), len(evs))
	if target > 0 && int64(len(deleted)) < target {
		t.Errorf("only %d items went through, want %d", len(deleted), target)
	}
	if cfg.vis > 0 {
		t.Logf("visibility timeout %v: %d consumers stuck past it, %d claims extended, %d found expired by Extend", cfg.vis, st.stalls.Load(), st.extends.Load(), st.lostExtends.Load())
	}
	if due != nil {
		t.Logf("delays: %d deliveries of delayed items checked against their time", due.checked.Load())
	}
	env.CheckLinearizable(fqModel(), env.History)
}

func TestFaultsQueueVisibilityTimeout(t *testing.T) {
	fqAtLeastOnce(t, "queue-visibility-timeout", "chaos-qv", fqConfig{vis: 2 * time.Second})
}

func TestFaultsQueueBatchAtLeastOnce(t *testing.T) {
	fqAtLeastOnce(t, "queue-batch-at-least-once", "chaos-qb1", fqConfig{batch: 16})
}

func TestFaultsQueueDelay(t *testing.T) {
	fqAtLeastOnce(t, "queue-delay", "chaos-qd", fqConfig{delays: true})
}

func TestFaultsQueueAtMostOnce(t *testing.T) {
	fqAtMostOnce(t, "queue-at-most-once", "chaos-q0", 0)
}

func TestFaultsQueueBatchAtMostOnce(t *testing.T) {
	fqAtMostOnce(t, "queue-batch-at-most-once", "chaos-qb0", 16)
}

// fqAtMostOnce runs the at-most-once workload, with EnqueueAll and
// DequeueN of up to batch items if batch > 0.
func fqAtMostOnce(t *testing.T, name, prefix string, batch int) {
	env := chaos.Start(t, name, chaos.AllFaults...)
	var target int64
	if chaos.Long() {
		target = fqLongItems
		env.SetDuration(20 * time.Minute)
	}
	log := fqWatchServer(t, env.Cluster.Client(), prefix+"/")
	ctx := env.Context()
	var enqueued, dequeued, failed atomic.Int64
	inFlight := func() int64 { return enqueued.Load() - dequeued.Load() - failed.Load() }
	stop := env.InjectFaults()

	var producers, consumers sync.WaitGroup
	var producing atomic.Bool
	producing.Store(true)
	for i := range 2 {
		w := env.Worker(i)
		producers.Add(1)
		go func() {
			defer producers.Done()
			fqProduceWith(ctx, env, w, prefix, &enqueued, inFlight, target, nil, batch)
		}()
	}
	dequeue := func(ctx context.Context, w *chaos.Worker, q *recipes.Queue) error {
		dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		call := env.Now()
		var vs []string
		var err error
		if batch > 0 {
			vs, err = q.DequeueN(dctx, batch)
		} else {
			var v string
			v, err = q.Dequeue(dctx)
			vs = []string{v}
		}
		cancel()
		if err != nil {
			return err
		}
		for _, v := range vs {
			dequeued.Add(1)
			fqRecord(env, w.ID, fqOp{Kind: fqDequeue, Item: v}, call)
		}
		return nil
	}
	for i := 2; i < 6; i++ {
		w := env.Worker(i)
		consumers.Add(1)
		go func() {
			defer consumers.Done()
			q := recipes.NewQueue(w.Client, prefix)
			for ctx.Err() == nil {
				err := dequeue(ctx, w, q)
				switch {
				case err == nil:
				case !producing.Load() && errors.Is(err, context.DeadlineExceeded):
					return
				default:
					failed.Add(1) // may hide an item removed and lost
				}
			}
		}()
	}
	producers.Wait()
	producing.Store(false)
	consumers.Wait()
	stop()

	// Drain what is left.
	w := env.Worker(60)
	q := recipes.NewQueue(w.Client, prefix)
	for deadline := time.Now().Add(time.Minute); ; {
		if err := dequeue(context.Background(), w, q); err != nil {
			if n, lerr := q.Len(context.Background()); lerr == nil && n == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			env.Violation("the drain did not empty queue %s within a minute", prefix)
			break
		}
	}

	all, ok := fqItems(env)
	evs := log.finish(t, env.Cluster.Client(), prefix+"/zz-end")
	deleted := fqServerCheck(env, prefix, evs)
	delivered := map[string]bool{}
	for _, op := range env.History.Operations() {
		if in := op.Input.(fqOp); in.Kind == fqDequeue {
			delivered[in.Item] = true
			if !deleted[in.Item] {
				env.Violation("item %s delivered but never deleted in etcd", in.Item)
			}
		}
	}
	lost := 0
	for it := range ok {
		if !delivered[it] {
			lost++
		}
	}
	fqCheckEmpty(env, prefix)
	t.Logf("queue at-most-once: %d items enqueued (%d named), %d delivered, %d dequeue calls failed under faults, %d items lost to unknown outcomes (allowed at most once); %d etcd events checked",
		enqueued.Load(), len(all), dequeued.Load(), failed.Load(), lost, len(evs))
	if target > 0 && int64(len(deleted)) < target {
		t.Errorf("only %d items went through, want %d", len(deleted), target)
	}
	env.CheckLinearizable(fqModel(), env.History)
}
