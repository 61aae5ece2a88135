package recipes

import (
	"context"
	"fmt"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Consumer takes items from a [Queue] or [PriorityQueue] at least once.
//
// [Consumer.Claim] marks the oldest free item with a claim key bound to the
// consumer's session lease, in the transaction that checks that the item is
// still there and unclaimed. The item itself does not move: other
// consumers skip it while the claim exists, [Claim.Ack] deletes item and
// claim together, and [Claim.Nack] deletes only the claim. If the consumer
// dies, its lease expires, the claim key goes with it and the item is
// handed out again from its original place in the queue.
//
// If a claim transaction fails in a way that hides its outcome, the claim
// may exist without the caller knowing; the next head scan of the same
// Consumer finds it (bound to its lease and carrying its id) and hands it
// out, so the item is not stuck until the session ends. The same holds
// after an Ack or Nack whose outcome was unknown: the claim, if it
// survived, is handed out again with the same Key and Token (the dedupe
// rule of the package documentation: it is the claim already held; Ack it
// again).
type Consumer struct {
	s    *concurrency.Session
	core *queueCore
	id   string // value of this consumer's claim keys

	vis    time.Duration // WithVisibilityTimeout, as a lease TTL; 0: none
	visErr error         // an invalid visibility timeout

	mu     sync.Mutex
	held   map[string]struct{} // claim keys handed out and not yet acked or nacked
	leases map[clientv3.LeaseID]*claimLease
	cur    *claimLease // granted for the next claim (visibility timeout)
}

// NewConsumer returns a consumer of the queue stored under prefix whose
// claims live as long as session s.
func NewConsumer(s *concurrency.Session, prefix string, opts ...QueueOption) *Consumer {
	c := &Consumer{
		s:      s,
		core:   newQueueCore(s.Client(), prefix, opts),
		id:     sessionKey("", s),
		held:   map[string]struct{}{},
		leases: map[clientv3.LeaseID]*claimLease{},
	}
	c.vis, c.visErr = c.core.opts.visibilityTTL()
	return c
}

// Claim is an item held by one consumer until it is acked, nacked, or the
// consumer's session ends.
type Claim struct {
	c     *Consumer
	item  string
	key   string
	value string
	rev   int64
	lease *claimLease // WithVisibilityTimeout; nil: the session's
	st    claimState  // Done, Err and Context (claim_hold.go)
}

// Claim blocks until it holds the oldest free item, ctx is done, or the
// consumer's session ends (an error wrapping ErrSessionExpired).
func (c *Consumer) Claim(ctx context.Context) (*Claim, error) {
	op := "claim from " + c.core.prefix
	if c.visErr != nil {
		return nil, fmt.Errorf("recipes: %s: %w", op, c.visErr)
	}
	if sessionDone(c.s) {
		return nil, fmt.Errorf("%w: %s: lease %x is no longer kept alive", ErrSessionExpired, op, int64(c.s.Lease()))
	}
	wctx, stop := withSession(ctx, c.s)
	defer stop()
	var got *Claim
	err := c.core.acquire(wctx, op, func(ctx context.Context, s *queueSnap) (bool, *queueSnap, error) {
		if cl, err := c.adopt(ctx, s); err != nil || cl != nil {
			got = cl
			return cl != nil, nil, err
		}
		lease, cl, err := c.leaseFor(ctx)
		if err != nil {
			return false, nil, err
		}
		cands := c.core.free(s, c.core.takeWidth())
		i, resps, rev, view, err := c.core.take(ctx, s, cands, func(item *mvccpb.KeyValue) []*pb.RequestOp {
			return []*pb.RequestOp{
				putOp(&pb.PutRequest{Key: []byte(c.core.claimKey(string(item.Key))), Value: []byte(c.id), Lease: lease}),
				getOp(&pb.RangeRequest{Key: item.Key}),
			}
		})
		if err != nil && cl != nil && isLeaseNotFound(err) {
			c.dropLease(cl) // expired before it was used: nothing written
			return false, nil, nil
		}
		if err != nil || i < 0 {
			return false, view, err
		}
		kvs := resps[1].GetResponseRange().GetKvs()
		if len(kvs) != 1 {
			return false, nil, fmt.Errorf("%w: claim of %q read %d items", ErrEtcd, cands[i].Key, len(kvs))
		}
		got = c.hand(string(cands[i].Key), string(kvs[0].Value), rev, cl)
		c.core.advanceFloor(ctx, s)
		return true, view, nil
	})
	if err != nil {
		return nil, err
	}
	return got, nil
}

// adopt looks in s for a claim of this consumer that was never handed out
// (its transaction's answer was lost) and hands it out. It looks only in a
// snapshot read by the current call: one read earlier (fromView) may still
// hold claims that were acked or nacked since. The call after a take whose
// outcome is unknown always reads afresh (queueCore.rescan).
func (c *Consumer) adopt(ctx context.Context, s *queueSnap) (*Claim, error) {
	if s.reused {
		return nil, nil
	}
	for key, kv := range s.claims {
		if string(kv.Value) != c.id || c.isHeld(key) {
			continue
		}
		var cl *claimLease
		if kv.Lease != int64(c.s.Lease()) {
			if cl = c.ownLease(kv.Lease); cl == nil {
				continue
			}
		}
		item := c.core.itemKey(key)
		resp, err := getAtLeast(ctx, c.core.client, s.rev, clientv3.OpGet(item))
		if err != nil {
			return nil, err
		}
		if it := resp.Responses[0].GetResponseRange().GetKvs(); len(it) == 1 {
			if !c.reserve(key) {
				continue // a concurrent Claim of this Consumer took it
			}
			if cl != nil {
				c.useLease(cl, 1)
			}
			return &Claim{c: c, item: item, key: key, value: string(it[0].Value), rev: kv.CreateRevision, lease: cl}, nil
		}
		// The item was removed behind the queue's back; drop the claim.
		if _, err := deleteOwned(ctx, c.core.client, key, kv.CreateRevision); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func (c *Consumer) isHeld(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.held[key]
	return ok
}

// reserve marks claim key as handed out, unless it already is.
func (c *Consumer) reserve(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.held[key]; ok {
		return false
	}
	c.held[key] = struct{}{}
	return true
}

func (c *Consumer) hand(item, value string, rev int64, l *claimLease) *Claim {
	key := c.core.claimKey(item)
	c.mu.Lock()
	c.held[key] = struct{}{}
	c.mu.Unlock()
	if l != nil {
		c.useLease(l, 1)
	}
	return &Claim{c: c, item: item, key: key, value: value, rev: rev, lease: l}
}

// leaseFor returns the lease the next claim key is bound to: the session's
// (cl nil), or with a visibility timeout, a claim lease of its own.
func (c *Consumer) leaseFor(ctx context.Context) (int64, *claimLease, error) {
	if c.vis == 0 {
		return int64(c.s.Lease()), nil, nil
	}
	cl, err := c.nextLease(ctx)
	if err != nil {
		return 0, nil, err
	}
	return int64(cl.id), cl, nil
}

func (c *Consumer) drop(key string) {
	c.mu.Lock()
	delete(c.held, key)
	c.mu.Unlock()
}

// Value is the item's value.
func (cl *Claim) Value() string { return cl.value }

// Key is the item's key. It identifies the item across redeliveries.
func (cl *Claim) Key() string { return cl.item }

// Token is the revision at which the claim was made. Tokens grow with
// every claim, so a later claim of the same item has a larger token.
func (cl *Claim) Token() int64 { return cl.rev }

// Guard is a comparison that holds only while this claim does. Put it in
// the If of the transactions that record the item's processing, so they
// fail once the claim is lost.
func (cl *Claim) Guard() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(cl.key), "=", cl.rev)
}

// Ack deletes the item, only if this claim still holds it; otherwise it
// returns an error wrapping ErrClaimLost and deletes nothing. Of all the
// claims ever made on one item, at most one Ack succeeds.
func (cl *Claim) Ack(ctx context.Context) error {
	return cl.finish(ctx, "ack", deleteOp([]byte(cl.item)), deleteOp([]byte(cl.key)))
}

// Nack gives the item back: it is free again at its original place in the
// queue. It returns an error wrapping ErrClaimLost when the claim is gone.
func (cl *Claim) Nack(ctx context.Context) error {
	return cl.finish(ctx, "nack", deleteOp([]byte(cl.key)))
}

func (cl *Claim) finish(ctx context.Context, verb string, ops ...*pb.RequestOp) (err error) {
	cl.beginFinish()
	defer func() { cl.endFinish(err) }()
	// Whatever the outcome, the claim is no longer the caller's to lose:
	// if it survives a failed call, the next scan hands it out again.
	defer cl.c.drop(cl.key)
	op := verb + " " + cl.item
	core := cl.c.core
	req := &pb.TxnRequest{
		Compare: []*pb.Compare{createdAt([]byte(cl.key), nil, cl.rev)}, // Guard
		Success: ops,
	}
	resp, err := waitAnswer(ctx, core.client, cl.key, func(ctx context.Context) (*clientv3.TxnResponse, error) {
		return commitTxn(ctx, core.client, core.raw, req, true)
	})
	if err != nil {
		return attemptErr(ctx, op, err)
	}
	if cl.lease != nil {
		cl.c.releaseLease(cl.lease) // settled: the claim key is gone
	}
	if !resp.Succeeded {
		return lossError(cl.key, cl.rev, resp.Header.Revision, fmt.Errorf("%w: %s: claim at revision %d is gone", ErrClaimLost, op, cl.rev))
	}
	return nil
}
