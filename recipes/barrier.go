package recipes

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Barrier blocks processes in Wait until it is released.
//
// The barrier is held by a key "<key>/hold" bound to the holder's session,
// and a lease-less key "<key>/state" records whether the last hold was
// released ("released") or is still on ("held"). Hold writes both, Release
// deletes the hold and writes "released" in one transaction. So a waiter
// can tell a Release from the holder's death (the hold key vanishes without
// "released"): Wait then fails with ErrBarrierAbandoned instead of letting
// its caller through early, and instead of blocking forever as etcd's
// recipe does when its holder dies.
type Barrier struct {
	s     *concurrency.Session
	kv    clientv3.KV
	dir   string
	hold  string
	state string
	err   error
}

const (
	barrierHeld     = "held"
	barrierReleased = "released"
)

// NewBarrier returns the barrier stored under key. Hold binds the barrier to
// session s; Wait fails when s ends.
func NewBarrier(s *concurrency.Session, key string) *Barrier {
	dir, err := normalizePrefix(key)
	return &Barrier{s: s, kv: onceKV(s.Client()), dir: dir, hold: dir + "hold", state: dir + "state", err: err}
}

// Hold sets the barrier, so that Wait blocks until Release. It fails with
// ErrBarrierHeld if the barrier is already held under another session. A
// hold under this Barrier's own session counts as success, so Hold can be
// retried after an error that left its outcome unknown.
func (b *Barrier) Hold(ctx context.Context) error {
	if b.err != nil {
		return b.err
	}
	op := "hold barrier " + b.dir
	if sessionDone(b.s) {
		return fmt.Errorf("%w: %s: lease %x is no longer kept alive", ErrSessionExpired, op, int64(b.s.Lease()))
	}
	resp, err := b.kv.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(b.hold), "=", 0)).
		Then(clientv3.OpPut(b.hold, "", clientv3.WithLease(b.s.Lease())), clientv3.OpPut(b.state, barrierHeld)).
		Else(clientv3.OpGet(b.hold)). // not keys-only: that leaves out the lease
		Commit()
	if err != nil {
		return etcdErr(op, err)
	}
	if !resp.Succeeded {
		if kvs := resp.Responses[0].GetResponseRange().GetKvs(); len(kvs) > 0 && kvs[0].Lease == int64(b.s.Lease()) {
			return nil // ours already
		}
		return fmt.Errorf("%w: %s", ErrBarrierHeld, op)
	}
	return nil
}

// Release lets every waiter through. Anyone may release a barrier, and
// releasing a barrier that is not held is not an error, except when the
// last hold ended with its holder's session: Release still lets later
// waiters through, but returns an error wrapping ErrBarrierAbandoned,
// because the waiters at that time already failed.
func (b *Barrier) Release(ctx context.Context) error {
	if b.err != nil {
		return b.err
	}
	op := "release barrier " + b.dir
	resp, err := b.kv.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(b.hold), ">", 0)).
		Then(clientv3.OpDelete(b.hold), clientv3.OpPut(b.state, barrierReleased)).
		Else(clientv3.OpPut(b.state, barrierReleased, clientv3.WithPrevKV())).
		Commit()
	if err != nil {
		return etcdErr(op, err)
	}
	if !resp.Succeeded {
		if prev := resp.Responses[0].GetResponsePut().GetPrevKv(); prev != nil && string(prev.Value) == barrierHeld {
			return fmt.Errorf("%w: %s", ErrBarrierAbandoned, op)
		}
	}
	return nil
}

// Wait blocks until the barrier is released. It returns at once if the
// barrier is not held. It fails with an error wrapping ErrBarrierAbandoned
// if the holder's session ends first, with ErrSessionExpired if this
// Barrier's own session ends first, or with the cause of ctx.
func (b *Barrier) Wait(ctx context.Context) error {
	if b.err != nil {
		return b.err
	}
	op := "wait on barrier " + b.dir
	if sessionDone(b.s) {
		return fmt.Errorf("%w: %s: lease %x is no longer kept alive", ErrSessionExpired, op, int64(b.s.Lease()))
	}
	wctx, stop := withSession(ctx, b.s)
	defer stop()
	c := b.s.Client()
	// ended is the revision at which the watch saw the hold key deleted.
	// The state key at that very revision tells a Release ("released",
	// written by the same transaction) from the holder's lease expiring
	// ("held"), even if the barrier was held again right after.
	var ended int64
	return stepUntil(wctx, c, b.dir, op, func(ctx context.Context, minRev int64) (int64, bool, error) {
		if ended > 0 {
			actx, cancel := context.WithTimeout(ctx, attemptTimeout)
			resp, err := c.Get(actx, b.state, clientv3.WithRev(ended))
			cancel()
			switch {
			case errors.Is(err, rpctypes.ErrCompacted):
				ended = 0 // history gone: judge by the current state
			case err != nil:
				return 0, false, err
			case len(resp.Kvs) > 0 && string(resp.Kvs[0].Value) == barrierReleased:
				return ended, true, nil
			default:
				return 0, false, fmt.Errorf("%w: %s", ErrBarrierAbandoned, op)
			}
		}
		resp, err := getAtLeast(ctx, c, minRev, clientv3.OpGet(b.hold), clientv3.OpGet(b.state))
		if err != nil {
			return 0, false, err
		}
		if len(resp.Responses[0].GetResponseRange().GetKvs()) > 0 {
			return resp.Header.Revision, false, nil
		}
		if st := resp.Responses[1].GetResponseRange().GetKvs(); len(st) > 0 && string(st[0].Value) == barrierHeld {
			return 0, false, fmt.Errorf("%w: %s", ErrBarrierAbandoned, op)
		}
		return resp.Header.Revision, true, nil
	}, func(ev *clientv3.Event) bool {
		if ev.Type == mvccpb.DELETE && string(ev.Kv.Key) == b.hold {
			ended = ev.Kv.ModRevision
			return true
		}
		return false
	})
}
