package recipes

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// This file is the package's one waiting engine: every primitive that
// waits for a change in etcd does it through one of the four loops below,
// built from the same parts.
//
// # The pattern: watch first, then read
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
// run again: a fresh synced watch and a fresh read.
//
// # The loops
//
//   - follow keeps a state that a read sets and events update, until the
//     state says the wait is over: the turn of a waiter in the line of a
//     Semaphore with more than maxChased slots (waitTurn), the end of a
//     Lock or Leadership (hold.startMonitor). It returns the errors of load
//     and apply and permanent etcd errors as they are, for the caller to
//     wrap.
//   - chase waits for the turn of a waiter in the line of a Mutex,
//     RWMutex, Election or small Semaphore (waitTurn) by watching only the
//     keys just ahead of it and its own, so that a release wakes the next
//     waiter, not the whole line.
//   - stepUntil runs a step that reads (and may write) until the step says
//     it is done, and runs it again after every event that may change its
//     answer; the watch opens only when the first step is not done. The
//     consumers of a Queue, PriorityQueue or Consumer (queueCore.acquire),
//     Barrier.Wait, DoubleBarrier.Enter and Leave use it. Its errors name
//     the operation.
//   - track reports a state and then every later revision of it, without
//     skipping one while etcd keeps the history, until its caller stops:
//     Election.Observe. It never fails; it ends with ctx or the client.
//
// Pick follow when events alone can carry the state forward (chase when
// that state is a waiter's place in a line), stepUntil when each decision
// needs a fresh read or a write of its own (taking an item, writing a
// barrier's ready key), and track when every change must be reported,
// not only the moment a condition holds.
//
// # The parts
//
//   - openSyncedWatch (step 1) and getAtLeast (step 2);
//   - applyWatch (step 3): a watch's events, one revision at a time, the
//     one place that groups events by revision;
//   - backoff and pause, the wait between two tries;
//   - attemptTimeout and attemptErr, for one bounded request of a retry
//     loop.
//
// A new primitive should wait through one of the loops; a new kind of
// wait should be a new loop here, built from these parts.

// attemptTimeout bounds one request attempt inside a retry loop, so that a
// request stuck on a dead or black-holed connection is retried (on another
// endpoint) instead of hanging until the caller's deadline.
var attemptTimeout = 3 * time.Second

// attemptErr classifies the error of a single bounded attempt: when the
// caller's ctx is still live, a deadline is the attempt's own and says
// nothing about ctx.
func attemptErr(ctx context.Context, op string, err error) error {
	if cause := context.Cause(ctx); cause != nil {
		return fmt.Errorf("recipes: %s: %w", op, cause)
	}
	if errors.Is(err, errNoAnswer) {
		return fmt.Errorf("%w: %s: %v; outcome unknown", ErrEtcd, op, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %s: no answer within %v, outcome unknown", ErrEtcd, op, attemptTimeout)
	}
	return etcdErr(op, err)
}

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

// loadFunc reads the state a waiter needs at a revision >= minRev (the
// revision of the watch it reads behind). It returns the revision of the
// read and whether the wait is already over.
type loadFunc func(ctx context.Context, minRev int64) (rev int64, done bool, err error)

// applyFunc applies the events of one revision (in order) to the state
// read by the last load and reports whether the wait is over.
type applyFunc func(rev int64, events []*clientv3.Event) (done bool, err error)

// watchEnd says why applyWatch returned.
type watchEnd int

const (
	// endDone: apply reported done, or an error.
	endDone watchEnd = iota
	// endBroken: the watch was canceled or failed (no leader, a member
	// shutting down), its channel closed, or ctx ended. Every revision up
	// to the one returned was applied; a watch from the next one can go on.
	endBroken
	// endCompacted: etcd compacted the revisions after the last one
	// applied, so no watch can deliver them: only a new read catches up.
	endCompacted
)

// watchRun is what one call of applyWatch did.
type watchRun struct {
	rev       int64 // the last revision applied (the rev passed in if none)
	end       watchEnd
	err       error // apply's error (end == endDone)
	delivered bool  // at least one response came through intact
}

// applyWatch passes the events of watch channel ch to apply, one revision
// at a time and in order, skipping the revisions up to rev (those are part
// of the state apply works on already), until apply reports done or an
// error, or the watch ends (see watchEnd).
func applyWatch(ctx context.Context, ch clientv3.WatchChan, rev int64, apply applyFunc) watchRun {
	run := watchRun{rev: rev, end: endBroken}
	for {
		// A response already waiting is taken even if ctx ended; otherwise
		// the end of ctx returns at once, without waiting for clientv3 to
		// close the channel (it may be slow to on a stalled connection).
		var resp clientv3.WatchResponse
		var ok bool
		select {
		case resp, ok = <-ch:
		default:
			select {
			case resp, ok = <-ch:
			case <-ctx.Done():
				return run
			}
		}
		switch {
		case !ok:
			return run
		case resp.CompactRevision != 0:
			run.end = endCompacted
			return run
		case resp.Canceled || resp.Err() != nil:
			return run
		}
		run.delivered = true
		evs := resp.Events
		for len(evs) > 0 {
			// The events of one revision (one transaction) are adjacent.
			r := evs[0].Kv.ModRevision
			n := 1
			for n < len(evs) && evs[n].Kv.ModRevision == r {
				n++
			}
			group := evs[:n]
			evs = evs[n:]
			if r <= run.rev {
				continue
			}
			run.rev = r
			done, err := apply(r, group)
			if done || err != nil {
				run.end, run.err = endDone, err
				return run
			}
		}
	}
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

// pause waits for d. It returns early with the cause of ctx when ctx ends,
// or, if c is not nil, with the error of c's context when the client is
// closed.
func pause(ctx context.Context, c *clientv3.Client, d time.Duration) error {
	var closed <-chan struct{} // nil: never ready
	if c != nil {
		closed = c.Ctx().Done()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-closed:
		return c.Ctx().Err()
	}
}

// follow waits on the key range (key, wopts) with the watch-first-then-read
// pattern described at the top of this file. It calls load after every
// (re)opened watch and apply for every later revision, until one of them
// reports done (follow returns that revision) or an error. Transient etcd
// errors and broken watches are retried with backoff, reset after a try
// that lasted more than a second; errors returned by load or apply that
// are not transient, permanent etcd errors and the end of ctx (reported as
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
		if err := pause(ctx, c, b.next()); err != nil {
			if cause := context.Cause(ctx); cause != nil {
				return 0, cause
			}
			return 0, etcdErr("watch "+key, err)
		}
	}
}

// errLoadApply marks errors returned by load/apply so they are never retried.
type errLoadApply struct{ err error }

func (e errLoadApply) Error() string { return e.err.Error() }
func (e errLoadApply) Unwrap() error { return e.err }

// followOnce is one try of follow: a synced watch, load behind it, then
// apply until done. retry asks follow to try again (after err, if any).
func followOnce(ctx context.Context, c *clientv3.Client, key string, wopts []clientv3.OpOption, load loadFunc, apply applyFunc) (rev int64, retry bool, err error) {
	w, err := openSyncedWatch(ctx, c, key, wopts...)
	if err != nil {
		return 0, true, err
	}
	defer w.cancel()
	rev, done, err := load(ctx, w.rev)
	if err != nil {
		if !retryable(err) { // this package's sentinels included
			return 0, false, errLoadApply{err}
		}
		return 0, true, err
	}
	if done {
		return rev, false, nil
	}
	run := applyWatch(ctx, w.ch, rev, apply)
	switch {
	case run.err != nil:
		return 0, false, errLoadApply{run.err}
	case run.end == endDone:
		return run.rev, false, nil
	}
	// Cut off (no leader, compaction during a reconnect, server shutdown)
	// or ctx ended: follow decides whether to read again behind a fresh
	// watch.
	return 0, true, nil
}

// stepFunc reads state at a revision >= minRev and acts on it. It returns
// the revision it read and whether the caller's wait is over.
type stepFunc func(ctx context.Context, minRev int64) (rev int64, done bool, err error)

// stepUntil runs step until it reports done, waiting between runs with the
// watch-first-then-read pattern, the watch opened lazily so that a step
// that succeeds at once costs no watch:
//
//  1. run step; done: return;
//  2. not done and no watch yet: open a synced watch on the prefix dir,
//     then run step again (its read now lies behind the watch);
//  3. otherwise wait for an event wake accepts (nil: any event) with a
//     revision above the last step's read, and run step again.
//
// Transient etcd errors start over behind a new watch after a backoff
// pause, broken watches at once, until ctx ends; the end of ctx is
// reported with context.Cause(ctx), wrapped with op. Errors that are this
// package's sentinels are returned as they are, other errors that are not
// transient wrapped with op (see etcdErr).
func stepUntil(ctx context.Context, c *clientv3.Client, dir, op string, step stepFunc, wake func(*clientv3.Event) bool) error {
	return stepUntilTimed(ctx, c, dir, op, step, wake, nil)
}

// stepUntilTimed is stepUntil whose wait for an event also ends at the time
// wakeAt returns after each step (the zero time: no timer), for a step
// whose answer changes with the clock (a delayed queue item comes due).
func stepUntilTimed(ctx context.Context, c *clientv3.Client, dir, op string, step stepFunc, wake func(*clientv3.Event) bool, wakeAt func() time.Time) error {
	var w *syncedWatch
	defer func() {
		if w != nil {
			w.cancel()
		}
	}()
	b := newBackoff()
	for {
		if cause := context.Cause(ctx); cause != nil {
			return fmt.Errorf("recipes: %s: %w", op, cause)
		}
		var minRev int64
		if w != nil {
			minRev = w.rev
		}
		rev, done, err := step(ctx, minRev)
		if err == nil && done {
			return nil
		}
		if err == nil && w == nil {
			w, err = openSyncedWatch(ctx, c, dir, clientv3.WithPrefix())
			if err == nil {
				continue
			}
		} else if err == nil {
			var at time.Time
			if wakeAt != nil {
				at = wakeAt()
			}
			err = waitEventUntil(ctx, w, rev, wake, at)
			if err == nil {
				continue
			}
		}
		if cause := context.Cause(ctx); cause != nil {
			return fmt.Errorf("recipes: %s: %w", op, cause)
		}
		if isOwnSentinel(err) {
			return err
		}
		if !errors.Is(err, errWatchBroken) && !retryable(err) {
			return etcdErr(op, err)
		}
		// A member, a connection or the watch failed: start over behind a
		// new watch after a pause.
		if w != nil {
			w.cancel()
			w = nil
		}
		if c.Ctx().Err() != nil {
			return fmt.Errorf("%w: %s: client closed: %w", ErrEtcd, op, err)
		}
		if !errors.Is(err, errWatchBroken) {
			_ = pause(ctx, nil, b.next()) // the loop reports the end of ctx
		}
	}
}

// errWatchBroken reports that a watch ended without the caller's context
// ending (lost leader, compaction during a reconnect, member shutdown).
var errWatchBroken = errors.New("watch ended")

// errWakeTime ends the wait of waitEventUntil at its wake-up time.
var errWakeTime = errors.New("wake-up time")

// waitEventUntil blocks until w delivers an event with a revision above rev
// that wake accepts (nil: any event), or until the time at (if not zero).
func waitEventUntil(ctx context.Context, w *syncedWatch, rev int64, wake func(*clientv3.Event) bool, at time.Time) error {
	wctx := ctx
	if !at.IsZero() {
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadlineCause(ctx, at, errWakeTime)
		defer cancel()
	}
	run := applyWatch(wctx, w.ch, rev, func(_ int64, evs []*clientv3.Event) (bool, error) {
		for _, ev := range evs {
			if wake == nil || wake(ev) {
				return true, nil
			}
		}
		return false, nil
	})
	if run.end == endDone {
		return nil
	}
	if cause := context.Cause(ctx); cause != nil {
		return cause
	}
	if errors.Is(context.Cause(wctx), errWakeTime) {
		return nil // time to step again; the watch goes on
	}
	return errWatchBroken
}

// track calls load behind a synced watch on the key range (key, wopts),
// then apply for every later revision, in order, until load or apply
// reports done, ctx ends or the client is closed. It never gives up on its
// own and returns nothing: its caller reports what load and apply see.
//
// Unlike follow it skips no revision while etcd keeps the history: when
// the watch breaks, a new one resumes at the revision after the last one
// applied. Only when those revisions were compacted, or load or apply
// failed, does it start over with a new synced watch and a new load (load
// then learns that it may have missed revisions). Between two watches it
// pauses with backoff, reset by a watch that delivered a response.
func track(ctx context.Context, c *clientv3.Client, key string, wopts []clientv3.OpOption, load loadFunc, apply applyFunc) {
	b := newBackoff()
	var rev int64 // every revision up to rev was applied; 0: load again
	for ctx.Err() == nil && c.Ctx().Err() == nil {
		var ch clientv3.WatchChan
		var cancel context.CancelFunc
		if rev == 0 {
			w, err := openSyncedWatch(ctx, c, key, wopts...)
			if err != nil {
				if pause(ctx, c, b.next()) != nil {
					return
				}
				continue
			}
			r, done, err := load(ctx, w.rev)
			if err != nil || done {
				w.cancel()
				if done || pause(ctx, c, b.next()) != nil {
					return
				}
				continue
			}
			rev = r
			ch, cancel = w.ch, w.cancel
		} else {
			// Resume exactly after the last revision applied.
			wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
			opts := append(wopts[:len(wopts):len(wopts)], clientv3.WithRev(rev+1))
			ch, cancel = c.Watch(wctx, key, opts...), wcancel
		}
		run := applyWatch(ctx, ch, rev, apply)
		cancel()
		switch {
		case run.end == endDone && run.err == nil:
			return
		case run.end == endBroken:
			rev = run.rev
		default: // compacted, or apply failed
			rev = 0
		}
		if run.delivered {
			b = newBackoff()
		}
		if pause(ctx, c, b.next()) != nil {
			return
		}
	}
}

// lineSpec is what chase needs to know about a waiter in a line of keys
// ordered by create revision (see waitTurn).
type lineSpec struct {
	dir   string // the keys that may block the waiter are under dir
	limit int    // the turn comes when fewer than limit of them precede it
	key   string // the waiter's own key
	token int64  // its create revision
	// handoff (limit 1 only): the releasedKey of the primitive, where a
	// release by the head of the whole line records its token.
	handoff string
}

// chase waits for the turn of a waiter in a line (see lineSpec) while
// watching only O(limit) keys: the limit keys created last before the
// waiter's, and the waiter's own key. While all of those still exist, at
// least limit keys precede the waiter, so it can only be its turn after
// one of them is deleted; then it reads the line again and watches the new
// last keys. A deletion thus wakes at most the limit waiters behind the
// key, not the whole line: a mutex or election hands over with O(1)
// messages however long its line. Each wake reads the line once, keys
// only; etcd sorts a range by create revision before it applies the
// limit, so that read walks the line's keys in etcd's index. When it
// opened new watches, the keys are checked once more by name (stillThere),
// not by a second read of the line.
//
// With one slot (handoff set), the usual wake needs no read of the line
// either: the key just ahead was the head of the line, released by its
// holder, which recorded its token at handoff in the same transaction as
// the delete (hold.release). Then no key precedes the waiter any more: the
// keys older than that head were gone when it was granted, none between it
// and the waiter existed at the read that found it just ahead, and a key
// created later can never precede the waiter. One read of two keys by
// name (handedOver) confirms it; a key ahead that went any other way
// (withdrawn, expired, released by a reader of an RWMutex) is followed by
// a read of the line.
//
// It returns the revision of a read at which the waiter's key existed
// with its token and fewer than limit keys preceded it, or errOwnKeyGone
// once the waiter's key was deleted. Broken watches and transient etcd
// errors start over behind new watches after a backoff pause (reset by a
// try that lasted more than a second), like follow; the end of ctx is
// reported as context.Cause(ctx).
func chase(ctx context.Context, c *clientv3.Client, l lineSpec) (int64, error) {
	b := newBackoff()
	for {
		if err := context.Cause(ctx); err != nil {
			return 0, err
		}
		started := time.Now()
		rev, err := chaseOnce(ctx, c, l)
		if err == nil || errors.Is(err, errOwnKeyGone) {
			return rev, err
		}
		if cause := context.Cause(ctx); cause != nil {
			return 0, cause
		}
		if !errors.Is(err, errWatchBroken) && !retryable(err) {
			return 0, err
		}
		if time.Since(started) > time.Second {
			b = newBackoff()
		}
		if err := pause(ctx, c, b.next()); err != nil {
			if cause := context.Cause(ctx); cause != nil {
				return 0, cause
			}
			return 0, etcdErr("watch "+l.key, err)
		}
	}
}

// lineWatch is one watched key of chase.
type lineWatch struct {
	key    string
	create int64 // the create revision the key had when it was read
	cancel context.CancelFunc
}

// lineWake is what a watched key of chase reports: its deletion at rev,
// or (broken) the end of its watch.
type lineWake struct {
	w      *lineWatch
	rev    int64
	broken bool
}

// chaseOnce is one try of chase, behind one set of watches.
func chaseOnce(ctx context.Context, c *clientv3.Client, l lineSpec) (int64, error) {
	tctx, stop := context.WithCancel(ctx)
	defer stop() // ends every watch of this try and its forwarder
	wakes := make(chan lineWake, 2*l.limit+2)
	watch := func(key string, create int64) (*lineWatch, int64, error) {
		sw, err := openSyncedWatch(tctx, c, key, clientv3.WithFilterPut())
		if err != nil {
			if context.Cause(ctx) == nil && c.Ctx().Err() == nil {
				// Not created in time (creates queue up on a client's one
				// watch stream when many waiters share it): try again.
				return nil, 0, fmt.Errorf("%w: %w", errWatchBroken, err)
			}
			return nil, 0, err
		}
		lw := &lineWatch{key: key, create: create, cancel: sw.cancel}
		go func() {
			for resp := range sw.ch {
				if resp.CompactRevision != 0 || resp.Canceled || resp.Err() != nil {
					break
				}
				for _, ev := range resp.Events {
					select {
					case wakes <- lineWake{w: lw, rev: ev.Kv.ModRevision}:
					case <-tctx.Done():
						return
					}
				}
			}
			sw.cancel()
			select {
			case wakes <- lineWake{w: lw, broken: true}:
			case <-tctx.Done():
			}
		}()
		return lw, sw.rev, nil
	}
	own, minRev, err := watch(l.key, l.token)
	if err != nil {
		return 0, err
	}
	ahead := map[string]*lineWatch{} // the keys watched ahead of ours
	for {
		resp, err := getAtLeast(tctx, c, minRev,
			clientv3.OpGet(l.dir, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithMaxCreateRev(l.token-1),
				clientv3.WithSort(clientv3.SortByCreateRevision, clientv3.SortDescend), clientv3.WithLimit(int64(l.limit))),
			clientv3.OpGet(l.key, clientv3.WithKeysOnly()))
		if err != nil {
			return 0, err
		}
		read := resp.Header.Revision
		mine := resp.Responses[1].GetResponseRange().Kvs
		if len(mine) == 0 || mine[0].CreateRevision != l.token {
			return 0, errOwnKeyGone
		}
		last := resp.Responses[0].GetResponseRange().Kvs
		if len(last) < l.limit {
			return resp.Header.Revision, nil
		}
		// Watch the keys read (a new watch needs a read behind it), drop
		// the watches of the keys that left the last limit.
		keep := make(map[string]*lineWatch, len(last))
		fresh := false
		for _, kv := range last {
			k := string(kv.Key)
			if w, ok := ahead[k]; ok && w.create == kv.CreateRevision {
				keep[k] = w
				delete(ahead, k)
				continue
			}
			w, wrev, err := watch(k, kv.CreateRevision)
			if err != nil {
				return 0, err
			}
			keep[k] = w
			minRev = max(minRev, wrev)
			fresh = true
		}
		for _, w := range ahead {
			w.cancel()
		}
		ahead = keep
		if fresh {
			// A watch misses a deletion made before it was created: check
			// by name, behind the new watches, that the keys watched and
			// ours are still there. That reads limit+1 keys, where a
			// second read of the line would walk all of it again.
			rev, ok, err := stillThere(tctx, c, minRev, l, ahead)
			if err != nil {
				return 0, err
			}
			if !ok {
				continue // one went meanwhile: read the line again
			}
			read = rev
		}
		// Every key read is watched since before this read: wait for one
		// of them, or ours, to go.
		for waiting := true; waiting; {
			select {
			case <-tctx.Done():
				return 0, context.Cause(ctx)
			case wk := <-wakes:
				switch {
				case !wk.broken && wk.rev <= read:
					// Known to the last read: the deletion of an earlier
					// key of the same name. A watch may have been opened
					// on a member that had not applied that read's
					// revision yet.
				case wk.w == own && wk.broken:
					return 0, errWatchBroken
				case wk.w == own:
					return 0, errOwnKeyGone
				case ahead[wk.w.key] != wk.w:
					// a watch dropped since: stale
				case wk.broken:
					return 0, errWatchBroken
				default:
					minRev = max(minRev, wk.rev)
					waiting = false
					if !recordable(c, l.handoff) {
						break
					}
					rev, ok, err := handedOver(tctx, c, minRev, l, wk.w.create)
					if err != nil {
						return 0, err
					}
					if ok {
						return rev, nil
					}
				}
			}
		}
	}
}

// handedOver reads, at a revision >= minRev, the waiter's own key and the
// handoff key of l. ok is true when the handoff key holds head, the token
// of the key that was just ahead (see chase), and the waiter's key still
// exists: then its turn came at the revision returned.
func handedOver(ctx context.Context, c *clientv3.Client, minRev int64, l lineSpec, head int64) (rev int64, ok bool, err error) {
	resp, err := getAtLeast(ctx, c, minRev,
		clientv3.OpGet(l.key, clientv3.WithKeysOnly()),
		clientv3.OpGet(l.handoff))
	if isPermissionDenied(err) {
		refuseRecord(c, l.handoff)
		return 0, false, nil // read the line instead
	}
	if err != nil {
		return 0, false, err
	}
	if mine := resp.Responses[0].GetResponseRange().Kvs; len(mine) == 0 || mine[0].CreateRevision != l.token {
		return 0, false, errOwnKeyGone
	}
	rec := resp.Responses[1].GetResponseRange().Kvs
	return resp.Header.Revision, len(rec) == 1 && string(rec[0].Value) == strconv.FormatInt(head, 10), nil
}

// stillThere reads, by name and at a revision >= minRev, the waiter's own
// key and the keys watched ahead of it. ok is false when a key ahead is
// gone or is another key of the same name as the one read in the line;
// the error is errOwnKeyGone when the waiter's own key is.
func stillThere(ctx context.Context, c *clientv3.Client, minRev int64, l lineSpec, ahead map[string]*lineWatch) (rev int64, ok bool, err error) {
	ops := make([]clientv3.Op, 0, len(ahead)+1)
	ops = append(ops, clientv3.OpGet(l.key, clientv3.WithKeysOnly()))
	watched := make([]*lineWatch, 0, len(ahead))
	for _, w := range ahead {
		ops = append(ops, clientv3.OpGet(w.key, clientv3.WithKeysOnly()))
		watched = append(watched, w)
	}
	resp, err := getAtLeast(ctx, c, minRev, ops...)
	if err != nil {
		return 0, false, err
	}
	if mine := resp.Responses[0].GetResponseRange().Kvs; len(mine) == 0 || mine[0].CreateRevision != l.token {
		return 0, false, errOwnKeyGone
	}
	for i, w := range watched {
		kvs := resp.Responses[i+1].GetResponseRange().Kvs
		if len(kvs) == 0 || kvs[0].CreateRevision != w.create {
			return resp.Header.Revision, false, nil
		}
	}
	return resp.Header.Revision, true, nil
}
