package recipes

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// PriorityQueue is a multi-producer, multi-consumer queue that hands out
// items by priority, lowest value first, and FIFO within a priority.
//
// Each priority has its own sub-prefix, "<prefix>/items/<priority as 4 hex
// digits>/", and each item a key of its own under it, built like a
// [Queue]'s: "<revision hint>-<random>"; within a priority, items go out
// in the order their Enqueues committed. An Enqueue is one write of a key
// nobody else writes. Etcd's recipe instead funnels every enqueue of every
// producer through one compare-and-swap bookkeeping key, so producers
// conflict and retry on that hot key.
//
// Dequeue is at-most-once; a [Consumer] created on the same prefix claims
// items at least once, in the same priority order.
//
// Unlike a [Queue] it keeps no floor (a new item of a lower priority value
// sorts before older ones), so every head read walks the index entries of
// the items deleted since etcd's last compaction: compact regularly (etcd's
// --auto-compaction-retention) when it carries many items. A prefix is
// either a Queue or a PriorityQueue: Enqueue refuses a Queue's prefix with
// ErrInvalidArgument.
type PriorityQueue struct {
	core *queueCore
}

// NewPriorityQueue returns the priority queue stored under prefix. An empty
// prefix makes every call fail with ErrInvalidArgument.
func NewPriorityQueue(client *clientv3.Client, prefix string, opts ...QueueOption) *PriorityQueue {
	return &PriorityQueue{core: newQueueCore(client, prefix, opts)}
}

// Enqueue adds value with priority pr. Items with a lower pr are dequeued
// first.
//
// It returns the item's key and create revision. If Enqueue fails with an
// etcd error the item may or may not have been added; trying again may add
// it twice, unless it is made [WithID] (see [Queue.Enqueue]).
func (q *PriorityQueue) Enqueue(ctx context.Context, value string, pr uint16, opts ...EnqueueOption) (Item, error) {
	return q.core.put(ctx, fmt.Sprintf("%04x/", pr), value, buildEnqueueOptions(opts))
}

// Dequeue removes and returns the item with the lowest priority value that
// was enqueued first, blocking until there is one or ctx is done. Delivery
// is at most once, as for [Queue.Dequeue].
func (q *PriorityQueue) Dequeue(ctx context.Context) (string, error) {
	kv, err := q.core.dequeue(ctx)
	if err != nil {
		return "", err
	}
	return string(kv.Value), nil
}

// Len returns the number of items in the queue, claimed or not.
func (q *PriorityQueue) Len(ctx context.Context) (int, error) {
	return q.core.length(ctx)
}
