package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
)

// maxReadBatch is how many key reads go into one transaction. It is etcd's
// default --max-txn-ops; a cluster configured lower answers "too many
// operations", and the batch size then halves.
const maxReadBatch = 128

// maxReadSenders is how many requests of queued reads may be in flight at
// once. One would batch the most, but a read that arrives just after a
// request left then waits for its answer before it is sent: two round trips
// instead of one. With two, a read is sent at once unless two requests are
// already out, and reads still share requests under load.
const maxReadSenders = 2

// keyReads coalesces concurrent GetKey calls. A refresh reads every managed
// key at once (Terraform runs ten reads in parallel by default), and each
// read on its own is a linearizable Range: a ReadIndex round of the leader
// with its followers, then the read. GetKey instead queues its key; up to
// maxReadSenders sender goroutines each send what is queued as one
// request, a plain Range when one key is waiting and a read-only
// transaction of up to maxReadBatch Ranges otherwise, and whatever arrives
// meanwhile goes in a next one. Nothing waits for a batch to fill: an idle
// client sends at once, so a lone read costs what it did.
//
// Each read is still linearizable: it is sent after GetKey was called, and
// a read-only transaction of linearizable Ranges is served at one revision
// after a ReadIndex, exactly as a Range is.
type keyReads struct {
	mu      sync.Mutex
	queue   []*keyRead
	senders int // goroutines sending reads, at most maxReadSenders
	limit   int // current batch size; 0 means maxReadBatch

	// requests counts what was sent, and fallbacks the batches read again
	// one by one, for tests.
	requests, fallbacks atomic.Int64

	// hooks is nil except in tests, which use it to make a batch by
	// construction rather than wait for the scheduler to make one.
	hooks *readHooks
}

// readHooks let a test see reads queue up and hold the senders back.
type readHooks struct {
	// queued is called after a read is queued, with the number of reads
	// then waiting.
	queued func(waiting int)
	// take is called by a sender each time before it takes reads off the
	// queue; it may block.
	take func()
}

type keyRead struct {
	ctx  context.Context
	key  string
	done chan struct{}
	kv   *KeyValue
	err  error
}

// GetKey reads one key with a linearizable read. A missing key yields an
// error wrapping ErrKeyNotFound. Concurrent calls share requests (see
// keyReads).
func (c *Client) GetKey(ctx context.Context, key string) (*KeyValue, error) {
	r := &keyRead{ctx: ctx, key: key, done: make(chan struct{})}
	c.reads.mu.Lock()
	c.reads.queue = append(c.reads.queue, r)
	waiting := len(c.reads.queue)
	start := c.reads.senders < maxReadSenders
	if start {
		c.reads.senders++
	}
	c.reads.mu.Unlock()
	if start {
		go c.sendReads()
	}
	if h := c.reads.hooks; h != nil {
		h.queued(waiting)
	}
	select {
	case <-r.done:
	case <-ctx.Done():
		return nil, c.Describe(ctx.Err(), "read", key)
	}
	if r.err != nil {
		return nil, c.Describe(r.err, "read", key)
	}
	if r.kv == nil {
		return nil, fmt.Errorf("key %q: %w", key, ErrKeyNotFound)
	}
	return r.kv, nil
}

// sendReads sends queued reads until the queue is empty.
func (c *Client) sendReads() {
	for {
		if h := c.reads.hooks; h != nil {
			h.take()
		}
		c.reads.mu.Lock()
		var batch []*keyRead
		limit := c.reads.limit
		if limit == 0 {
			limit = maxReadBatch
		}
		for len(c.reads.queue) > 0 && len(batch) < limit {
			r := c.reads.queue[0]
			c.reads.queue[0] = nil
			c.reads.queue = c.reads.queue[1:]
			if r.ctx.Err() == nil { // else its caller has given up: drop it
				batch = append(batch, r)
			}
		}
		if len(batch) == 0 && len(c.reads.queue) == 0 {
			c.reads.senders--
			if c.reads.senders == 0 {
				c.reads.queue = nil
			}
			c.reads.mu.Unlock()
			return
		}
		c.reads.mu.Unlock()
		if len(batch) > 0 {
			c.readBatch(batch)
		}
	}
}

// readBatch reads the keys of batch and completes every read in it.
func (c *Client) readBatch(batch []*keyRead) {
	if len(batch) == 1 {
		c.readOne(batch[0])
		return
	}
	ops := make([]clientv3.Op, len(batch))
	for i, r := range batch {
		ops[i] = clientv3.OpGet(r.key)
	}
	ctx, cancel := c.Ctx(context.Background())
	c.reads.requests.Add(1)
	resp, err := c.Txn(ctx).Then(ops...).Commit()
	cancel()
	switch {
	case err == nil && len(resp.Responses) == len(batch):
		for i, r := range batch {
			if kvs := resp.Responses[i].GetResponseRange().GetKvs(); len(kvs) > 0 {
				r.kv = fromKV(kvs[0])
			}
			close(r.done)
		}
		return
	case err == nil:
		// A result per operation is what etcd promises; without one, read
		// each key alone below.
	case errors.Is(err, context.DeadlineExceeded) || isCode(err, codes.DeadlineExceeded):
		// The request timeout is spent: reading again one by one would
		// only make the error later.
		for _, r := range batch {
			r.err = err
			close(r.done)
		}
		return
	case errors.Is(err, rpctypes.ErrTooManyOps) || errors.Is(err, rpctypes.ErrGRPCTooManyOps):
		c.reads.mu.Lock()
		c.reads.limit = max(1, len(batch)/2)
		c.reads.mu.Unlock()
	}
	// Anything else is either about one key (permission denied names no
	// key) or a transport error that clientv3 retries for a Range but not
	// for a transaction: each read then goes alone, as without batching,
	// and gets its own answer.
	c.reads.fallbacks.Add(1)
	var wg sync.WaitGroup
	for _, r := range batch {
		wg.Go(func() { c.readOne(r) })
	}
	wg.Wait()
}

// readOne reads r's key with a plain Range.
func (c *Client) readOne(r *keyRead) {
	defer close(r.done)
	ctx, cancel := c.Ctx(r.ctx)
	defer cancel()
	c.reads.requests.Add(1)
	resp, err := c.Get(ctx, r.key)
	if err != nil {
		r.err = err
		return
	}
	if len(resp.Kvs) > 0 {
		r.kv = fromKV(resp.Kvs[0])
	}
}
