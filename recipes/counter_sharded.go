package recipes

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// ShardedCounter is an int64 counter spread over n keys, "<prefix>/0" to
// "<prefix>/<n-1>", for counters that many clients add to at once: each
// Add is a Counter.Add on one shard picked at random, so n writers rarely
// collide on a compare-and-swap. Get sums every shard in one read, that
// is at one revision, so the sum is a value the counter had at that
// revision. A missing shard counts as 0; a shard that holds no number is
// ErrNotNumber.
//
// An Add is linearizable and never lost, like a Counter's; unlike a
// Counter, Add cannot return the new total (that would need a read of
// every shard), and there is no CompareAndSwap.
type ShardedCounter struct {
	client *clientv3.Client
	prefix string
	shards []*Counter
}

// NewShardedCounter returns the counter stored in n shards under prefix.
// Every user of a counter must use the same n. An empty prefix or n < 1
// is ErrInvalidArgument.
func NewShardedCounter(client *clientv3.Client, prefix string, n int) (*ShardedCounter, error) {
	if prefix == "" {
		return nil, fmt.Errorf("%w: sharded counter: empty prefix", ErrInvalidArgument)
	}
	if n < 1 {
		return nil, fmt.Errorf("%w: sharded counter %s: n is %d, must be at least 1", ErrInvalidArgument, prefix, n)
	}
	sc := &ShardedCounter{client: client, prefix: prefix}
	for i := range n {
		c, err := NewCounter(client, prefix+"/"+strconv.Itoa(i))
		if err != nil {
			return nil, err
		}
		sc.shards = append(sc.shards, c)
	}
	return sc, nil
}

// Add adds delta to one shard, picked at random. The errors are those of
// Counter.Add on that shard.
func (sc *ShardedCounter) Add(ctx context.Context, delta int64) error {
	_, err := sc.shards[rand.IntN(len(sc.shards))].Add(ctx, delta)
	return err
}

// Get returns the sum of the shards and the revision at which it was
// read. A sum that overflows int64 is ErrInvalidArgument.
func (sc *ShardedCounter) Get(ctx context.Context) (int64, int64, error) {
	op := "get sharded counter " + sc.prefix
	ops := make([]clientv3.Op, len(sc.shards))
	for i, c := range sc.shards {
		ops[i] = clientv3.OpGet(c.key)
	}
	resp, err := sc.client.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return 0, 0, etcdErr(op, err)
	}
	var sum int64
	for i, c := range sc.shards {
		st, err := c.parse(op, resp.Responses[i].GetResponseRange())
		if err != nil {
			return 0, 0, err
		}
		n := sum + st.value
		if (st.value > 0 && n < sum) || (st.value < 0 && n > sum) {
			return 0, 0, fmt.Errorf("%w: %s: the sum of the shards overflows int64", ErrInvalidArgument, op)
		}
		sum = n
		c.last.Store(&st)
	}
	return sum, resp.Header.Revision, nil
}
