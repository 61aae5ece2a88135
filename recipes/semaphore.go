package recipes

import (
	"context"
	"fmt"

	"go.etcd.io/etcd/client/v3/concurrency"
)

// Semaphore lets at most n holders in at once, granted in arrival order.
// Each grant is a Lock: its Guard fails and its Done closes once that
// holder's slot is lost or released. Every participant must use the same
// n; the semaphore keeps no count in etcd, only one key per holder or
// waiter, so a holder that dies frees its slot when its lease expires.
type Semaphore struct {
	s      *concurrency.Session
	prefix string
	n      int
	opts   options
}

// NewSemaphore returns a semaphore with n slots on prefix bound to session s.
func NewSemaphore(s *concurrency.Session, prefix string, n int, opts ...Option) *Semaphore {
	return &Semaphore{s: s, prefix: prefix, n: n, opts: buildOptions(opts)}
}

// Prefix returns the normalized key prefix of the semaphore.
func (sem *Semaphore) Prefix() string {
	p, _ := normalizePrefix(sem.prefix)
	return p
}

func (sem *Semaphore) spec() (queueSpec, error) {
	dir, err := normalizePrefix(sem.prefix)
	if err != nil {
		return queueSpec{}, err
	}
	if sem.n < 1 {
		return queueSpec{}, fmt.Errorf("%w: semaphore %s: n is %d, must be at least 1", ErrInvalidArgument, dir, sem.n)
	}
	return queueSpec{
		session:  sem.s,
		dir:      dir,
		blockDir: dir,
		key:      slotKey(dir, sem.s),
		value:    sem.opts.value,
		limit:    sem.n,
		lost:     ErrLockLost,
	}, nil
}

// Acquire waits for a slot.
func (sem *Semaphore) Acquire(ctx context.Context) (*Lock, error) {
	q, err := sem.spec()
	if err != nil {
		return nil, err
	}
	h, err := acquire(ctx, q, true)
	if err != nil {
		return nil, err
	}
	return &Lock{h: h}, nil
}

// TryAcquire takes a slot only if one is free without waiting; otherwise
// it fails with ErrLocked.
func (sem *Semaphore) TryAcquire(ctx context.Context) (*Lock, error) {
	q, err := sem.spec()
	if err != nil {
		return nil, err
	}
	h, err := acquire(ctx, q, false)
	if err != nil {
		return nil, err
	}
	return &Lock{h: h}, nil
}
