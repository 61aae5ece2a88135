package recipes

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// ResumeMutex takes back a lock held by session s's lease, e.g. after the
// process restarted with concurrency.WithLease(oldLease) (or
// WithSessionLease). token is the Token() of the lock. It succeeds only if
// the session's key under prefix still exists with that token and holds
// the lock. It fails with ErrTokenMismatch if the key carries another
// token, with ErrLockLost if the key is gone or only waits (the waiting
// key is then withdrawn), and with ErrLocked if a Lock of this process on
// the same client already holds the key. The prefix is normalized as by
// NewMutex.
func ResumeMutex(ctx context.Context, s *concurrency.Session, prefix string, token int64) (*Lock, error) {
	dir, err := normalizePrefix(prefix)
	if err != nil {
		return nil, err
	}
	c := s.Client()
	key := slotKey(dir, s)
	resp, err := c.Txn(ctx).Then(
		clientv3.OpGet(dir, clientv3.WithFirstCreate()...),
		clientv3.OpGet(key),
	).Commit()
	if err != nil {
		return nil, etcdErr("resume mutex "+dir, err)
	}
	mine := resp.Responses[1].GetResponseRange().Kvs
	if len(mine) != 1 || clientv3.LeaseID(mine[0].Lease) != s.Lease() {
		return nil, lossError(key, token, resp.Header.Revision,
			fmt.Errorf("%w: mutex %s has no key for lease %x", ErrLockLost, dir, int64(s.Lease())))
	}
	if mine[0].CreateRevision != token {
		return nil, fmt.Errorf("%w: key %s has token %d, not %d", ErrTokenMismatch, key, mine[0].CreateRevision, token)
	}
	leave, err := tryEnterGate(c, key)
	if err != nil {
		return nil, err
	}
	first := resp.Responses[0].GetResponseRange().Kvs
	if len(first) == 0 || first[0].CreateRevision != token {
		cleanupThen(s, key, token, leave)
		return nil, lossError(key, token, resp.Header.Revision,
			fmt.Errorf("%w: mutex %s: token %d waits but does not hold the lock", ErrLockLost, dir, token))
	}
	h := newHold(s, key, token, ErrLockLost, leave)
	h.handoff = releasedKey(dir)
	h.raw = newRawKV(c)
	h.rev = resp.Header.Revision
	return &Lock{h: h}, nil
}

// MultiLock is a grant of several mutexes taken together by LockAll.
type MultiLock struct {
	locks []*Lock // in the global order (by prefix)

	once   sync.Once
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// LockAll takes every one of the mutexes, without deadlock, and returns
// one grant of them all. The mutexes must share one session
// (ErrMixedSessions) and have distinct, non-nested prefixes
// (ErrSamePrefix). When none of them is held or awaited, one etcd
// transaction takes them all; otherwise they are taken one after the
// other in the global order of their prefixes, which every LockAll
// follows, so two LockAll calls never wait for each other in a cycle. If
// one cannot be taken (ctx ends, the session expires), the ones taken are
// released again and nothing is held.
func LockAll(ctx context.Context, ms ...*Mutex) (*MultiLock, error) {
	if len(ms) == 0 {
		return nil, fmt.Errorf("%w: LockAll without mutexes", ErrInvalidArgument)
	}
	qs := make([]queueSpec, len(ms))
	for i, m := range ms {
		if m.qErr != nil {
			return nil, m.qErr
		}
		if m.s != ms[0].s {
			return nil, fmt.Errorf("%w: %s and %s", ErrMixedSessions, ms[0].q.dir, m.q.dir)
		}
		qs[i] = m.q
	}
	sort.Slice(qs, func(i, j int) bool { return qs[i].dir < qs[j].dir })
	for i := 1; i < len(qs); i++ {
		if strings.HasPrefix(qs[i].dir, qs[i-1].dir) {
			return nil, fmt.Errorf("%w: %s and %s", ErrSamePrefix, qs[i-1].dir, qs[i].dir)
		}
	}
	s := ms[0].s
	if sessionDone(s) {
		return nil, fmt.Errorf("%w: lease %x is no longer kept alive", ErrSessionExpired, int64(s.Lease()))
	}
	c := s.Client()
	leaves := make([]func(), 0, len(qs))
	leaveFrom := func(i int) {
		for _, l := range leaves[i:] {
			l()
		}
	}
	for _, q := range qs {
		leave, err := enterGate(ctx, c, q.key)
		if err != nil {
			leaveFrom(0)
			return nil, err
		}
		leaves = append(leaves, leave)
	}
	// All at once, if all are free.
	raw := newRawKV(c)
	req := &pb.TxnRequest{}
	for _, q := range qs {
		req.Compare = append(req.Compare, createdAt([]byte(q.blockDir), []byte(clientv3.GetPrefixRangeEnd(q.blockDir)), 0))
		req.Success = append(req.Success, putOp(&pb.PutRequest{Key: []byte(q.key), Value: []byte(q.value), Lease: int64(s.Lease())}))
	}
	resp, err := commitTxn(ctx, c, raw, req, true)
	if err != nil {
		for i, q := range qs {
			if isLeaseNotFound(err) {
				leaves[i]()
			} else {
				cleanupThen(s, q.key, 0, leaves[i]) // the puts may have been applied
			}
		}
		return nil, etcdErr("lock all", err)
	}
	ml := &MultiLock{locks: make([]*Lock, 0, len(qs))}
	if resp.Succeeded {
		for i, q := range qs {
			h := newHold(s, q.key, resp.Header.Revision, ErrLockLost, leaves[i])
			h.raw = raw
			h.handoff = q.releasedKey()
			h.rev = resp.Header.Revision
			ml.locks = append(ml.locks, &Lock{h: h})
		}
		return ml, nil
	}
	// One by one, in the global order.
	for i, q := range qs {
		h, err := acquireGated(ctx, q, true, leaves[i])
		if err != nil {
			leaveFrom(i + 1)
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), attemptTimeout)
			_ = ml.Unlock(rctx) // on failure the keys go with the lease
			cancel()
			return nil, err
		}
		ml.locks = append(ml.locks, &Lock{h: h})
	}
	return ml, nil
}

// Locks returns the grants, in the global order of their prefixes.
func (ml *MultiLock) Locks() []*Lock { return append([]*Lock(nil), ml.locks...) }

// Guard returns the Guard of every lock: put them all in the If of the
// holder's transactions.
func (ml *MultiLock) Guard() []clientv3.Cmp {
	cmps := make([]clientv3.Cmp, len(ml.locks))
	for i, l := range ml.locks {
		cmps[i] = l.Guard()
	}
	return cmps
}

// Context ends as soon as the Context of any of the locks ends; its cause
// is that lock's. The first call starts watching every lock's key.
func (ml *MultiLock) Context() context.Context {
	ml.once.Do(func() {
		ml.ctx, ml.cancel = context.WithCancelCause(ml.locks[0].Context())
		for _, l := range ml.locks[1:] {
			lctx := l.Context()
			context.AfterFunc(lctx, func() { ml.cancel(context.Cause(lctx)) })
		}
	})
	return ml.ctx
}

// Unlock releases every lock, in one etcd transaction of fenced deletes
// when it can. It returns the errors of the locks that were lost or could
// not be released (joined); an etcd error leaves those locks held: retry.
func (ml *MultiLock) Unlock(ctx context.Context) error {
	if len(ml.locks) == 0 {
		return nil
	}
	holds := make([]*hold, len(ml.locks))
	prevs := make([]error, len(ml.locks))
	sequential := false
	for i, l := range ml.locks {
		h := l.h
		holds[i] = h
		h.unlockMu.Lock()
		defer h.unlockMu.Unlock()
		var released bool
		released, prevs[i] = h.beginRelease()
		sequential = sequential || released || prevs[i] != nil
	}
	var errs []error
	if !sequential {
		// All still carry their tokens (the usual case): one flat
		// transaction deletes them all.
		req := &pb.TxnRequest{}
		for _, h := range holds {
			k := []byte(h.key)
			req.Compare = append(req.Compare, createdAt(k, nil, h.token))
			req.Success = append(req.Success, deleteOp(k))
		}
		resp, err := commitTxn(ctx, holds[0].session.Client(), holds[0].raw, req, false)
		if err != nil || resp.Succeeded {
			for i, h := range holds {
				if err != nil {
					errs = append(errs, h.endRelease("lock", prevs[i], false, 0, err))
				} else {
					errs = append(errs, h.endRelease("lock", prevs[i], true, resp.Header.Revision, nil))
				}
			}
			return errors.Join(errs...)
		}
	}
	// Some were released or lost: each on its own.
	for i, h := range holds {
		if prevs[i] != nil && errors.Is(prevs[i], ErrNotHeld) {
			h.mu.Lock()
			h.releasing = false
			h.mu.Unlock()
			continue
		}
		resp, err := commitTxn(ctx, h.session.Client(), h.raw, fencedDelete(h.key, h.token), false)
		if err != nil {
			errs = append(errs, h.endRelease("lock", prevs[i], false, 0, err))
			continue
		}
		errs = append(errs, h.endRelease("lock", prevs[i], resp.Succeeded, resp.Header.Revision, nil))
	}
	return errors.Join(errs...)
}
