package recipes

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Counter is a linearizable int64 counter stored in one key, as a decimal
// string (a missing key counts as 0).
//
// Add and CompareAndSwap are compare-and-swap transactions on the key's
// mod revision, so concurrent Adds never lose an update. A failed compare
// reads the key in the same transaction, so a retry under contention
// costs one round trip, not the two of a Get followed by a CAS; and the
// Counter remembers the last value it saw, so an uncontended Add is one
// round trip too.
//
// A write that fails in a way that hides its outcome (an etcd error
// wrapping ErrEtcd) is not retried: it may or may not have been applied.
type Counter struct {
	client *clientv3.Client
	raw    *rawKV
	key    string
	last   atomic.Pointer[counterState] // the last state seen; nil: unknown
}

type counterState struct {
	value  int64
	modRev int64 // 0: the key does not exist
}

// NewCounter returns the counter stored in key. An empty key is
// ErrInvalidArgument.
func NewCounter(client *clientv3.Client, key string) (*Counter, error) {
	if key == "" {
		return nil, fmt.Errorf("%w: counter: empty key", ErrInvalidArgument)
	}
	return &Counter{client: client, raw: newRawKV(client), key: key}, nil
}

// Key is the counter's key.
func (c *Counter) Key() string { return c.key }

// parse reads a counter state from the range response of the key.
func (c *Counter) parse(op string, r *pb.RangeResponse) (counterState, error) {
	if r == nil || len(r.Kvs) == 0 {
		return counterState{}, nil
	}
	kv := r.Kvs[0]
	v, err := strconv.ParseInt(string(kv.Value), 10, 64)
	if err != nil {
		return counterState{}, fmt.Errorf("%w: %s: %s holds %q", ErrNotNumber, op, c.key, truncate(string(kv.Value), 32))
	}
	return counterState{value: v, modRev: kv.ModRevision}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// Get returns the counter's value and the revision of the read.
func (c *Counter) Get(ctx context.Context) (int64, int64, error) {
	op := "get counter " + c.key
	resp, err := c.client.Get(ctx, c.key)
	if err != nil {
		return 0, 0, etcdErr(op, err)
	}
	st, err := c.parse(op, (*pb.RangeResponse)(resp))
	if err != nil {
		return 0, 0, err
	}
	c.last.Store(&st)
	return st.value, resp.Header.Revision, nil
}

// Add adds delta to the counter and returns the new value. A value that
// would overflow int64 is ErrInvalidArgument; a key that holds no number
// is ErrNotNumber; neither changes anything.
func (c *Counter) Add(ctx context.Context, delta int64) (int64, error) {
	op := "add to counter " + c.key
	var out int64
	err := c.update(ctx, op, func(v int64) (int64, bool, error) {
		n := v + delta
		if (delta > 0 && n < v) || (delta < 0 && n > v) {
			return 0, false, fmt.Errorf("%w: %s: %d + %d overflows int64", ErrInvalidArgument, op, v, delta)
		}
		out = n
		return n, true, nil
	})
	return out, err
}

// CompareAndSwap sets the counter to new if it is old, and reports
// whether it did.
func (c *Counter) CompareAndSwap(ctx context.Context, old, new int64) (bool, error) {
	swapped := false
	err := c.update(ctx, "compare-and-swap counter "+c.key, func(v int64) (int64, bool, error) {
		swapped = v == old
		return new, swapped, nil
	})
	return swapped, err
}

// update applies f to the counter's value with a CAS on its mod revision,
// until a CAS succeeds or f declines (write false) or fails.
func (c *Counter) update(ctx context.Context, op string, f func(v int64) (next int64, write bool, err error)) error {
	st := c.last.Load()
	fresh := false // st was read by this call (a linearizable read or a failed CAS)
	key := []byte(c.key)
	for {
		if st == nil {
			if _, _, err := c.Get(ctx); err != nil {
				return err
			}
			st, fresh = c.last.Load(), true
		}
		next, write, err := f(st.value)
		if err != nil || !write {
			if !fresh {
				// Decided on a state remembered from before this call: decide
				// again on a fresh read, the call's linearization point.
				st = nil
				continue
			}
			return err
		}
		req := &pb.TxnRequest{
			Compare: []*pb.Compare{modifiedAt(key, st.modRev)},
			Success: []*pb.RequestOp{putOp(&pb.PutRequest{Key: key, Value: strconv.AppendInt(nil, next, 10)})},
			Failure: []*pb.RequestOp{getOp(&pb.RangeRequest{Key: key})},
		}
		resp, err := waitAnswer(ctx, c.client, c.key, func(ctx context.Context) (*clientv3.TxnResponse, error) {
			return commitTxn(ctx, c.client, c.raw, req, true)
		})
		if err != nil {
			c.last.Store(nil) // unknown: read before the next update
			return attemptErr(ctx, op, err)
		}
		if resp.Succeeded {
			c.last.Store(&counterState{value: next, modRev: resp.Header.Revision})
			return nil
		}
		now, err := c.parse(op, resp.Responses[0].GetResponseRange())
		if err != nil {
			return err
		}
		c.last.Store(&now)
		st, fresh = &now, true
	}
}
