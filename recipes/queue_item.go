package recipes

import (
	"context"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Item is what an Enqueue reports about the item it added.
type Item struct {
	// Key is the item's key in etcd. It is what [Claim.Key] returns for
	// the claims of the item.
	Key string
	// Revision is the item's create revision: its place in the queue's
	// FIFO order. A Get of Key at that revision shows the item (unless it
	// was compacted away).
	Revision int64
	// Duplicate is set by an Enqueue WithID that found an item enqueued
	// earlier with the same ID (within the dedupe window): nothing was
	// added, and Key and Revision are the earlier item's.
	Duplicate bool
}

// EnqueueOption configures one Enqueue of a [Queue] or [PriorityQueue].
type EnqueueOption func(*enqueueOptions)

type enqueueOptions struct {
	id    string
	hasID bool
}

// WithID makes an Enqueue idempotent: it adds the item only if no item was
// enqueued with the same id (on the same queue prefix) within the queue's
// dedupe window ([WithDedupeWindow], default 5 minutes); otherwise it adds
// nothing and returns the earlier item with Duplicate set. A producer whose
// Enqueue failed with an unknown outcome (an error wrapping ErrEtcd) can
// thus send it again, with the same id, without adding the item twice,
// as long as it does so within the window.
//
// The ids are kept under "<prefix>/ids/", one small key per id, bound to
// a lease that etcd expires after the window (each id lives between one
// and two windows). An empty id is ErrInvalidArgument.
func WithID(id string) EnqueueOption {
	return func(o *enqueueOptions) { o.id, o.hasID = id, true }
}

func buildEnqueueOptions(opts []EnqueueOption) enqueueOptions {
	var o enqueueOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	return o
}

// check validates the options of an Enqueue.
func (o enqueueOptions) check(op string) error {
	if o.hasID && o.id == "" {
		return fmt.Errorf("%w: %s: WithID with an empty id", ErrInvalidArgument, op)
	}
	return nil
}

// defaultDedupeWindow is how long the ids of WithID are kept by default.
const defaultDedupeWindow = 5 * time.Minute

// WithDedupeWindow sets how long a [Queue] or [PriorityQueue] remembers the
// ids of Enqueues made WithID (default 5 minutes, at least 1 s): an id
// lives from its Enqueue for at least d and at most 2d.
func WithDedupeWindow(d time.Duration) QueueOption {
	return func(o *queueOptions) {
		if d >= time.Second {
			o.dedupe = d
		}
	}
}

// idLease is the lease the ids of one queue value are bound to: granted
// with a TTL of two windows and used for one window, so every id lives at
// least one window.
type idLease struct {
	mu      sync.Mutex
	id      clientv3.LeaseID
	granted time.Time
}

// get returns a lease to bind an id to, granting a new one when the
// current one is older than window (or was found gone: drop).
func (l *idLease) get(ctx context.Context, c *clientv3.Client, window time.Duration) (clientv3.LeaseID, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.id != 0 && time.Since(l.granted) < window {
		return l.id, nil
	}
	ttl := int64((2*window + time.Second - 1) / time.Second)
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	resp, err := c.Grant(actx, ttl)
	if err != nil {
		return 0, err
	}
	l.id, l.granted = resp.ID, start
	return l.id, nil
}

// drop forgets lease id (etcd no longer has it).
func (l *idLease) drop(id clientv3.LeaseID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.id == id {
		l.id = 0
	}
}
