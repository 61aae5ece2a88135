package recipes

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Mutex is a fair, fenced distributed mutual-exclusion lock. Waiters are
// granted in the order they asked, each grant gets a fencing token larger
// than every earlier one, and a waiter whose session expires never wins.
//
// A Mutex holds no state of its own: several goroutines may call Lock on
// the same Mutex (or on Mutexes sharing a session) and they queue behind
// each other like any other waiters.
type Mutex struct {
	s      *concurrency.Session
	prefix string
	opts   options
	q      queueSpec // what every acquisition asks for, worked out once
	qErr   error     // an invalid prefix
}

// NewMutex returns a mutex on prefix whose keys are bound to session s.
// Every process using the same prefix contends for the same lock. The
// prefix is normalized to end in exactly one "/".
func NewMutex(s *concurrency.Session, prefix string, opts ...Option) *Mutex {
	m := &Mutex{s: s, prefix: prefix, opts: buildOptions(opts)}
	m.q, m.qErr = m.spec()
	return m
}

// Prefix returns the normalized key prefix under which the lock's keys live.
func (m *Mutex) Prefix() string {
	p, _ := normalizePrefix(m.prefix)
	return p
}

func (m *Mutex) spec() (queueSpec, error) {
	dir, err := normalizePrefix(m.prefix)
	if err != nil {
		return queueSpec{}, err
	}
	return queueSpec{
		session:  m.s,
		dir:      dir,
		blockDir: dir,
		key:      slotKey(dir, m.s),
		value:    m.opts.value,
		limit:    1,
		lost:     ErrLockLost,
		tryEmpty: true,
	}, nil
}

// Lock waits until the lock is granted or ctx ends. It fails with
// ErrSessionExpired when the session's lease expires (or is revoked) before
// the lock is granted. When it fails, it removes its waiting key.
func (m *Mutex) Lock(ctx context.Context) (*Lock, error) {
	if m.qErr != nil {
		return nil, m.qErr
	}
	h, err := acquire(ctx, m.q, true)
	if err != nil {
		return nil, err
	}
	return &Lock{h: h}, nil
}

// TryLock takes the lock only if nobody holds or waits for it, in a
// single etcd transaction; otherwise it fails with ErrLocked.
func (m *Mutex) TryLock(ctx context.Context) (*Lock, error) {
	if m.qErr != nil {
		return nil, m.qErr
	}
	h, err := acquire(ctx, m.q, false)
	if err != nil {
		return nil, err
	}
	return &Lock{h: h}, nil
}

// Lock is one grant of a Mutex, RWMutex (read or write side) or
// Semaphore. It is safe for concurrent use.
type Lock struct {
	h *hold
}

// Token returns the fencing token: the create revision of the holder's
// key. Later grants of the same Mutex (or write side of an RWMutex) have
// larger tokens.
func (l *Lock) Token() int64 { return l.h.token }

// Key returns the holder's key in etcd.
func (l *Lock) Key() string { return l.h.key }

// Revision returns the etcd revision at which the lock was granted.
func (l *Lock) Revision() int64 { return l.h.rev }

// Guard returns the comparison "the holder's key still has create revision
// Token()". Put it in the If of the holder's own transactions: they then
// fail, atomically, once the lock is lost or released.
//
// To ask whether the lock is still held, read Key() with a (linearizable)
// Get rather than commit a transaction of the Guard alone: etcd serves a
// transaction without operations as a serializable read, from the state of
// the member that answers, which may not have applied the key's deletion
// yet.
func (l *Lock) Guard() clientv3.Cmp { return l.h.guard() }

// Done returns a channel that is closed when the lock is no longer held:
// it was released, its key was deleted, its lease expired or was revoked
// (seen by a watch on the key), or the session's keep-alive stopped. The
// first call starts the watch. On a connected client the watch reports a
// deletion within milliseconds; a client cut off or paused hears of it
// only when it reconnects or its keep-alive gives up, about a TTL later
// (1.5-3 s after a revoke with a 2 s TTL under the fault suite's faults).
// For a bound computed locally, use Context with a [Session].
func (l *Lock) Done() <-chan struct{} { return l.h.doneCh() }

// Err returns nil while the lock is held, an error wrapping ErrLockLost
// once it was lost, and one wrapping ErrNotHeld once it was released. Like
// Done, it starts watching the key on first use.
func (l *Lock) Err() error { return l.h.status() }

// Unlock releases the lock: it deletes the holder's key only if it still
// has create revision Token(), so a retried or delayed Unlock can never
// remove a newer holder's key. It returns an error wrapping ErrLockLost if
// the lock had been lost meanwhile, ErrNotHeld if it was already released,
// and an etcd error (the lock is then unchanged: retry) if etcd could not
// be reached.
func (l *Lock) Unlock(ctx context.Context) error { return l.h.release(ctx, "lock") }
