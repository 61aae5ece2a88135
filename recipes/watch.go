package recipes

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Waiting in this package follows one pattern, "watch first, then read":
//
//  1. open a watch WITHOUT a start revision, with WithCreatedNotify, and
//     wait for the created response. etcd registers such a watch as
//     "synced": it is fed straight from the write path and wakes within a
//     millisecond. The created response's header revision Rw says that
//     every event after Rw will be delivered.
//  2. read the state with a linearizable Get. Its revision Rg is >= Rw,
//     because the read starts after the watch was registered.
//  3. apply the watch's events with a revision > Rg to the state read.
//
// Nothing can fall between the read and the watch, and the wait never
// depends on etcd's unsynced-watcher loop, which serves watches opened at
// a past revision only every 100 ms (the main reason etcd's own
// concurrency.Mutex needs ~25 ms per contended hand-off).
//
// When a watch breaks (its member lost the leader, history was compacted
// while the client reconnected, the stream was canceled) the pattern is
// simply run again: a fresh synced watch and a fresh read. The helpers
// below implement it for every primitive of the package; queue and barrier
// code uses follow directly.

// attemptTimeout bounds one request attempt inside a retry loop, so that a
// request stuck on a dead or black-holed connection is retried (on another
// endpoint) instead of hanging until the caller's deadline.
var attemptTimeout = 3 * time.Second

// syncedWatch is a watch registered as synced by etcd.
type syncedWatch struct {
	ch     clientv3.WatchChan
	rev    int64 // header revision of the created response: events > rev follow
	cancel context.CancelFunc
}

// openSyncedWatch opens a watch on key (opts such as clientv3.WithPrefix
// or clientv3.WithFilterPut are passed on) and waits until etcd confirms
// it. The watch requires a leader: a member cut off from the cluster
// cancels it instead of leaving it silent. The caller must call cancel.
func openSyncedWatch(ctx context.Context, c *clientv3.Client, key string, opts ...clientv3.OpOption) (*syncedWatch, error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	timer := time.AfterFunc(attemptTimeout, cancel)
	opts = append(opts[:len(opts):len(opts)], clientv3.WithCreatedNotify())
	ch := c.Watch(wctx, key, opts...)
	resp, ok := <-ch
	stopped := timer.Stop()
	if !ok || !resp.Created || resp.Canceled || resp.Err() != nil {
		cancel()
		if err := context.Cause(ctx); err != nil {
			return nil, err
		}
		if !stopped {
			return nil, fmt.Errorf("%w: watch %q: not created within %v", ErrEtcd, key, attemptTimeout)
		}
		if err := resp.Err(); err != nil {
			return nil, etcdErr("watch "+key, err)
		}
		if err := c.Ctx().Err(); err != nil {
			return nil, etcdErr("watch "+key, err)
		}
		return nil, fmt.Errorf("%w: watch %q was closed while opening", ErrEtcd, key)
	}
	return &syncedWatch{ch: ch, rev: resp.Header.Revision, cancel: cancel}, nil
}

// getAtLeast runs a linearizable Txn of read ops and makes sure its
// revision is at least minRev (it always is for a linearizable read issued
// after the watch at minRev was created; the check is defensive). Each
// attempt is bounded by attemptTimeout.
func getAtLeast(ctx context.Context, c *clientv3.Client, minRev int64, ops ...clientv3.Op) (*clientv3.TxnResponse, error) {
	for {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		resp, err := c.Txn(actx).Then(ops...).Commit()
		cancel()
		if err != nil {
			return nil, err
		}
		if resp.Header.Revision >= minRev {
			return resp, nil
		}
		select {
		case <-ctx.Done():
			return nil, context.Cause(ctx)
		case <-time.After(time.Millisecond):
		}
	}
}

// loadFunc reads the state a waiter needs at a revision >= minRev. It
// returns the revision of the read and whether the wait is already over.
type loadFunc func(ctx context.Context, minRev int64) (rev int64, done bool, err error)

// applyFunc applies the events of one revision (in order) to the state
// read by the last load and reports whether the wait is over.
type applyFunc func(rev int64, events []*clientv3.Event) (done bool, err error)

// follow waits on the key range (key, wopts) with the watch-first-then-read
// pattern described at the top of this file. It calls load after every
// (re)opened watch and apply for every later revision, until one of them
// reports done (follow returns that revision) or an error. Transient etcd
// errors and broken watches are retried with backoff; errors returned by
// load/apply, permanent etcd errors and the end of ctx (reported as
// context.Cause(ctx)) are returned.
func follow(ctx context.Context, c *clientv3.Client, key string, wopts []clientv3.OpOption, load loadFunc, apply applyFunc) (int64, error) {
	b := newBackoff()
	for {
		if err := context.Cause(ctx); err != nil {
			return 0, err
		}
		started := time.Now()
		rev, retry, err := followOnce(ctx, c, key, wopts, load, apply)
		if err == nil && !retry {
			return rev, nil
		}
		if time.Since(started) > time.Second {
			b = newBackoff() // it worked for a while: retry at once
		}
		var la errLoadApply
		if errors.As(err, &la) {
			return 0, la.err
		}
		if err != nil {
			if cause := context.Cause(ctx); cause != nil {
				return 0, cause
			}
			if !retryable(err) {
				return 0, err
			}
		}
		select {
		case <-ctx.Done():
			return 0, context.Cause(ctx)
		case <-c.Ctx().Done():
			return 0, etcdErr("watch "+key, c.Ctx().Err())
		case <-time.After(b.next()):
		}
	}
}

// errLoadApply marks errors returned by load/apply so they are never retried.
type errLoadApply struct{ err error }

func (e errLoadApply) Error() string { return e.err.Error() }
func (e errLoadApply) Unwrap() error { return e.err }

func followOnce(ctx context.Context, c *clientv3.Client, key string, wopts []clientv3.OpOption, load loadFunc, apply applyFunc) (rev int64, retry bool, err error) {
	w, err := openSyncedWatch(ctx, c, key, wopts...)
	if err != nil {
		return 0, true, err
	}
	defer w.cancel()
	rev, done, err := load(ctx, w.rev)
	if err != nil {
		if isOwnSentinel(err) || !retryable(err) {
			return 0, false, errLoadApply{err}
		}
		return 0, true, err
	}
	if done {
		return rev, false, nil
	}
	for resp := range w.ch {
		if resp.Canceled || resp.CompactRevision != 0 || resp.Err() != nil {
			// Cut off (no leader, compaction during a reconnect, server
			// shutdown): read again behind a fresh watch.
			return 0, true, nil
		}
		evs := resp.Events
		for len(evs) > 0 {
			r := evs[0].Kv.ModRevision
			n := 1
			for n < len(evs) && evs[n].Kv.ModRevision == r {
				n++
			}
			group := evs[:n]
			evs = evs[n:]
			if r <= rev {
				continue // already part of what load read
			}
			rev = r
			done, err := apply(r, group)
			if err != nil {
				return 0, false, errLoadApply{err}
			}
			if done {
				return r, false, nil
			}
		}
	}
	// The channel closed: ctx ended or the client closed; follow decides.
	return 0, true, nil
}

// backoff is a small capped, jittered exponential backoff for retry loops.
type backoff struct{ d time.Duration }

func newBackoff() *backoff { return &backoff{d: 10 * time.Millisecond} }

func (b *backoff) next() time.Duration {
	d := b.d
	b.d *= 2
	if b.d > 500*time.Millisecond {
		b.d = 500 * time.Millisecond
	}
	return d/2 + time.Duration(rand.Int64N(int64(d)))
}
