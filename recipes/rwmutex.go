package recipes

import (
	"context"

	"go.etcd.io/etcd/client/v3/concurrency"
)

// RWMutex is a fair, fenced reader/writer lock. Readers share the lock;
// a writer excludes everybody. Grants follow arrival order: a reader
// waits for every writer that asked before it, a writer for everybody that
// asked before it, so writers are never starved. Read and write grants are
// Locks with the same guarantees as a Mutex's: Token, Guard, Done, fenced
// Unlock, and no grant to a waiter whose session expired.
//
// Writers' keys live under "<prefix>/w/", readers' under "<prefix>/r/".
type RWMutex struct {
	s      *concurrency.Session
	prefix string
	opts   options
}

// NewRWMutex returns a reader/writer lock on prefix bound to session s.
func NewRWMutex(s *concurrency.Session, prefix string, opts ...Option) *RWMutex {
	return &RWMutex{s: s, prefix: prefix, opts: buildOptions(opts)}
}

// Prefix returns the normalized key prefix of the lock.
func (rw *RWMutex) Prefix() string {
	p, _ := normalizePrefix(rw.prefix)
	return p
}

func (rw *RWMutex) spec(write bool) (queueSpec, error) {
	dir, err := normalizePrefix(rw.prefix)
	if err != nil {
		return queueSpec{}, err
	}
	q := queueSpec{session: rw.s, dir: dir, value: rw.opts.value, limit: 1, lost: ErrLockLost}
	if write {
		// A writer waits for every earlier key, reader or writer.
		q.blockDir = dir
		q.key = slotKey(dir+"w/", rw.s)
	} else {
		// A reader waits only for earlier writers.
		q.blockDir = dir + "w/"
		q.key = slotKey(dir+"r/", rw.s)
	}
	q.tryEmpty = true
	return q, nil
}

func (rw *RWMutex) lock(ctx context.Context, write, wait bool) (*Lock, error) {
	q, err := rw.spec(write)
	if err != nil {
		return nil, err
	}
	h, err := acquire(ctx, q, wait)
	if err != nil {
		return nil, err
	}
	return &Lock{h: h}, nil
}

// Lock waits for the write lock. Its token is larger than that of every
// earlier write grant and of every read grant it waited for.
func (rw *RWMutex) Lock(ctx context.Context) (*Lock, error) { return rw.lock(ctx, true, true) }

// TryLock takes the write lock only if nobody holds or waits for the
// lock, in one transaction; otherwise it fails with ErrLocked.
func (rw *RWMutex) TryLock(ctx context.Context) (*Lock, error) { return rw.lock(ctx, true, false) }

// RLock waits for a read lock.
func (rw *RWMutex) RLock(ctx context.Context) (*Lock, error) { return rw.lock(ctx, false, true) }

// TryRLock takes a read lock only if no writer holds or waits for the
// lock, in one transaction; otherwise it fails with ErrLocked.
func (rw *RWMutex) TryRLock(ctx context.Context) (*Lock, error) { return rw.lock(ctx, false, false) }
