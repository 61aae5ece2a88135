package recipes

import (
	"context"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// FencedWrite is a guarded etcd transaction that is applied at most once,
// however often it is sent. clientv3 resends a Txn when a stopping member
// answers Canceled, although the first attempt may have been applied, and
// a caller retries a Commit whose outcome was unknown; a plain guarded
// Txn is then applied twice within one hold (a counter counts twice). A
// FencedWrite carries a marker key of its own, unique to it and bound to
// the session's lease, that its Then creates and its If requires absent:
// a second arrival finds the marker and changes nothing.
//
// The markers live as long as the session (one small key per write);
// they are not deleted earlier because a delayed resend could then apply
// the write again.
type FencedWrite struct {
	client *clientv3.Client
	lease  clientv3.LeaseID
	marker string
	cmps   []clientv3.Cmp
	ops    []clientv3.Op
}

// FencedOutcome is what a FencedWrite's Commit found.
type FencedOutcome int

const (
	// FencedUnknown: Commit failed without knowing whether the write was
	// applied; Commit the same FencedWrite again to find out.
	FencedUnknown FencedOutcome = iota
	// FencedApplied: this Commit applied the ops.
	FencedApplied
	// FencedAppliedBefore: an earlier attempt (a resend inside clientv3,
	// or an earlier Commit of the same FencedWrite) applied the ops,
	// once; this one changed nothing. This is the "applied, maybe twice"
	// case of a plain Txn, made harmless.
	FencedAppliedBefore
	// FencedNotApplied: the guard failed (the grant was lost or
	// released) and the ops were never applied.
	FencedNotApplied
)

func (o FencedOutcome) String() string {
	switch o {
	case FencedApplied:
		return "applied"
	case FencedAppliedBefore:
		return "applied before"
	case FencedNotApplied:
		return "not applied"
	}
	return "unknown"
}

// FencedTxn starts a FencedWrite on s's client whose marker key lives
// under markers (a prefix of its own, outside every primitive's prefix;
// it is normalized to end in "/"). Add the grant's Guard with If and the
// writes with Then, then Commit.
func FencedTxn(s *concurrency.Session, markers string) *FencedWrite {
	dir, err := normalizePrefix(markers)
	if err != nil {
		dir = "" // reported by Commit
	}
	w := &FencedWrite{client: s.Client(), lease: s.Lease()}
	if dir != "" {
		w.marker = sessionKey(dir, s)
	}
	return w
}

// If adds comparisons, typically the Guard of a Lock, Leadership or Claim.
func (w *FencedWrite) If(cmps ...clientv3.Cmp) *FencedWrite {
	w.cmps = append(w.cmps, cmps...)
	return w
}

// Then adds the writes to apply at most once.
func (w *FencedWrite) Then(ops ...clientv3.Op) *FencedWrite {
	w.ops = append(w.ops, ops...)
	return w
}

// Marker returns the write's marker key.
func (w *FencedWrite) Marker() string { return w.marker }

// Commit sends the write and reports its outcome. With FencedApplied the
// response holds the results of the ops (Responses[i] for Then's op i).
// On an error the outcome is FencedUnknown: Commit again, the write is
// still applied at most once.
func (w *FencedWrite) Commit(ctx context.Context) (FencedOutcome, *clientv3.TxnResponse, error) {
	if w.marker == "" {
		return FencedUnknown, nil, fmt.Errorf("%w: FencedTxn: empty marker prefix", ErrInvalidArgument)
	}
	cmps := append(append([]clientv3.Cmp(nil), w.cmps...), clientv3.Compare(clientv3.Version(w.marker), "=", 0))
	ops := append(append([]clientv3.Op(nil), w.ops...), clientv3.OpPut(w.marker, "", clientv3.WithLease(w.lease)))
	resp, err := w.client.Txn(ctx).If(cmps...).Then(ops...).Else(clientv3.OpGet(w.marker, clientv3.WithCountOnly())).Commit()
	if err != nil {
		return FencedUnknown, nil, etcdErr("fenced write "+w.marker, err)
	}
	if resp.Succeeded {
		return FencedApplied, resp, nil
	}
	if resp.Responses[0].GetResponseRange().GetCount() > 0 {
		return FencedAppliedBefore, resp, nil
	}
	return FencedNotApplied, resp, nil
}
