package client

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Range describes a read of several keys, as `etcdctl get` does it.
type Range struct {
	// Key is the start of the range, End its end (exclusive). An empty End
	// reads Key alone; NoPrefixEnd reads every key from Key on.
	Key, End string
	// Limit caps the number of keys returned (0: no cap).
	Limit int64
	// Revision reads the keys as of that revision (0: the current one).
	Revision int64
	// KeysOnly leaves the values out.
	KeysOnly bool
}

// RangeResult is the answer to a Range.
type RangeResult struct {
	Kvs []KeyValue
	// Revision is the revision of the cluster when it answered.
	Revision int64
	// Count is the number of keys in the range, which may be more than
	// returned when Limit is set; More tells whether there are more.
	Count int64
	More  bool
}

// GetRange reads a range of keys in one request, sorted by key.
func (c *Client) GetRange(ctx context.Context, r Range) (*RangeResult, error) {
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	var opts []clientv3.OpOption
	if r.End != "" {
		opts = append(opts, clientv3.WithRange(r.End))
	}
	if r.Limit > 0 {
		opts = append(opts, clientv3.WithLimit(r.Limit))
	}
	if r.Revision > 0 {
		opts = append(opts, clientv3.WithRev(r.Revision))
	}
	if r.KeysOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	resp, err := c.Get(ctx, r.Key, opts...)
	if err != nil {
		what := fmt.Sprintf("read the keys from %q to %q", r.Key, r.End)
		if r.End == "" {
			what = fmt.Sprintf("read key %q", r.Key)
		}
		if r.Revision > 0 {
			what += fmt.Sprintf(" at revision %d", r.Revision)
		}
		return nil, c.Describe(err, what, "")
	}
	out := &RangeResult{Revision: resp.Header.Revision, Count: resp.Count, More: resp.More}
	out.Kvs = make([]KeyValue, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		out.Kvs[i] = *fromKV(kv)
	}
	return out, nil
}
