package client

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// DefaultMaxTxnOps is etcd's default limit on the operations of one
// transaction (the server's --max-txn-ops).
const DefaultMaxTxnOps = 128

// prefixPageSize is how many keys the first range request of ReadPrefix
// returns. The pages are read at one revision, so together they are one
// snapshot. Later pages hold as many keys as fit in about prefixPageBytes,
// judged by the sizes of the keys read so far (between prefixMinPage and
// prefixMaxPage keys): a prefix of 100,000 small keys takes 3 requests
// instead of 50, and each is a round trip through the leader (a
// linearizable read).
const (
	prefixPageSize  = 2000
	prefixPageBytes = 4 << 20
	prefixMinPage   = 64
	prefixMaxPage   = 50000
)

// ReadPrefix reads every key that begins with prefix, sorted by key, as of
// one revision, which it returns. A prefix of up to prefixPageSize keys takes
// one request.
func (c *Client) ReadPrefix(ctx context.Context, prefix string) ([]KeyValue, int64, error) {
	if prefix == "" {
		return nil, 0, errors.New("read prefix: the prefix is empty; an empty prefix would cover the whole key space")
	}
	end := PrefixRangeEnd(prefix)
	var (
		out []KeyValue
		rev int64
	)
	from := prefix
	limit := prefixPageSize
	var readBytes int // keys and values read so far
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(int64(limit))}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		rctx, cancel := c.Ctx(ctx)
		resp, err := c.Get(rctx, from, opts...)
		cancel()
		if err != nil {
			return nil, 0, c.Describe(err, "read the keys under prefix "+quote(prefix), "")
		}
		if rev == 0 {
			rev = resp.Header.Revision
			out = make([]KeyValue, 0, resp.Count)
		}
		for _, kv := range resp.Kvs {
			out = append(out, *fromKV(kv))
			readBytes += len(kv.Key) + len(kv.Value)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return out, rev, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
		limit = nextPageLimit(readBytes, len(out))
	}
}

// GuardedOp is one write of a guarded batch: a put of Value, or a delete,
// allowed only while the key's mod_revision is still ModRevision (0: the key
// must not exist).
type GuardedOp struct {
	Key         string
	Value       []byte
	Delete      bool
	ModRevision int64
	Lease       int64 // puts only; 0: no lease
}

// Conflict is a key whose mod_revision was not the expected one.
type Conflict struct {
	Key      string
	Expected int64 // 0: expected absent
	Actual   int64 // 0: absent now
}

// ErrConflict is wrapped by *ConflictError.
var ErrConflict = errors.New("keys changed concurrently")

// ConflictError is returned by ApplyGuarded when a transaction's guard
// failed; that transaction wrote nothing.
type ConflictError struct {
	Conflicts []Conflict
}

func (e *ConflictError) Error() string {
	parts := make([]string, 0, len(e.Conflicts))
	for _, c := range e.Conflicts {
		switch {
		case c.Expected == 0:
			parts = append(parts, fmt.Sprintf("%q exists (mod_revision %d)", c.Key, c.Actual))
		case c.Actual == 0:
			parts = append(parts, fmt.Sprintf("%q was deleted (expected mod_revision %d)", c.Key, c.Expected))
		default:
			parts = append(parts, fmt.Sprintf("%q was changed (mod_revision %d, now %d)", c.Key, c.Expected, c.Actual))
		}
	}
	return "keys changed concurrently: " + strings.Join(parts, "; ")
}

func (e *ConflictError) Unwrap() error { return ErrConflict }

// Applied is one operation ApplyGuarded carried out; Revision is the
// revision of its transaction, which is the key's new mod_revision for a put.
type Applied struct {
	GuardedOp
	Revision int64
}

// ApplyGuarded carries out ops in as few transactions as maxOps allows (at
// most maxOps operations and guards each). Each transaction writes only if
// every key it touches still has the expected mod_revision, so a batch that
// fits in one transaction is all-or-nothing; a larger one is applied
// transaction by transaction and stops at the first that fails. A delete of
// a key that is already gone is not a conflict: it is dropped and reported
// as applied.
//
// It returns the operations that were applied, also on error, so the caller
// can record them. A failed guard yields a *ConflictError.
func (c *Client) ApplyGuarded(ctx context.Context, ops []GuardedOp, maxOps int) ([]Applied, error) {
	if maxOps <= 0 {
		maxOps = DefaultMaxTxnOps
	}
	applied := make([]Applied, 0, len(ops))
	for start := 0; start < len(ops); start += maxOps {
		chunk := ops[start:min(start+maxOps, len(ops))]
		done, err := c.applyChunk(ctx, chunk)
		applied = append(applied, done...)
		if err != nil {
			return applied, err
		}
	}
	return applied, nil
}

// applyChunk runs one guarded transaction; if its guard fails only because
// keys to be deleted are already gone, it runs once more without them.
func (c *Client) applyChunk(ctx context.Context, chunk []GuardedOp) ([]Applied, error) {
	var gone []Applied
	for attempt := 0; ; attempt++ {
		if len(chunk) == 0 {
			return gone, nil
		}
		cmps := make([]clientv3.Cmp, len(chunk))
		then := make([]clientv3.Op, len(chunk))
		els := make([]clientv3.Op, len(chunk))
		for i, op := range chunk {
			cmps[i] = clientv3.Compare(clientv3.ModRevision(op.Key), "=", op.ModRevision)
			if op.Delete {
				then[i] = clientv3.OpDelete(op.Key)
			} else {
				then[i] = clientv3.OpPut(op.Key, string(op.Value), putOpts(op.Lease)...)
			}
			els[i] = clientv3.OpGet(op.Key, clientv3.WithKeysOnly())
		}
		tctx, cancel := c.Ctx(ctx)
		resp, err := c.Txn(tctx).If(cmps...).Then(then...).Else(els...).Commit()
		cancel()
		if err != nil {
			what := fmt.Sprintf("write %d keys (from %q) in one transaction", len(chunk), chunk[0].Key)
			if errors.Is(err, rpctypes.ErrTooManyOps) || errors.Is(err, rpctypes.ErrGRPCTooManyOps) {
				return gone, fmt.Errorf("%s: %w; the cluster allows fewer operations per transaction (its --max-txn-ops): set max_txn_ops to that value", what, err)
			}
			return gone, c.Describe(err, what, "")
		}
		if resp.Succeeded {
			out := gone
			for _, op := range chunk {
				out = append(out, Applied{GuardedOp: op, Revision: resp.Header.Revision})
			}
			return out, nil
		}

		var conflicts []Conflict
		var rest []GuardedOp
		for i, op := range chunk {
			var actual int64
			if r := resp.Responses[i].GetResponseRange(); r != nil && len(r.Kvs) > 0 {
				actual = r.Kvs[0].ModRevision
			}
			switch {
			case actual == op.ModRevision:
				rest = append(rest, op)
			case op.Delete && actual == 0:
				gone = append(gone, Applied{GuardedOp: op, Revision: resp.Header.Revision})
			default:
				conflicts = append(conflicts, Conflict{Key: op.Key, Expected: op.ModRevision, Actual: actual})
			}
		}
		if len(conflicts) > 0 || attempt > 0 {
			if len(conflicts) == 0 { // changed again between the two attempts
				return gone, fmt.Errorf("write %d keys (from %q): the keys kept changing concurrently; run again", len(chunk), chunk[0].Key)
			}
			sort.Slice(conflicts, func(i, j int) bool { return conflicts[i].Key < conflicts[j].Key })
			return gone, &ConflictError{Conflicts: conflicts}
		}
		chunk = rest
	}
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// nextPageLimit is the limit of the next page of ReadPrefix after n keys of
// readBytes bytes (keys and values) in all: as many keys of that mean size
// as fit in prefixPageBytes, at least prefixMinPage, at most prefixMaxPage.
func nextPageLimit(readBytes, n int) int {
	perKey := max(readBytes/max(n, 1), 1)
	return min(max(prefixPageBytes/perKey, prefixMinPage), prefixMaxPage)
}
