package recipes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// DoubleBarrier lets count participants start a computation together
// (Enter) and finish it together (Leave).
//
// Each participant puts a key "<key>/waiters/<lease>-<random>" bound to its
// session. A round forms once count waiter keys exist: the create revision
// of the count-th oldest is the round's cutoff, and the first participant
// to see that writes it to "<key>/ready". The participants of the round are
// exactly the waiters created at or before the cutoff; Enter returns for
// them, and fails with ErrBarrierFull for waiters that arrive while the
// round is on. Leave deletes the participant's key and returns once no
// participant of the round is left. A participant whose session ends is
// not counted: its key goes with its lease, so nobody waits for it.
//
// Unlike etcd's recipe there is no recursion and no wait on a single
// "lowest" or "highest" key: every wait re-reads the whole (small) state
// behind a synced watch, a stale ready key left by a round whose last
// participants died is removed by the next round, and Leave without Enter
// is an error instead of a nil dereference.
type DoubleBarrier struct {
	s       *concurrency.Session
	kv      clientv3.KV
	dir     string
	waiters string
	ready   string
	count   int
	err     error

	mu     sync.Mutex
	key    string // our waiter key while entered
	rev    int64  // its create revision
	cutoff int64  // the round's cutoff once entered
}

// NewDoubleBarrier returns the double barrier stored under key for rounds of
// count participants. All participants must use the same count. A count
// below 1 or an empty key makes every call fail with ErrInvalidArgument.
func NewDoubleBarrier(s *concurrency.Session, key string, count int) *DoubleBarrier {
	dir, err := normalizePrefix(key)
	if err == nil && count < 1 {
		err = fmt.Errorf("%w: double barrier count %d is below 1", ErrInvalidArgument, count)
	}
	return &DoubleBarrier{s: s, kv: onceKV(s.Client()), dir: dir, waiters: dir + "waiters/", ready: dir + "ready", count: count, err: err}
}

// Enter joins the barrier and blocks until count participants have joined
// this round. It fails with ErrBarrierFull when the round is already on,
// with ErrSessionExpired when the session ends first, or with the cause of
// ctx; in every failure case the participant is not counted.
func (b *DoubleBarrier) Enter(ctx context.Context) error {
	if b.err != nil {
		return b.err
	}
	op := "enter double barrier " + b.dir
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.key != "" {
		return fmt.Errorf("%w: %s: already entered", ErrInvalidArgument, op)
	}
	if sessionDone(b.s) {
		return fmt.Errorf("%w: %s: lease %x is no longer kept alive", ErrSessionExpired, op, int64(b.s.Lease()))
	}
	c := b.s.Client()
	key := sessionKey(b.waiters, b.s)
	resp, err := b.kv.Txn(ctx).Then(clientv3.OpPut(key, "", clientv3.WithLease(b.s.Lease()))).Commit()
	if err != nil {
		if !isLeaseNotFound(err) {
			cleanup(b.s, key, 0) // unique to this attempt: safe to remove
		}
		return etcdErr(op, err)
	}
	rev := resp.Header.Revision

	wctx, stop := withSession(ctx, b.s)
	defer stop()
	var cutoff int64
	err = stepUntil(wctx, c, b.dir, op, func(ctx context.Context, minRev int64) (int64, bool, error) {
		st, err := b.read(ctx, minRev)
		if err != nil {
			return 0, false, err
		}
		if _, ok := st.waiters[key]; !ok {
			return 0, false, b.ownKeyGone(op)
		}
		if st.cutoff > 0 {
			if rev <= st.cutoff {
				cutoff = st.cutoff
				return st.rev, true, nil // a participant of the round
			}
			if st.members() > 0 {
				return 0, false, fmt.Errorf("%w: %s", ErrBarrierFull, op)
			}
			// Stale: every participant of that round left or died
			// without removing it. Remove it if that still holds.
			_, err := b.kv.Txn(ctx).If(
				clientv3.Compare(clientv3.ModRevision(b.ready), "=", st.readyMod),
				clientv3.Compare(clientv3.CreateRevision(b.waiters), ">", st.cutoff).WithPrefix(),
			).Then(clientv3.OpDelete(b.ready)).Commit()
			return st.rev, false, err // its delete (or a change) wakes us
		}
		revs := st.sortedRevs()
		if len(revs) < b.count || rev > revs[b.count-1] {
			// Not enough waiters yet, or we are beyond the count: wait
			// for the round to form or a participant to drop out.
			return st.rev, false, nil
		}
		c0 := revs[b.count-1]
		tr, err := b.kv.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(b.ready), "=", 0)).
			Then(clientv3.OpPut(b.ready, strconv.FormatInt(c0, 10))).
			Commit()
		if err != nil {
			return 0, false, err
		}
		if tr.Succeeded {
			cutoff = c0
			return tr.Header.Revision, true, nil
		}
		return st.rev, false, nil // someone else wrote it: its event wakes us
	}, nil)
	if err != nil {
		if !errors.Is(err, ErrNotEntered) && !errors.Is(err, ErrSessionExpired) {
			cleanup(b.s, key, rev)
		}
		return err
	}
	b.key, b.rev, b.cutoff = key, rev, cutoff
	return nil
}

// Leave leaves the barrier and blocks until every participant of the round
// has left (or its session has ended). It fails with ErrNotEntered without
// a successful Enter, with ErrSessionExpired when the session ends while
// waiting, or with the cause of ctx; in every case this participant no
// longer holds the others back.
func (b *DoubleBarrier) Leave(ctx context.Context) error {
	if b.err != nil {
		return b.err
	}
	op := "leave double barrier " + b.dir
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.key == "" {
		return fmt.Errorf("%w: %s", ErrNotEntered, op)
	}
	c := b.s.Client()
	key, rev, cutoff := b.key, b.rev, b.cutoff
	// Whatever happens next, this participant has left.
	b.key, b.rev, b.cutoff = "", 0, 0
	wctx, stop := withSession(ctx, b.s)
	defer stop()
	deleted := false
	return stepUntil(wctx, c, b.dir, op, func(ctx context.Context, minRev int64) (int64, bool, error) {
		if !deleted {
			if _, err := deleteOwned(ctx, c, key, rev); err != nil {
				return 0, false, err
			}
			deleted = true
		}
		st, err := b.read(ctx, minRev)
		if err != nil {
			return 0, false, err
		}
		for _, r := range st.waiters {
			if r <= cutoff {
				return st.rev, false, nil // a participant is still in
			}
		}
		// Everybody left: retire the round's ready key (unless a new
		// round already replaced it).
		_, err = b.kv.Txn(ctx).
			If(clientv3.Compare(clientv3.Value(b.ready), "=", strconv.FormatInt(cutoff, 10))).
			Then(clientv3.OpDelete(b.ready)).
			Commit()
		return st.rev, err == nil, err
	}, func(ev *clientv3.Event) bool {
		return ev.Type == mvccpb.DELETE
	})
}

// dbState is one read of a double barrier.
type dbState struct {
	rev      int64
	waiters  map[string]int64 // key -> create revision
	cutoff   int64            // 0: no ready key
	readyMod int64
}

// members counts the live participants of the round in the ready key.
func (st *dbState) members() int {
	n := 0
	for _, r := range st.waiters {
		if r <= st.cutoff {
			n++
		}
	}
	return n
}

func (st *dbState) sortedRevs() []int64 {
	revs := make([]int64, 0, len(st.waiters))
	for _, r := range st.waiters {
		revs = append(revs, r)
	}
	slices.Sort(revs)
	return revs
}

func (b *DoubleBarrier) read(ctx context.Context, minRev int64) (*dbState, error) {
	resp, err := getAtLeast(ctx, b.s.Client(), minRev,
		clientv3.OpGet(b.waiters, clientv3.WithPrefix(), clientv3.WithKeysOnly()),
		clientv3.OpGet(b.ready))
	if err != nil {
		return nil, err
	}
	st := &dbState{rev: resp.Header.Revision, waiters: map[string]int64{}}
	for _, kv := range resp.Responses[0].GetResponseRange().GetKvs() {
		st.waiters[string(kv.Key)] = kv.CreateRevision
	}
	if r := resp.Responses[1].GetResponseRange().GetKvs(); len(r) > 0 {
		cutoff, err := strconv.ParseInt(string(r[0].Value), 10, 64)
		if err != nil || cutoff <= 0 {
			return nil, fmt.Errorf("%w: %s holds %q, not a revision", ErrInvalidArgument, b.ready, r[0].Value)
		}
		st.cutoff, st.readyMod = cutoff, r[0].ModRevision
	}
	return st, nil
}

// ownKeyGone tells why our waiter key vanished: our lease ended, or
// somebody deleted it.
func (b *DoubleBarrier) ownKeyGone(op string) error {
	if leaseGone(b.s.Client().Ctx(), b.s) {
		return fmt.Errorf("%w: %s: lease %x ended while waiting", ErrSessionExpired, op, int64(b.s.Lease()))
	}
	return fmt.Errorf("%w: %s: the waiter key was deleted", ErrNotEntered, op)
}
