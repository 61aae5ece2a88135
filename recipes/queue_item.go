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
	// NotBefore is when the item becomes ready, for an Enqueue made
	// WithDelay or WithNotBefore (in this process's clock); zero otherwise.
	NotBefore time.Time
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
	// WithDelay, WithNotBefore (the last one given counts)
	delay     time.Duration
	notBefore time.Time
	timed     int // 0: none, 1: delay, 2: not-before
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

// MaxDelay is the longest delay an Enqueue accepts (WithDelay, or
// WithNotBefore that far ahead).
const MaxDelay = 24 * time.Hour

// WithDelay makes an Enqueue's item ready only d from now: no Dequeue or
// Claim hands it out before that, in the clock of the process that takes
// it (keep the clocks of producers and consumers in sync). Among ready
// items the queue's order holds: an item is handed out in its place by
// Enqueue order, not by when it became ready. A delay below 0 or above
// MaxDelay is ErrInvalidDelay; 0 is no delay.
//
// A delayed item is a key like any other, in its place in the queue (the
// time it becomes ready is part of its key): it counts in Len, and while
// it waits, head reads step over it. Consumers blocked on a queue whose
// items are all waiting wake when the earliest becomes ready, by a timer,
// without polling etcd.
func WithDelay(d time.Duration) EnqueueOption {
	return func(o *enqueueOptions) { o.delay, o.timed = d, 1 }
}

// WithNotBefore makes an Enqueue's item ready only at t (see WithDelay). A
// t in the past is no delay; one more than MaxDelay ahead is
// ErrInvalidDelay.
func WithNotBefore(t time.Time) EnqueueOption {
	return func(o *enqueueOptions) { o.notBefore, o.timed = t, 2 }
}

// check validates the options of an Enqueue, and returns the time its item
// becomes ready (zero: at once).
func (o enqueueOptions) check(op string, now time.Time) (time.Time, error) {
	if o.hasID && o.id == "" {
		return time.Time{}, fmt.Errorf("%w: %s: WithID with an empty id", ErrInvalidArgument, op)
	}
	var at time.Time
	switch o.timed {
	case 1:
		if o.delay < 0 || o.delay > MaxDelay {
			return time.Time{}, fmt.Errorf("%w: %s: WithDelay(%v)", ErrInvalidDelay, op, o.delay)
		}
		if o.delay > 0 {
			at = now.Add(o.delay)
		}
	case 2:
		if d := o.notBefore.Sub(now); d > MaxDelay {
			return time.Time{}, fmt.Errorf("%w: %s: WithNotBefore %v ahead", ErrInvalidDelay, op, d.Round(time.Second))
		} else if d > 0 {
			at = o.notBefore
		}
	}
	return at, nil
}

// readyMark is the mark of a delayed item's key: "<hint>-t<16 hex digits:
// not-before in Unix nanoseconds>-<random>". A plain item's random part
// (base32, upper case) never starts with it.
const readyMark = 't'

// notBeforeOf returns the not-before time (Unix nanoseconds) in item key k
// (after the items prefix and a priority sub-prefix), or 0.
func notBeforeOf(k []byte) int64 {
	if len(k) < 17+1+16 || k[16] != '-' || k[17] != readyMark {
		return 0
	}
	var nb int64
	for _, c := range k[18 : 18+16] {
		switch {
		case c >= '0' && c <= '9':
			nb = nb<<4 | int64(c-'0')
		case c >= 'a' && c <= 'f':
			nb = nb<<4 | int64(c-'a'+10)
		default:
			return 0
		}
	}
	return max(nb, 0)
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
