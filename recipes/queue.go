package recipes

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Queue is a multi-producer, multi-consumer FIFO queue stored under a key
// prefix.
//
// Layout. Items live under "<prefix>/items/" and are never rewritten. An
// item's key is "<hint>-<random>", where hint is the store revision read
// just before the item was written, as 16 hex digits: an Enqueue that
// returned before another one started always has the smaller key, so key
// order is FIFO order and a consumer finds the head with a small range
// read, instead of sorting the whole queue by revision on every dequeue as
// etcd's recipe does. Claims made by a [Consumer] live under
// "<prefix>/claims/", and "<prefix>/floor" holds a key below which no item
// is left, where consumers start reading: etcd keeps every deleted key in
// its index until the next compaction, and reading from the first item
// ever enqueued would walk all of them.
//
// Dequeue is at-most-once: the item is deleted as it is handed out, so a
// consumer that crashes before processing it loses it. [Consumer.Claim]
// gives at-least-once delivery; both kinds of consumer may share one
// queue, and Dequeue never takes a claimed item.
//
// A dequeue reads the head and removes the oldest item still there in one
// nested transaction that tries up to [WithCandidates] items in order, so
// consumers that race for the head do not fail and retry: each takes the
// next item. When the queue is empty it opens a watch at the current
// revision, waits until etcd confirms it, and only then reads again. Such
// a watch is synced, so it wakes within a round trip of the next Enqueue,
// and no item put between the read and the watch can be missed.
type Queue struct {
	core *queueCore
}

// QueueOption configures a [Queue], [PriorityQueue] or [Consumer].
type QueueOption func(*queueOptions)

type queueOptions struct {
	candidates int
}

// WithCandidates sets the most of the oldest free items one dequeue or
// claim transaction tries, oldest first (default 16). It bounds how many
// consumers can take items at the same moment without a retry; each
// transaction still takes the oldest item left. Within that bound the
// number adapts to the contention seen: every candidate is carried by the
// transaction through raft, so trying more than needed costs CPU on every
// member.
func WithCandidates(n int) QueueOption {
	return func(o *queueOptions) {
		if n > 0 {
			o.candidates = n
		}
	}
}

// NewQueue returns the FIFO queue stored under prefix ("jobs" and "jobs/"
// name the same queue). An empty prefix makes every call fail with
// ErrInvalidArgument.
func NewQueue(client *clientv3.Client, prefix string, opts ...QueueOption) *Queue {
	q := &Queue{core: newQueueCore(client, prefix, opts)}
	q.core.fifo = true
	return q
}

// Enqueue appends value to the queue.
//
// If Enqueue fails with an etcd error the item may or may not have been
// added; trying again may add it twice.
func (q *Queue) Enqueue(ctx context.Context, value string) error {
	_, err := q.core.put(ctx, "", value)
	return err
}

// Dequeue removes and returns the oldest item, blocking until there is one,
// ctx is done or the client is closed.
//
// Delivery is at most once: no item is ever returned twice, but an item
// is lost if the caller crashes after Dequeue removed it, or if the
// transaction that removed it fails in a way that hides its outcome
// (Dequeue then goes on with the next item). Use [Consumer.Claim] when
// every item must be processed.
func (q *Queue) Dequeue(ctx context.Context) (string, error) {
	kv, err := q.core.dequeue(ctx)
	if err != nil {
		return "", err
	}
	return string(kv.Value), nil
}

// Len returns the number of items in the queue, claimed or not.
func (q *Queue) Len(ctx context.Context) (int, error) {
	return q.core.length(ctx)
}

// queueCore is what Queue, PriorityQueue and Consumer share: the key
// layout, the head scan, the nested take transaction and the wait.
type queueCore struct {
	client *clientv3.Client
	kv     clientv3.KV // for writes: see onceKV
	prefix string      // normalized: one trailing "/"
	items  string      // prefix + "items/"
	claims string      // prefix + "claims/"
	err    error       // invalid prefix
	opts   queueOptions
	width  atomic.Int32 // candidates to try next: see takeWidth

	// The floor (see put and advanceFloor): no item below floorKey's
	// value exists or can be added, so head scans start there instead of
	// walking etcd's index over every item ever deleted.
	fifo       bool   // keys are "<hint>-<random>" (Queue); false: unknown or priority layout
	floorKey   string // prefix + "floor"
	floor      atomic.Pointer[string]
	untilFloor atomic.Int64 // counts takes down to the next floor move
}

// defaultScanLimit is how many item keys one head scan reads at first.
const defaultScanLimit = 64

func newQueueCore(client *clientv3.Client, prefix string, opts []QueueOption) *queueCore {
	o := queueOptions{candidates: 16}
	for _, opt := range opts {
		opt(&o)
	}
	p, err := normalizePrefix(prefix)
	q := &queueCore{
		client: client,
		kv:     onceKV(client),
		prefix: p,
		items:  p + "items/",
		claims: p + "claims/",
		err:    err,
		opts:   o,
	}
	q.floorKey = p + "floor"
	// Start the count at a random point, so that consumers that live for
	// fewer than floorEvery takes move the floor too, now and then.
	q.untilFloor.Store(1 + mrand.Int64N(floorEvery))
	q.width.Store(int32(min(4, o.candidates)))
	return q
}

// takeWidth is how many candidates the next take transaction tries.
func (q *queueCore) takeWidth() int { return int(q.width.Load()) }

// adapt sets the width after a take: taking the candidate at index i means
// i older ones went to other consumers since the scan, so try twice as
// many as that next time (at least 4); taking none (i < 0) doubles the
// width.
func (q *queueCore) adapt(i int) {
	w := q.takeWidth()
	if i < 0 {
		w *= 2
	} else {
		w = max(4, 2*(i+1))
	}
	q.width.Store(int32(max(1, min(w, q.opts.candidates))))
}

// claimKey is the claim key that guards the item stored at item.
func (q *queueCore) claimKey(item string) string {
	return q.claims + strings.TrimPrefix(item, q.items)
}

// itemKey is the item guarded by claim key claim.
func (q *queueCore) itemKey(claim string) string {
	return q.items + strings.TrimPrefix(claim, q.claims)
}

// put writes value as a new item under items+sub and returns its key. The
// hint read first makes the key larger than the key of every item whose
// put returned before this one started.
//
// The floor. Deleted items stay in etcd's key index, as tombstones, until
// the next compaction, and a range read walks over them: a scan from the
// start of the items would cost more with every item ever dequeued.
// Consumers of a FIFO queue therefore keep a floor, the key "<prefix>/floor"
// holding an item key below which no item exists, and scan from there. A
// put keeps that true by committing only if the floor was last moved at or
// before its hint's revision (so its key is above the floor); otherwise it
// draws a fresh hint and tries again. A priority queue has no floor (its
// keys are ordered by priority first): its puts require that there is none.
func (q *queueCore) put(ctx context.Context, sub, value string) (string, error) {
	if q.err != nil {
		return "", q.err
	}
	op := "enqueue to " + q.prefix
	var hint int64
	for b := newBackoff(); ; {
		resp, err := getAtLeast(ctx, q.client, 0, clientv3.OpGet(q.floorKey, clientv3.WithCountOnly()))
		if err == nil {
			hint = resp.Header.Revision
			break
		}
		if context.Cause(ctx) != nil || !retryable(err) {
			return "", attemptErr(ctx, op, err)
		}
		if err := sleepOrCause(ctx, b.next()); err != nil {
			return "", fmt.Errorf("recipes: %s: %w", op, err)
		}
	}
	for {
		key := fmt.Sprintf("%s%s%016x-%s", q.items, sub, hint, rand.Text())
		floorCmp := clientv3.Compare(clientv3.ModRevision(q.floorKey), "<", hint+1)
		if !q.fifo {
			floorCmp = clientv3.Compare(clientv3.CreateRevision(q.floorKey), "=", 0)
		}
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		resp, err := q.kv.Txn(actx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0), floorCmp).
			Then(clientv3.OpPut(key, value)).
			Else(clientv3.OpGet(q.floorKey, clientv3.WithKeysOnly())).
			Commit()
		cancel()
		if err != nil {
			return "", attemptErr(ctx, op, err)
		}
		if resp.Succeeded {
			return key, nil
		}
		if !q.fifo && len(resp.Responses[0].GetResponseRange().GetKvs()) > 0 {
			return "", fmt.Errorf("%w: %s: the prefix holds a FIFO queue", ErrInvalidArgument, op)
		}
		// The floor moved since the hint (or 128 random bits collided):
		// the revision of this answer is a fresh hint.
		hint = resp.Header.Revision
	}
}

// scanFloor returns where head scans start: the floor, or the first item.
func (q *queueCore) scanFloor() string {
	if f := q.floor.Load(); f != nil && *f > q.items {
		return *f
	}
	return q.items
}

// learnFloor records floor f read from etcd. Floors only move up, and any
// floor read once stays a valid (if lower than needed) place to start.
func (q *queueCore) learnFloor(f string) {
	for {
		old := q.floor.Load()
		if old != nil && *old >= f {
			return
		}
		if q.floor.CompareAndSwap(old, &f) {
			return
		}
	}
}

// floorEvery is how many takes a consumer makes between attempts to move
// the floor.
const floorEvery = 128

// advanceFloor moves the floor up to the first item of snapshot s, once
// every floorEvery takes, if the queue has the FIFO layout. The transaction
// checks that the floor did not move since s was read and that no item
// exists between the old floor and the new one: an item put after s with a
// hint older than s could be there, and puts that start later see the new
// floor. It is best effort: on any failure the floor stays.
func (q *queueCore) advanceFloor(ctx context.Context, s *queueSnap) {
	if q.untilFloor.Add(-1)%floorEvery != 0 || len(s.items) == 0 {
		return
	}
	to := string(s.items[0].Key)
	from := q.scanFloor()
	if to <= from {
		return
	}
	if !q.fifo {
		for _, kv := range s.items {
			if !isFIFOItem(strings.TrimPrefix(string(kv.Key), q.items)) {
				return
			}
		}
	}
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	resp, err := q.kv.Txn(actx).If(
		clientv3.Compare(clientv3.ModRevision(q.floorKey), "=", s.floorRev),
		clientv3.Compare(clientv3.CreateRevision(from), "=", 0).WithRange(to),
	).Then(clientv3.OpPut(q.floorKey, to)).Commit()
	if err == nil && resp.Succeeded {
		q.learnFloor(to)
	}
}

// isFIFOItem reports whether an item key (after "items/") has the layout of
// a FIFO queue's keys, "<16 hex digits>-<random>", and not a priority
// queue's "<4 hex digits>/...".
func isFIFOItem(k string) bool {
	if len(k) < 18 || k[16] != '-' || strings.Contains(k, "/") {
		return false
	}
	for _, c := range k[:16] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// attemptErr classifies the error of a single bounded attempt: when the
// caller's ctx is still live, a deadline is the attempt's own and says
// nothing about ctx.
func attemptErr(ctx context.Context, op string, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		return fmt.Errorf("recipes: %s: %w", op, cause)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s: no answer within %v, outcome unknown", ErrEtcd, op, attemptTimeout)
	}
	return etcdErr(op, err)
}

// queueSnap is one consistent read of the head of the queue.
type queueSnap struct {
	rev      int64
	items    []*mvccpb.KeyValue // keys only, in key (FIFO) order
	claims   map[string]*mvccpb.KeyValue
	more     bool
	scanned  int64
	floorRev int64 // mod revision of the floor key (0: none)
}

// scan reads up to limit item keys from the head and every claim key in one
// read-only transaction (served through a read index, not through raft).
func (q *queueCore) scan(ctx context.Context, minRev, limit int64) (*queueSnap, error) {
	from := q.scanFloor()
	resp, err := getAtLeast(ctx, q.client, minRev,
		clientv3.OpGet(from, clientv3.WithRange(clientv3.GetPrefixRangeEnd(q.items)), clientv3.WithKeysOnly(), clientv3.WithLimit(limit)),
		// Not keys-only: etcd serves keys-only reads from its index, without
		// the lease, and a Consumer recognizes its own claims by lease and
		// value (both small). No claim exists below the floor either.
		clientv3.OpGet(q.claimKey(from), clientv3.WithRange(clientv3.GetPrefixRangeEnd(q.claims))),
		clientv3.OpGet(q.floorKey))
	if err != nil {
		return nil, err
	}
	items := resp.Responses[0].GetResponseRange()
	claims := resp.Responses[1].GetResponseRange()
	s := &queueSnap{
		rev:     resp.Header.Revision,
		items:   items.GetKvs(),
		more:    items.GetMore(),
		claims:  make(map[string]*mvccpb.KeyValue, len(claims.GetKvs())),
		scanned: limit,
	}
	for _, kv := range claims.GetKvs() {
		s.claims[string(kv.Key)] = kv
	}
	if f := resp.Responses[2].GetResponseRange().GetKvs(); len(f) > 0 {
		s.floorRev = f[0].ModRevision
		q.learnFloor(string(f[0].Value))
	}
	return s, nil
}

// free returns up to n unclaimed items of the snapshot, oldest first.
func (q *queueCore) free(s *queueSnap, n int) []*mvccpb.KeyValue {
	var out []*mvccpb.KeyValue
	for _, kv := range s.items {
		if _, ok := s.claims[q.claimKey(string(kv.Key))]; ok {
			continue
		}
		out = append(out, kv)
		if len(out) == n {
			break
		}
	}
	return out
}

// take runs one nested transaction over cands: level i runs then(cands[i])
// if item i is unchanged and unclaimed and otherwise falls through to level
// i+1. It returns the index of the item taken (-1: none), the responses of
// that level's then-ops and the revision of the transaction.
func (q *queueCore) take(ctx context.Context, cands []*mvccpb.KeyValue, then func(item *mvccpb.KeyValue) []clientv3.Op) (int, []*pb.ResponseOp, int64, error) {
	if len(cands) == 0 {
		return -1, nil, 0, nil
	}
	var (
		next    []clientv3.Op
		cmps    []clientv3.Cmp
		thenOps []clientv3.Op
	)
	for i := len(cands) - 1; i >= 0; i-- {
		kv := cands[i]
		cmps = []clientv3.Cmp{
			clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision),
			clientv3.Compare(clientv3.CreateRevision(q.claimKey(string(kv.Key))), "=", 0),
		}
		thenOps = then(kv)
		if i > 0 {
			next = []clientv3.Op{clientv3.OpTxn(cmps, thenOps, next)}
		}
	}
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	resp, err := q.kv.Txn(actx).If(cmps...).Then(thenOps...).Else(next...).Commit()
	if err != nil {
		return -1, nil, 0, err
	}
	r := (*pb.TxnResponse)(resp)
	for i := range cands {
		if r.Succeeded {
			q.adapt(i)
			return i, r.Responses, resp.Header.Revision, nil
		}
		if len(r.Responses) == 0 {
			break
		}
		if r = r.Responses[0].GetResponseTxn(); r == nil {
			break
		}
	}
	if len(cands) == q.takeWidth() {
		q.adapt(-1) // not when there were fewer free items than that
	}
	return -1, nil, resp.Header.Revision, nil
}

// tryFunc tries to take an item given a fresh snapshot of the head. It
// reports whether it took one.
type tryFunc func(ctx context.Context, s *queueSnap) (bool, error)

// attempt scans the head and calls try until try takes an item (true) or
// the snapshot has nothing try could take (false, with the snapshot's
// revision).
func (q *queueCore) attempt(ctx context.Context, minRev int64, try tryFunc) (int64, bool, error) {
	limit := int64(defaultScanLimit)
	for {
		s, err := q.scan(ctx, minRev, limit)
		if err != nil {
			return 0, false, err
		}
		ok, err := try(ctx, s)
		if err != nil || ok {
			return s.rev, ok, err
		}
		if len(q.free(s, 1)) > 0 {
			continue // others took the candidates first: read the new head
		}
		if s.more {
			limit *= 2 // every item read is claimed: look further
			continue
		}
		return s.rev, false, nil
	}
}

// acquire is the consumer loop shared by Dequeue and Claim: try to take an
// item, and when there is none wait for an item to be put or a claim to be
// released (either may free an item), then try again.
func (q *queueCore) acquire(ctx context.Context, op string, try tryFunc) error {
	if q.err != nil {
		return q.err
	}
	return stepUntil(ctx, q.client, q.prefix, op,
		func(ctx context.Context, minRev int64) (int64, bool, error) {
			return q.attempt(ctx, minRev, try)
		},
		func(ev *clientv3.Event) bool {
			key := string(ev.Kv.Key)
			return (ev.Type == mvccpb.PUT && strings.HasPrefix(key, q.items)) ||
				(ev.Type == mvccpb.DELETE && strings.HasPrefix(key, q.claims))
		})
}

// stepFunc reads state at a revision >= minRev and acts on it. It returns
// the revision it read and whether the caller's wait is over.
type stepFunc func(ctx context.Context, minRev int64) (rev int64, done bool, err error)

// stepUntil runs step until it reports done, waiting between runs with the
// watch-first-then-read pattern of watch.go, opened lazily so that a step
// that succeeds at once costs no watch:
//
//  1. run step; done: return;
//  2. not done and no watch yet: open a synced watch on the prefix dir,
//     then run step again (its read now lies behind the watch);
//  3. otherwise wait for an event wake accepts (nil: any event) with a
//     revision above the last step's read, and run step again.
//
// Transient etcd errors and broken watches start over behind a new watch
// after a backoff pause, until ctx ends; the end of ctx is reported with
// context.Cause(ctx), wrapped with op. Errors that are this package's
// sentinels or not transient are returned.
func stepUntil(ctx context.Context, c *clientv3.Client, dir, op string, step stepFunc, wake func(*clientv3.Event) bool) error {
	var w *syncedWatch
	defer func() {
		if w != nil {
			w.cancel()
		}
	}()
	b := newBackoff()
	for {
		if cause := context.Cause(ctx); cause != nil {
			return fmt.Errorf("recipes: %s: %w", op, cause)
		}
		var minRev int64
		if w != nil {
			minRev = w.rev
		}
		rev, done, err := step(ctx, minRev)
		if err == nil && done {
			return nil
		}
		if err == nil && w == nil {
			w, err = openSyncedWatch(ctx, c, dir, clientv3.WithPrefix())
			if err == nil {
				continue
			}
		} else if err == nil {
			err = waitEvent(ctx, w, rev, wake)
			if err == nil {
				continue
			}
		}
		if cause := context.Cause(ctx); cause != nil {
			return fmt.Errorf("recipes: %s: %w", op, cause)
		}
		if isOwnSentinel(err) {
			return err
		}
		if !errors.Is(err, errWatchBroken) && !retryable(err) {
			return etcdErr(op, err)
		}
		// A member, a connection or the watch failed: start over behind a
		// new watch after a pause.
		if w != nil {
			w.cancel()
			w = nil
		}
		if c.Ctx().Err() != nil {
			return fmt.Errorf("%w: %s: client closed: %w", ErrEtcd, op, err)
		}
		if !errors.Is(err, errWatchBroken) {
			_ = sleepOrCause(ctx, b.next()) // the loop reports the end of ctx
		}
	}
}

// sleepOrCause waits for d or until ctx ends (returning its cause).
func sleepOrCause(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// errWatchBroken reports that a watch ended without the caller's context
// ending (lost leader, compaction during a reconnect, member shutdown).
var errWatchBroken = errors.New("watch ended")

// waitEvent blocks until w delivers an event with a revision above rev that
// wake accepts (nil: any event).
func waitEvent(ctx context.Context, w *syncedWatch, rev int64, wake func(*clientv3.Event) bool) error {
	for {
		select {
		case wr, ok := <-w.ch:
			if !ok || wr.Canceled || wr.CompactRevision != 0 || wr.Err() != nil {
				if cause := context.Cause(ctx); cause != nil {
					return cause
				}
				return errWatchBroken
			}
			for _, ev := range wr.Events {
				if ev.Kv.ModRevision > rev && (wake == nil || wake(ev)) {
					return nil
				}
			}
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// dequeue takes the oldest free item, at most once, and returns it with its
// value.
func (q *queueCore) dequeue(ctx context.Context) (*mvccpb.KeyValue, error) {
	var got *mvccpb.KeyValue
	err := q.acquire(ctx, "dequeue from "+q.prefix, func(ctx context.Context, s *queueSnap) (bool, error) {
		cands := q.free(s, q.takeWidth())
		i, resps, _, err := q.take(ctx, cands, func(item *mvccpb.KeyValue) []clientv3.Op {
			return []clientv3.Op{clientv3.OpDelete(string(item.Key), clientv3.WithPrevKV())}
		})
		if err != nil || i < 0 {
			return false, err
		}
		prev := resps[0].GetResponseDeleteRange().GetPrevKvs()
		if len(prev) != 1 {
			return false, fmt.Errorf("%w: dequeue of %q returned %d values", ErrEtcd, cands[i].Key, len(prev))
		}
		got = prev[0]
		q.advanceFloor(ctx, s)
		return true, nil
	})
	return got, err
}

func (q *queueCore) length(ctx context.Context) (int, error) {
	if q.err != nil {
		return 0, q.err
	}
	resp, err := q.client.Get(ctx, q.scanFloor(), clientv3.WithRange(clientv3.GetPrefixRangeEnd(q.items)), clientv3.WithCountOnly())
	if err != nil {
		return 0, etcdErr("len of "+q.prefix, err)
	}
	return int(resp.Count), nil
}
