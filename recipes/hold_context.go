package recipes

import (
	"context"
)

// context returns the hold's context: a child of the session's deadline
// epoch (or of Background for a plain concurrency.Session) that finish
// cancels with the hold's end (a LossError or a releasedError). The first
// call starts the loss monitor.
func (h *hold) context() context.Context {
	h.once.Do(h.startMonitor)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ctx != nil {
		return h.ctx
	}
	parent := context.Background()
	if h.epoch != nil {
		parent = h.epoch.ctx
	}
	ctx, cancel := context.WithCancelCause(parent)
	if h.err != nil {
		cancel(h.err)
	}
	h.ctx, h.cancelCtx = ctx, cancel
	return ctx
}

// Context returns a context that ends at the earliest of: the lock seen
// lost (context.Cause is a *LossError wrapping ErrLockLost), its release
// (a cause wrapping ErrNotHeld), and, for a lock taken with a [Session],
// the session's local deadline (a cause wrapping ErrLeaseDeadline). Run
// the work the lock protects under it. The first call starts watching the
// key, as Done does.
func (l *Lock) Context() context.Context { return l.h.context() }

// Context is Lock.Context for a leadership: the cause is a *LossError
// wrapping ErrLeadershipLost, an error wrapping ErrNotHeld after Resign,
// or one wrapping ErrLeaseDeadline.
func (l *Leadership) Context() context.Context { return l.h.context() }
