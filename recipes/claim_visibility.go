package recipes

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// WithVisibilityTimeout gives every claim of a [Consumer] a lease of its
// own, with a TTL of d (rounded up to whole seconds; etcd raises a TTL
// below its minimum, about 1.5 s by default): a claim expires d after it
// was made even if its consumer is alive but stuck, and the item is handed
// out again. [Claim.Extend] renews the claim for another d. Without it, a
// claim lives as long as the consumer's session. A d below 1 s makes
// Claim fail with ErrVisibilityTimeout. Queues and Dequeue ignore it.
//
// Claim.Guard stays correct across expiry: the expired claim key is
// deleted with its lease, and a later claim of the item has a new create
// revision, so writes guarded by the old claim fail from the revision at
// which it expired. Claim.Context ends at the claim's local deadline: the
// send time of its grant or last acknowledged Extend, plus the TTL, minus
// a third of it (cause ErrLeaseDeadline); extend before it.
func WithVisibilityTimeout(d time.Duration) QueueOption {
	return func(o *queueOptions) { o.visibility, o.hasVisibility = d, true }
}

// claimLease is the lease of one claim made with a visibility timeout
// (shared by the claims of one ClaimN).
type claimLease struct {
	id  clientv3.LeaseID
	ttl time.Duration

	mu       sync.Mutex
	used     bool      // a claim was made with it
	refs     int       // claims not yet acked or nacked
	deadline time.Time // send time of the grant or last renewal + ttl - ttl/3
	timer    *time.Timer
	ctx      context.Context // ends at the deadline
	cancel   context.CancelCauseFunc
}

func newClaimLease(id clientv3.LeaseID, ttl time.Duration, sent time.Time) *claimLease {
	l := &claimLease{id: id, ttl: ttl}
	l.ctx, l.cancel = context.WithCancelCause(context.Background())
	l.deadline = sent.Add(ttl - ttl/3)
	l.timer = time.AfterFunc(time.Until(l.deadline), func() {
		l.cancel(fmt.Errorf("%w: claim lease %x", ErrLeaseDeadline, int64(id)))
	})
	return l
}

// renewed moves the deadline after a renewal sent at sent was acknowledged
// with a TTL of ttl, unless the deadline already passed.
func (l *claimLease) renewed(sent time.Time, ttl time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ctx.Err() != nil {
		return
	}
	l.deadline = sent.Add(ttl - l.ttl/3)
	if l.timer.Stop() {
		l.timer.Reset(time.Until(l.deadline))
	}
}

// visibility returns the consumer's visibility timeout as a lease TTL, 0
// without one, or ErrVisibilityTimeout.
func (o queueOptions) visibilityTTL() (time.Duration, error) {
	if !o.hasVisibility {
		return 0, nil
	}
	if o.visibility < time.Second {
		return 0, fmt.Errorf("%w: %v", ErrVisibilityTimeout, o.visibility)
	}
	return (o.visibility + time.Second - 1).Truncate(time.Second), nil
}

// nextLease returns the lease the next claim is made with: the last one
// granted if no claim used it and it is young, else a new one.
func (c *Consumer) nextLease(ctx context.Context) (*claimLease, error) {
	c.mu.Lock()
	if l := c.cur; l != nil {
		l.mu.Lock()
		fresh := !l.used && time.Until(l.deadline) > l.ttl/2
		l.mu.Unlock()
		if fresh {
			c.mu.Unlock()
			return l, nil
		}
	}
	c.mu.Unlock()
	sent := time.Now()
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	resp, err := c.core.client.Grant(actx, int64(c.vis/time.Second))
	if err != nil {
		return nil, err
	}
	l := newClaimLease(resp.ID, time.Duration(resp.TTL)*time.Second, sent)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.cur; old != nil && !old.used {
		delete(c.leases, old.id) // unused: it expires by itself
	}
	c.cur = l
	c.leases[l.id] = l
	return l, nil
}

// dropLease forgets lease l after etcd said it is gone.
func (c *Consumer) dropLease(l *claimLease) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == l {
		c.cur = nil
	}
	delete(c.leases, l.id)
}

// useLease marks l as used by n new claims.
func (c *Consumer) useLease(l *claimLease, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	l.mu.Lock()
	l.used = true
	l.refs += n
	l.mu.Unlock()
	if c.cur == l {
		c.cur = nil
	}
}

// ownLease returns the claim lease id of this consumer, or nil.
func (c *Consumer) ownLease(id int64) *claimLease {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leases[clientv3.LeaseID(id)]
}

// releaseLease drops one claim's reference to l after its Ack or Nack
// settled; the last one revokes the lease (in the background: nothing
// depends on it any more).
func (c *Consumer) releaseLease(l *claimLease) {
	l.mu.Lock()
	l.refs--
	last := l.refs <= 0
	l.mu.Unlock()
	if !last {
		return
	}
	c.mu.Lock()
	delete(c.leases, l.id)
	c.mu.Unlock()
	l.timer.Stop()
	l.cancel(nil)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), attemptTimeout)
		defer cancel()
		_, _ = c.core.client.Revoke(ctx, l.id)
	}()
}

// Extend renews a claim made by a Consumer with a visibility timeout for
// another timeout from now, and moves its Context's deadline. It fails
// with an error wrapping ErrClaimLost when the claim expired (or was acked
// or nacked); other errors leave the claim as it was. The claims of one
// ClaimN share a lease: extending one extends them all. Without a
// visibility timeout the claim lives as long as the session, and Extend
// only checks that the session is still kept alive.
func (cl *Claim) Extend(ctx context.Context) error {
	op := "extend claim " + cl.item
	l := cl.lease
	if l == nil {
		if sessionDone(cl.c.s) {
			return lossError(cl.key, cl.rev, 0, fmt.Errorf("%w: %s: the session ended", ErrClaimLost, op))
		}
		return nil
	}
	sent := time.Now()
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	resp, err := cl.c.core.client.KeepAliveOnce(actx, l.id)
	if err != nil {
		if isLeaseNotFound(err) {
			return lossError(cl.key, cl.rev, 0, fmt.Errorf("%w: %s: its lease expired", ErrClaimLost, op))
		}
		return attemptErr(ctx, op, err)
	}
	if resp.TTL <= 0 {
		return lossError(cl.key, cl.rev, resp.Revision, fmt.Errorf("%w: %s: its lease expired", ErrClaimLost, op))
	}
	// The lease lives on, but the claim key may have been deleted (acked,
	// nacked, or removed by hand): check it.
	g, err := getAtLeast(ctx, cl.c.core.client, 0, clientv3.OpGet(cl.key, clientv3.WithKeysOnly()))
	if err != nil {
		return attemptErr(ctx, op, err)
	}
	kvs := g.Responses[0].GetResponseRange().GetKvs()
	if len(kvs) != 1 || kvs[0].CreateRevision != cl.rev {
		return lossError(cl.key, cl.rev, g.Header.Revision, fmt.Errorf("%w: %s: claim at revision %d is gone", ErrClaimLost, op, cl.rev))
	}
	l.renewed(sent, time.Duration(resp.TTL)*time.Second)
	return nil
}
