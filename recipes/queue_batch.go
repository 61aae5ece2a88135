package recipes

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Batches. EnqueueAll, DequeueN and Consumer.ClaimN do the work of up to
// n single calls in one transaction, so one etcd write (one raft round)
// carries n items. etcd refuses a transaction with more than its
// --max-txn-ops operations in one list (default 128), and counts those of
// the enclosing lists against a nested one; a take holds one
// sub-transaction of two operations per item and reads the head back
// beside them. So a batch holds up to max-txn-ops less batchOverhead
// items: 122 with etcd's default, which a queue assumes unless told
// otherwise ([WithMaxTxnOps]).

// batchOverhead is what a batch take needs beside one operation per item:
// the enclosing list (the items' transaction and 3 head reads) and the two
// operations of an item's sub-transaction.
const batchOverhead = 6

// defaultMaxTxnOps is etcd's default --max-txn-ops.
const defaultMaxTxnOps = 128

// WithMaxTxnOps tells a [Queue] or [Consumer] the --max-txn-ops of its
// etcd cluster (default 128, etcd's default). The largest batch of
// EnqueueAll, DequeueN and ClaimN is n-6 (see MaxBatch).
func WithMaxTxnOps(n int) QueueOption {
	return func(o *queueOptions) {
		if n > 0 {
			o.maxTxnOps = n
		}
	}
}

// MaxBatch returns the largest batch of EnqueueAll and DequeueN: the
// queue's max-txn-ops less 6 (122 by default).
func (q *Queue) MaxBatch() int { return q.core.maxBatch() }

// MaxBatch returns the largest batch of ClaimN (see [Queue.MaxBatch]).
func (c *Consumer) MaxBatch() int { return c.core.maxBatch() }

func (q *queueCore) maxBatch() int { return max(1, q.opts.maxTxnOps-batchOverhead) }

// batchSize checks a batch of n items.
func (q *queueCore) batchSize(op string, n int) error {
	if n < 1 || n > q.maxBatch() {
		return fmt.Errorf("%w: %s: %d items, want 1 to %d", ErrBatchSize, op, n, q.maxBatch())
	}
	return nil
}

// EnqueueAll appends values to the queue in one transaction: all of them
// or none. They get one create revision and follow each other in the
// queue, in the order of values, with no other item between them; the
// Items are returned in that order. len(values) must be between 1 and
// MaxBatch (ErrBatchSize). The options apply to every item,
// except WithID, which a batch does not take (ErrInvalidArgument). If
// EnqueueAll fails with an etcd error, all or none of the items may have
// been added.
func (q *Queue) EnqueueAll(ctx context.Context, values []string, opts ...EnqueueOption) ([]Item, error) {
	c := q.core
	if c.err != nil {
		return nil, c.err
	}
	op := "enqueue to " + c.prefix
	eo := buildEnqueueOptions(opts)
	if eo.hasID {
		return nil, fmt.Errorf("%w: %s: WithID in a batch", ErrInvalidArgument, op)
	}
	if err := c.batchSize(op, len(values)); err != nil {
		return nil, err
	}
	notBefore, err := eo.check(op, time.Now())
	if err != nil {
		return nil, err
	}
	ready := ""
	if !notBefore.IsZero() {
		ready = fmt.Sprintf("%c%016x-", readyMark, notBefore.UnixNano())
	}
	hint, err := c.firstHint(ctx, op)
	if err != nil {
		return nil, err
	}
	for {
		// One random part for the batch, then the index: the keys of
		// the batch sort in its order (which is the queue's order among
		// items of one revision, see order).
		base := fmt.Sprintf("%s%016x-%s%s", c.items, hint, ready, rand.Text())
		keys := make([]string, len(values))
		puts := make([]*pb.RequestOp, len(values))
		for i, v := range values {
			keys[i] = fmt.Sprintf("%s%04x", base, i)
			puts[i] = putOp(&pb.PutRequest{Key: []byte(keys[i]), Value: []byte(v)})
		}
		floor := []byte(c.floorKey)
		req := &pb.TxnRequest{
			Compare: []*pb.Compare{
				{Key: floor, Target: pb.Compare_MOD, Result: pb.Compare_LESS, TargetUnion: &pb.Compare_ModRevision{ModRevision: hint + 1}},
				// No key of the batch exists (128 random bits make it
				// so; the compare keeps the put a put-if-absent).
				createdAt([]byte(base), []byte(clientv3.GetPrefixRangeEnd(base)), 0),
			},
			Success: puts,
		}
		resp, err := waitAnswer(ctx, c.client, c.floorKey, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return commitTxn(ctx, c.client, c.raw, req, true)
		})
		if err != nil {
			return nil, attemptErr(ctx, op, err)
		}
		c.see(resp.Header.Revision)
		if resp.Succeeded {
			items := make([]Item, len(keys))
			for i, k := range keys {
				items[i] = Item{Key: k, Revision: resp.Header.Revision, NotBefore: notBefore}
			}
			return items, nil
		}
		hint = resp.Header.Revision // the floor moved: a fresh hint
	}
}

// firstHint returns the hint of the next put (see put).
func (q *queueCore) firstHint(ctx context.Context, op string) (int64, error) {
	hint := q.seen.Load()
	for b := newBackoff(); hint == 0; {
		resp, err := getAtLeast(ctx, q.client, 0, clientv3.OpGet(q.floorKey, clientv3.WithCountOnly()))
		if err == nil {
			hint = resp.Header.Revision
			q.see(hint)
			break
		}
		if context.Cause(ctx) != nil || !retryable(err) {
			return 0, attemptErr(ctx, op, err)
		}
		if err := pause(ctx, nil, b.next()); err != nil {
			return 0, fmt.Errorf("recipes: %s: %w", op, err)
		}
	}
	return hint, nil
}

// DequeueN removes and returns up to n of the oldest items in one
// transaction, blocking until there is at least one. The items come in
// queue order; they are the n oldest free items the consumer's read of
// the head saw, where each item another consumer took first is replaced
// by the n-th next one, up to 3 times (so consumers racing for the head
// take consecutive runs instead of failing, and a batch may still hold
// fewer than n items although more are queued). Each item is
// delivered at most once, as by Dequeue; if the transaction fails in a way
// that hides its outcome, all of its items may be lost. n must be between
// 1 and MaxBatch (ErrBatchSize).
func (q *Queue) DequeueN(ctx context.Context, n int) ([]string, error) {
	c := q.core
	op := "dequeue from " + c.prefix
	if c.err != nil {
		return nil, c.err
	}
	if err := c.batchSize(op, n); err != nil {
		return nil, err
	}
	var got []string
	err := c.acquire(ctx, op, func(ctx context.Context, s *queueSnap) (bool, *queueSnap, error) {
		cands := c.batchCands(s, n)
		taken, resps, _, view, err := c.takeBatch(ctx, cands, n, func(item *mvccpb.KeyValue) []*pb.RequestOp {
			return []*pb.RequestOp{getOp(&pb.RangeRequest{Key: item.Key}), deleteOp(item.Key)}
		})
		if err != nil || len(taken) == 0 {
			return false, view, err
		}
		for j, i := range taken {
			prev := resps[j][0].GetResponseRange().GetKvs()
			if len(prev) != 1 || resps[j][1].GetResponseDeleteRange().GetDeleted() != 1 {
				return false, nil, fmt.Errorf("%w: dequeue of %q read %d values", ErrEtcd, cands[i].Key, len(prev))
			}
			got = append(got, string(prev[0].Value))
		}
		c.advanceFloor(ctx, s)
		return true, view, nil
	})
	return got, err
}

// freeOnly returns the first n free items of s in queue order.
func (q *queueCore) freeOnly(s *queueSnap, n int) []*mvccpb.KeyValue {
	var out []*mvccpb.KeyValue
	for _, kv := range q.free(s, n) {
		if !q.claimed(s, kv) {
			out = append(out, kv)
		}
	}
	return out
}

// batchWidth is how many candidates each of a batch's n slots tries, in
// turn: consumers that read the same head then take the next items instead
// of failing on the ones another consumer just took.
const batchWidth = 4

// batchCands returns the candidates of a batch of n from snapshot s: the
// first free items, up to n times the width that fits in the transaction.
func (q *queueCore) batchCands(s *queueSnap, n int) []*mvccpb.KeyValue {
	return q.freeOnly(s, n*q.slotWidth(n))
}

// slotWidth is the length of each slot's chain in a batch of n: etcd lets
// each nested level use what the enclosing ones left of max-txn-ops.
func (q *queueCore) slotWidth(n int) int {
	return max(1, min(batchWidth, (q.opts.maxTxnOps-batchOverhead-n)/2+1))
}

// takeBatch runs one transaction that takes up to n of cands (in queue
// order), each in a slot of its own: slot j tries cands[j], then
// cands[j+n], cands[j+2n]..., each if unchanged and unclaimed, and takes
// the first it can. Items others took first are thus skipped, and no item
// is in two slots. The head is read back in the same transaction (see
// take). It returns the indexes of the items taken, in queue order, the
// responses of their then-ops, the revision and the head read back.
func (q *queueCore) takeBatch(ctx context.Context, cands []*mvccpb.KeyValue, n int, then func(item *mvccpb.KeyValue) []*pb.RequestOp) ([]int, [][]*pb.ResponseOp, int64, *queueSnap, error) {
	if len(cands) == 0 {
		return nil, nil, 0, nil, nil
	}
	slots := min(n, len(cands))
	subs := make([]*pb.RequestOp, slots)
	for j := range slots {
		var level []*pb.RequestOp // the next candidate of the slot
		last := j
		for last+slots < len(cands) {
			last += slots
		}
		for i := last; i >= j; i -= slots {
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
		subs[j] = level[0]
	}
	// Read back enough for the next batch's candidates.
	limit := max(q.viewLimit(), int64(min(n*q.slotWidth(n), 4*defaultScanLimit)))
	req := &pb.TxnRequest{Success: append([]*pb.RequestOp{txnOp(&pb.TxnRequest{Success: subs})}, q.headReads(limit)...)}
	resp, err := waitAnswer(ctx, q.client, q.floorKey, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return commitTxn(ctx, q.client, q.raw, req, true)
	})
	if err != nil {
		q.rescan.Store(true)
		return nil, nil, 0, nil, err
	}
	rev := resp.Header.Revision
	q.see(rev)
	view := q.snapOf(rev, resp.Responses[1:], limit)
	byIndex := map[int][]*pb.ResponseOp{}
	for j, r := range resp.Responses[0].GetResponseTxn().GetResponses() {
		for i, t := j, r.GetResponseTxn(); t != nil && i < len(cands); i += slots {
			if t.Succeeded {
				byIndex[i] = t.Responses
				break
			}
			if len(t.Responses) == 0 {
				break
			}
			t = t.Responses[0].GetResponseTxn()
		}
	}
	var taken []int
	var resps [][]*pb.ResponseOp
	for i := range cands { // queue order
		if r, ok := byIndex[i]; ok {
			taken = append(taken, i)
			resps = append(resps, r)
		}
	}
	return taken, resps, rev, view, nil
}

// ClaimN claims up to n of the oldest free items in one transaction,
// blocking until it holds at least one. The claims come in queue order,
// chosen as DequeueN chooses its items; each is a Claim like one returned
// by Claim, with its own key, token (all of one batch share the revision)
// and Guard, acked or nacked on its own. With a visibility timeout, the
// claims of one batch share one lease: they expire together, and Extend
// of one extends them all. n must be between 1 and MaxBatch
// (ErrBatchSize). A claim whose batch transaction's answer
// was lost is handed out later by a Claim or ClaimN, as for Claim.
func (c *Consumer) ClaimN(ctx context.Context, n int) ([]*Claim, error) {
	op := "claim from " + c.core.prefix
	if c.visErr != nil {
		return nil, fmt.Errorf("recipes: %s: %w", op, c.visErr)
	}
	if c.core.err != nil {
		return nil, c.core.err
	}
	if err := c.core.batchSize(op, n); err != nil {
		return nil, err
	}
	if sessionDone(c.s) {
		return nil, fmt.Errorf("%w: %s: lease %x is no longer kept alive", ErrSessionExpired, op, int64(c.s.Lease()))
	}
	wctx, stop := withSession(ctx, c.s)
	defer stop()
	var got []*Claim
	err := c.core.acquire(wctx, op, func(ctx context.Context, s *queueSnap) (bool, *queueSnap, error) {
		if cl, err := c.adopt(ctx, s); err != nil || cl != nil {
			if cl != nil {
				got = []*Claim{cl}
			}
			return cl != nil, nil, err
		}
		lease, l, err := c.leaseFor(ctx)
		if err != nil {
			return false, nil, err
		}
		cands := c.core.batchCands(s, n)
		taken, resps, rev, view, err := c.core.takeBatch(ctx, cands, n, func(item *mvccpb.KeyValue) []*pb.RequestOp {
			return []*pb.RequestOp{
				putOp(&pb.PutRequest{Key: []byte(c.core.claimKey(string(item.Key))), Value: []byte(c.id), Lease: lease}),
				getOp(&pb.RangeRequest{Key: item.Key}),
			}
		})
		if err != nil && l != nil && isLeaseNotFound(err) {
			c.dropLease(l)
			return false, nil, nil
		}
		if err != nil || len(taken) == 0 {
			return false, view, err
		}
		for j, i := range taken {
			kvs := resps[j][1].GetResponseRange().GetKvs()
			if len(kvs) != 1 {
				return false, nil, fmt.Errorf("%w: claim of %q read %d items", ErrEtcd, cands[i].Key, len(kvs))
			}
			got = append(got, c.hand(string(cands[i].Key), string(kvs[0].Value), rev, l))
		}
		c.core.advanceFloor(ctx, s)
		return true, view, nil
	})
	if err != nil {
		return nil, err
	}
	return got, nil
}
