package recipes

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"slices"
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
// Order. Items are handed out in the order their Enqueue transactions
// committed (their create revisions): an Enqueue that returned before
// another one started is always dequeued first, whichever clients made
// them.
//
// Layout. Items live under "<prefix>/items/" and are never rewritten. An
// item's key is "<hint>-<random>", where hint, 16 hex digits, is the
// newest store revision the producing Queue value had seen (from the
// answer to its previous request; its first Enqueue reads it): lower than
// the item's own create revision, by however much the producer lagged.
// Keys thus sort almost in queue order, and a consumer finds the head with
// a small range read from the start of the items: it orders the keys it
// read by create revision and hands out only items that no key beyond them
// can precede (see free). Etcd's recipe instead sorts the whole queue by
// revision on every dequeue. Claims made by a [Consumer] live under
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
// An Enqueue is one write. A dequeue removes the oldest item still there
// in one nested transaction that tries up to [WithCandidates] items in
// order, so consumers that race for the head do not fail and retry: each
// takes the next item. The same transaction reads the head back after the
// take, so the next dequeue (or claim) of the same Queue (or Consumer)
// value usually needs no read of its own; items claimed in that view stay
// in the next transaction as candidates that fail while claimed, so one
// released meanwhile is taken first. When the queue is empty it opens a
// watch at the current revision, waits until etcd confirms it, and only
// then reads again. Such a watch is synced, so it wakes within a round
// trip of the next Enqueue, and no item put between the read and the watch
// can be missed.
type Queue struct {
	core *queueCore
}

// NewQueue returns the FIFO queue stored under prefix ("jobs" and "jobs/"
// name the same queue). An empty prefix makes every call fail with
// ErrInvalidArgument.
func NewQueue(client *clientv3.Client, prefix string, opts ...QueueOption) *Queue {
	q := &Queue{core: newQueueCore(client, prefix, opts)}
	q.core.fifo = true
	return q
}

// Enqueue appends value to the queue and returns the item's key and
// create revision.
//
// If Enqueue fails with an etcd error the item may or may not have been
// added; trying again may add it twice, unless the Enqueue is made
// [WithID]: then trying again with the same id adds it at most once, and
// returns the item of whichever attempt added it.
func (q *Queue) Enqueue(ctx context.Context, value string, opts ...EnqueueOption) (Item, error) {
	return q.core.put(ctx, "", value, buildEnqueueOptions(opts))
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
	raw    *rawKV      // for puts, takes, acks and nacks: see rawKV
	prefix string      // normalized: one trailing "/"
	items  string      // prefix + "items/"
	claims string      // prefix + "claims/"
	ids    string      // prefix + "ids/": the ids of WithID
	idl    idLease     // the lease those ids are bound to
	err    error       // invalid prefix
	opts   queueOptions
	width  atomic.Int32 // candidates to try next: see takeWidth
	// view is the head as the last take through this value read it right
	// after taking (see take); the next Dequeue may start from it instead
	// of a scan of its own (see fromView).
	view atomic.Pointer[queueSnap]
	// rescan makes the next call read the head afresh: set when a take's
	// outcome is unknown, so a Consumer finds a claim it may have made
	// (see Consumer.adopt).
	rescan atomic.Bool
	// seen is the newest store revision an answer to this value carried:
	// the hint of its next put (see put).
	seen atomic.Int64

	// The floor (see put and advanceFloor): no item below floorKey's
	// value exists or can be added, so head scans start there instead of
	// walking etcd's index over every item ever deleted.
	fifo       bool   // keys are "<hint>-<random>" (Queue); false: unknown or priority layout
	floorKey   string // prefix + "floor"
	floor      atomic.Pointer[string]
	untilFloor atomic.Int64 // counts takes down to the next floor move

	// nextReady is the earliest not-before (Unix ns) of the delayed items
	// the last empty-handed head read stepped over; 0: none. A waiting
	// consumer's timer fires then.
	nextReady atomic.Int64
}

// defaultScanLimit is how many item keys one head scan reads at first.
const defaultScanLimit = 64

func newQueueCore(client *clientv3.Client, prefix string, opts []QueueOption) *queueCore {
	o := queueOptions{candidates: 16, dedupe: defaultDedupeWindow, maxTxnOps: defaultMaxTxnOps}
	for _, opt := range opts {
		opt(&o)
	}
	p, err := normalizePrefix(prefix)
	q := &queueCore{
		client: client,
		kv:     onceKV(client),
		raw:    newRawKV(client),
		prefix: p,
		items:  p + "items/",
		claims: p + "claims/",
		ids:    p + "ids/",
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

// put writes value as a new item under items+sub and returns its key, in
// one write. The key's hint is the newest revision this value has seen
// (read once, by the first put): it only has to be below the item's create
// revision, which every revision seen before the put commits is.
//
// The floor. Deleted items stay in etcd's key index, as tombstones, until
// the next compaction, and a range read walks over them: a scan from the
// start of the items would cost more with every item ever dequeued.
// Consumers of a FIFO queue therefore keep a floor, the key "<prefix>/floor"
// holding an item key below which no item exists, and scan from there. A
// put keeps that true by committing only if the floor was last moved at or
// before its hint's revision (so its key is above the floor); otherwise it
// takes the revision of the answer as a fresh hint and tries again. A
// priority queue has no floor (its keys are ordered by priority first):
// its puts require that there is none.
func (q *queueCore) put(ctx context.Context, sub, value string, eo enqueueOptions) (Item, error) {
	if q.err != nil {
		return Item{}, q.err
	}
	op := "enqueue to " + q.prefix
	notBefore, err := eo.check(op, time.Now())
	if err != nil {
		return Item{}, err
	}
	ready := "" // the readyMark part of the key
	if !notBefore.IsZero() {
		ready = fmt.Sprintf("%c%016x-", readyMark, notBefore.UnixNano())
	}
	hint, err := q.firstHint(ctx, op)
	if err != nil {
		return Item{}, err
	}
	for {
		var lease clientv3.LeaseID
		if eo.hasID {
			var err error
			if lease, err = q.idl.get(ctx, q.client, q.opts.dedupe); err != nil {
				return Item{}, attemptErr(ctx, op, err)
			}
		}
		key := []byte(fmt.Sprintf("%s%s%016x-%s%s", q.items, sub, hint, ready, rand.Text()))
		floor := []byte(q.floorKey)
		floorCmp := &pb.Compare{Key: floor, Target: pb.Compare_MOD, Result: pb.Compare_LESS, TargetUnion: &pb.Compare_ModRevision{ModRevision: hint + 1}}
		if !q.fifo {
			floorCmp = createdAt(floor, nil, 0)
		}
		req := &pb.TxnRequest{
			Compare: []*pb.Compare{createdAt(key, nil, 0), floorCmp},
			Success: []*pb.RequestOp{putOp(&pb.PutRequest{Key: key, Value: []byte(value)})},
			Failure: []*pb.RequestOp{getOp(&pb.RangeRequest{Key: floor, KeysOnly: true})},
		}
		if eo.hasID {
			// Put-if-absent on the id, in the same transaction: the id's
			// key carries the item's key, and its create revision is the
			// item's.
			idKey := []byte(q.ids + eo.id)
			req.Compare = append(req.Compare, createdAt(idKey, nil, 0))
			req.Success = append(req.Success, putOp(&pb.PutRequest{Key: idKey, Value: key, Lease: int64(lease)}))
			req.Failure = append(req.Failure, getOp(&pb.RangeRequest{Key: idKey}))
		}
		resp, err := waitAnswer(ctx, q.client, q.floorKey, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return commitTxn(ctx, q.client, q.raw, req, true)
		})
		if err != nil && eo.hasID && isLeaseNotFound(err) {
			q.idl.drop(lease) // nothing was written: bind to a new lease
			continue
		}
		if err != nil {
			return Item{}, attemptErr(ctx, op, err)
		}
		q.see(resp.Header.Revision)
		if resp.Succeeded {
			return Item{Key: string(key), Revision: resp.Header.Revision, NotBefore: notBefore}, nil
		}
		if eo.hasID {
			if kvs := resp.Responses[1].GetResponseRange().GetKvs(); len(kvs) > 0 {
				it := Item{Key: string(kvs[0].Value), Revision: kvs[0].CreateRevision, Duplicate: true}
				if nb := notBeforeOf([]byte(strings.TrimPrefix(it.Key, q.items+sub))); nb > 0 {
					it.NotBefore = time.Unix(0, nb)
				}
				return it, nil
			}
		}
		if !q.fifo && len(resp.Responses[0].GetResponseRange().GetKvs()) > 0 {
			return Item{}, fmt.Errorf("%w: %s: the prefix holds a FIFO queue", ErrInvalidArgument, op)
		}
		// The floor moved since the hint (or 128 random bits collided):
		// the revision of this answer is a fresh hint.
		hint = resp.Header.Revision
	}
}

// see records that an answer carried store revision rev.
func (q *queueCore) see(rev int64) {
	for {
		old := q.seen.Load()
		if old >= rev || q.seen.CompareAndSwap(old, rev) {
			return
		}
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

// queueSnap is one consistent read of the head of the queue.
type queueSnap struct {
	rev      int64
	items    []*mvccpb.KeyValue // keys only, in key order (see free for the queue's order)
	claims   map[string]*mvccpb.KeyValue
	more     bool
	scanned  int64
	floorRev int64 // mod revision of the floor key (0: none)

	// Worked out once, by free.
	known   bool
	order   []*mvccpb.KeyValue // candidates in order, claimed ones included
	nfree   int                // how many of them are free
	noReuse bool               // claimed ones left out: not for fromView
	// nextReady is the earliest not-before (Unix ns) of a delayed item
	// left out of order because it was not ready yet; 0: none.
	nextReady int64

	reused bool // read by an earlier call (fromView)
}

// scan reads up to limit item keys from the head and every claim key in one
// read-only transaction (served through a read index, not through raft).
func (q *queueCore) scan(ctx context.Context, minRev, limit int64) (*queueSnap, error) {
	resp, err := getAtLeast(ctx, q.client, minRev, requestOps(q.headReads(limit))...)
	if err != nil {
		return nil, err
	}
	q.see(resp.Header.Revision)
	return q.snapOf(resp.Header.Revision, resp.Responses, limit), nil
}

// headReads are the reads of a head scan: up to limit item keys from the
// floor, the claims from there on, and the floor.
func (q *queueCore) headReads(limit int64) []*pb.RequestOp {
	from := q.scanFloor()
	return []*pb.RequestOp{
		getOp(&pb.RangeRequest{Key: []byte(from), RangeEnd: []byte(clientv3.GetPrefixRangeEnd(q.items)), KeysOnly: true, Limit: limit}),
		// Not keys-only: etcd serves keys-only reads from its index, without
		// the lease, and a Consumer recognizes its own claims by lease and
		// value (both small). No claim exists below the floor either.
		getOp(&pb.RangeRequest{Key: []byte(q.claimKey(from)), RangeEnd: []byte(clientv3.GetPrefixRangeEnd(q.claims))}),
		getOp(&pb.RangeRequest{Key: []byte(q.floorKey)}),
	}
}

// snapOf makes the snapshot at revision rev from the responses of headOps.
func (q *queueCore) snapOf(rev int64, resps []*pb.ResponseOp, limit int64) *queueSnap {
	items := resps[0].GetResponseRange()
	claims := resps[1].GetResponseRange()
	s := &queueSnap{
		rev:     rev,
		items:   items.GetKvs(),
		more:    items.GetMore(),
		claims:  make(map[string]*mvccpb.KeyValue, len(claims.GetKvs())),
		scanned: limit,
	}
	for _, kv := range claims.GetKvs() {
		s.claims[string(kv.Key)] = kv
	}
	if f := resps[2].GetResponseRange().GetKvs(); len(f) > 0 {
		s.floorRev = f[0].ModRevision
		q.learnFloor(string(f[0].Value))
	}
	return s
}

// free returns the candidates of snapshot s for a take that tries up to
// n free items: in the order they must be handed out, the items up to and
// including the n-th free one, or nil if s has no item that may be handed
// out now.
//
// The order. The lowest priority first (a priority queue's items are
// grouped by their key's "<priority>/" sub-prefix; a FIFO queue has one
// group), and within it by create revision, the order in which their puts
// committed.
//
// Claimed items are candidates too, where they stand: their level of the
// take fails while the claim exists, and takes the item if the claim was
// released (Nack, or the end of its session) since s was read, as its
// place requires. That is what lets a later call start from s (fromView).
// When more than maxClaimLevels items of s are claimed, they are left out
// and s is not reused.
//
// The snapshot holds the first keys of the queue only (s.more: there are
// others). An item outside it may be older than one inside: item keys sort
// by their hint, a revision the producer had seen, which is below the
// item's own create revision by however much the producer's knowledge
// lagged. But every item outside has a hint, so a create revision, at
// least the hint of the snapshot's last key: an item inside whose create
// revision is not above that is older than all of them. Only such items
// are candidates from the snapshot's last group while s.more.
func (q *queueCore) free(s *queueSnap, n int) []*mvccpb.KeyValue {
	if s.known && s.nextReady != 0 && time.Now().UnixNano() >= s.nextReady {
		// A delayed item came due since the order was worked out.
		s.known, s.order, s.nfree, s.noReuse, s.nextReady = false, nil, 0, false, 0
	}
	if !s.known {
		q.order(s)
	}
	end := 0 // just after the last free item to try
	for i, kv := range s.order {
		if n == 0 {
			break
		}
		if !q.claimed(s, kv) {
			n--
			end = i + 1
		}
	}
	return s.order[:end:end]
}

// maxClaimLevels bounds the claimed items a take carries as levels.
const maxClaimLevels = 8

// claimed reports whether item kv is claimed in snapshot s.
func (q *queueCore) claimed(s *queueSnap, kv *mvccpb.KeyValue) bool {
	if len(s.claims) == 0 {
		return false
	}
	_, ok := s.claims[q.claimKey(string(kv.Key))]
	return ok
}

// order works out s.order (see free).
func (q *queueCore) order(s *queueSnap) {
	s.known = true
	var out []*mvccpb.KeyValue
	nclaimed := 0
	for i := 0; i < len(s.items); {
		group, _ := q.splitItem(s.items[i].Key)
		j := i + 1
		for j < len(s.items) {
			if g, _ := q.splitItem(s.items[j].Key); g != group {
				break
			}
			j++
		}
		run := slices.Clone(s.items[i:j])
		if j == len(s.items) && s.more {
			_, bound := q.splitItem(s.items[j-1].Key)
			run = slices.DeleteFunc(run, func(kv *mvccpb.KeyValue) bool { return kv.CreateRevision > bound })
		}
		// Delayed items that are not ready yet are not candidates: they
		// block nothing, and come back when they are due (nextReady).
		now := time.Now().UnixNano()
		run = slices.DeleteFunc(run, func(kv *mvccpb.KeyValue) bool {
			_, nb := q.splitReady(kv.Key)
			if nb > now {
				if s.nextReady == 0 || nb < s.nextReady {
					s.nextReady = nb
				}
				return true
			}
			return false
		})
		slices.SortFunc(run, func(a, b *mvccpb.KeyValue) int {
			if c := cmp.Compare(a.CreateRevision, b.CreateRevision); c != 0 {
				return c
			}
			return bytes.Compare(a.Key, b.Key) // one batch: its order
		})
		out = append(out, run...)
		for _, kv := range run {
			if q.claimed(s, kv) {
				nclaimed++
			} else {
				s.nfree++
			}
		}
		if s.nfree > 0 || j == len(s.items) && s.more {
			break // a later priority waits until this one is empty
		}
		i = j
	}
	if nclaimed > maxClaimLevels {
		out = slices.DeleteFunc(out, func(kv *mvccpb.KeyValue) bool { return q.claimed(s, kv) })
		s.noReuse = true
	}
	s.order = out
}

// splitItem splits an item key into its group (the priority sub-prefix
// "<4 hex digits>/" of a priority queue, "" in a FIFO queue) and its hint.
// A key of another layout has hint 0: nothing is known to be newer than
// it.
func (q *queueCore) splitItem(key []byte) (group string, hint int64) {
	k := key[min(len(q.items), len(key)):]
	if i := bytes.LastIndexByte(k, '/'); i >= 0 {
		group, k = string(k[:i+1]), k[i+1:]
	}
	if len(k) < 17 || k[16] != '-' {
		return group, 0
	}
	for _, c := range k[:16] {
		switch {
		case c >= '0' && c <= '9':
			hint = hint<<4 | int64(c-'0')
		case c >= 'a' && c <= 'f':
			hint = hint<<4 | int64(c-'a'+10)
		default:
			return group, 0
		}
	}
	return group, max(hint, 0)
}

// splitReady returns the group of an item key and its not-before time
// (Unix ns; 0: ready at once).
func (q *queueCore) splitReady(key []byte) (group string, notBefore int64) {
	k := key[min(len(q.items), len(key)):]
	if i := bytes.LastIndexByte(k, '/'); i >= 0 {
		group, k = string(k[:i+1]), k[i+1:]
	}
	return group, notBeforeOf(k)
}

// take runs one nested transaction over cands: level i runs then(cands[i])
// if item i is unchanged and unclaimed and otherwise falls through to level
// i+1. After the levels, in the same transaction, it reads the head again
// (headOps, on the member that serves the request only: etcd skips the
// reads of a write transaction on the members that apply it for nobody).
// It returns the index of the item taken (-1: none), the responses of that
// level's then-ops, the revision of the transaction and the head as it was
// right after it: the snapshot the next take starts from, instead of a
// read of its own (see attempt and fromView).
func (q *queueCore) take(ctx context.Context, s *queueSnap, cands []*mvccpb.KeyValue, then func(item *mvccpb.KeyValue) []*pb.RequestOp) (int, []*pb.ResponseOp, int64, *queueSnap, error) {
	if len(cands) == 0 {
		return -1, nil, 0, nil, nil
	}
	var level []*pb.RequestOp // level i+1, as the Else of level i
	for i := len(cands) - 1; i >= 0; i-- {
		kv := cands[i]
		level = []*pb.RequestOp{txnOp(&pb.TxnRequest{
			Compare: []*pb.Compare{
				modifiedAt(kv.Key, kv.ModRevision),
				createdAt([]byte(q.claimKey(string(kv.Key))), nil, 0),
			},
			Success: then(kv),
			Failure: level,
		})}
	}
	limit := q.viewLimit()
	req := &pb.TxnRequest{Success: append(level, q.headReads(limit)...)}
	resp, err := waitAnswer(ctx, q.client, q.floorKey, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return commitTxn(ctx, q.client, q.raw, req, true)
	})
	if err != nil {
		q.rescan.Store(true)
		return -1, nil, 0, nil, err
	}
	rev := resp.Header.Revision
	q.see(rev)
	view := q.snapOf(rev, resp.Responses[1:], limit)
	r := resp.Responses[0].GetResponseTxn()
	for i := range cands {
		if r == nil {
			break
		}
		if r.Succeeded {
			skipped := 0 // free items taken by others first
			for _, kv := range cands[:i] {
				if !q.claimed(s, kv) {
					skipped++
				}
			}
			q.adapt(skipped)
			return i, r.Responses, rev, view, nil
		}
		if len(r.Responses) == 0 {
			break
		}
		r = r.Responses[0].GetResponseTxn()
	}
	tried := 0
	for _, kv := range cands {
		if !q.claimed(s, kv) {
			tried++
		}
	}
	if tried == q.takeWidth() {
		q.adapt(-1) // not when there were fewer free items than that
	}
	return -1, nil, rev, view, nil
}

// viewLimit is how many item keys a take reads back: enough for the next
// take to find its candidates after the other consumers took theirs.
func (q *queueCore) viewLimit() int64 {
	return int64(min(defaultScanLimit, max(16, 4*q.takeWidth())))
}

// fromView returns the view the last take through q read back, for a
// new call that would otherwise scan at a revision >= minRev, or nil if
// there is none or it must not be used.
//
// Starting from a view read before the call (rather than by it) keeps the
// queue's order: items are handed out by create revision, and an item put
// since the view was read is newer than every item in it; the take checks
// that every candidate it passes over, claimed in the view or not, is gone
// or claimed by now (see free). A view that left claimed items out is not
// used, and neither is one older than minRev.
func (q *queueCore) fromView(minRev int64) *queueSnap {
	s := q.view.Swap(nil)
	if q.rescan.Swap(false) || s == nil || s.rev < minRev || len(q.free(s, 1)) == 0 || s.noReuse {
		return nil
	}
	s.reused = true
	return s
}

// tryFunc tries to take an item given a snapshot of the head with at least
// one free item. It reports whether it took one, and the head its take
// read back, if any.
type tryFunc func(ctx context.Context, s *queueSnap) (bool, *queueSnap, error)

// attempt calls try on snapshots of the head until try takes an item
// (true) or the snapshot has nothing try could take (false, with the
// snapshot's revision). The first snapshot is the view the last take left
// (see fromView) or a scan; the next ones are the heads the takes read
// back, or scans.
func (q *queueCore) attempt(ctx context.Context, minRev int64, try tryFunc) (int64, bool, error) {
	limit := int64(defaultScanLimit)
	s := q.fromView(minRev)
	for {
		if s == nil {
			var err error
			if s, err = q.scan(ctx, minRev, limit); err != nil {
				return 0, false, err
			}
		}
		if len(q.free(s, 1)) == 0 {
			if !s.more {
				q.nextReady.Store(s.nextReady)
				return s.rev, false, nil
			}
			// Every item read is claimed, or may be newer than one not
			// read yet: look further.
			if s.scanned >= limit {
				limit *= 2
			}
			s = nil
			continue
		}
		ok, view, err := try(ctx, s)
		if ok && view != nil {
			q.view.Store(view)
		}
		if err != nil || ok {
			return s.rev, ok, err
		}
		// Others took the candidates first: go on from the head the take
		// read back (or read it).
		s = view
	}
}

// acquire is the consumer loop shared by Dequeue and Claim: try to take an
// item, and when there is none wait for an item to be put or a claim to be
// released (either may free an item), then try again.
func (q *queueCore) acquire(ctx context.Context, op string, try tryFunc) error {
	if q.err != nil {
		return q.err
	}
	// nextReady is per call: attempt stores the earliest delayed item of
	// its last empty-handed read, the wait's timer fires then.
	return stepUntilTimed(ctx, q.client, q.prefix, op,
		func(ctx context.Context, minRev int64) (int64, bool, error) {
			return q.attempt(ctx, minRev, try)
		},
		func(ev *clientv3.Event) bool {
			key := string(ev.Kv.Key)
			return (ev.Type == mvccpb.PUT && strings.HasPrefix(key, q.items)) ||
				(ev.Type == mvccpb.DELETE && strings.HasPrefix(key, q.claims))
		},
		func() time.Time {
			if nb := q.nextReady.Load(); nb > 0 {
				return time.Unix(0, nb)
			}
			return time.Time{}
		})
}

// dequeue takes the oldest free item, at most once, and returns it with its
// value.
func (q *queueCore) dequeue(ctx context.Context) (*mvccpb.KeyValue, error) {
	var got *mvccpb.KeyValue
	err := q.acquire(ctx, "dequeue from "+q.prefix, func(ctx context.Context, s *queueSnap) (bool, *queueSnap, error) {
		cands := q.free(s, q.takeWidth())
		i, resps, _, view, err := q.take(ctx, s, cands, func(item *mvccpb.KeyValue) []*pb.RequestOp {
			// The value is read before the delete rather than returned by
			// it: etcd executes the reads of a write transaction only on
			// the member that serves it, a delete's prev_kv on every one.
			return []*pb.RequestOp{getOp(&pb.RangeRequest{Key: item.Key}), deleteOp(item.Key)}
		})
		if err != nil || i < 0 {
			return false, view, err
		}
		prev := resps[0].GetResponseRange().GetKvs()
		if len(prev) != 1 || resps[1].GetResponseDeleteRange().GetDeleted() != 1 {
			return false, nil, fmt.Errorf("%w: dequeue of %q read %d values", ErrEtcd, cands[i].Key, len(prev))
		}
		got = prev[0]
		q.advanceFloor(ctx, s)
		return true, view, nil
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
