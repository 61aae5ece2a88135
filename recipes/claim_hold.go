package recipes

import (
	"context"
	"errors"
	"sync"
)

// claimState gives a Claim the hold machinery of locks (loss monitor,
// Done, Err, Context), made on first use.
type claimState struct {
	mu  sync.Mutex
	h   *hold
	end error           // how the claim ended by Ack or Nack, for a hold made later
	ctx context.Context // Context of a claim with a lease of its own
}

func (cl *Claim) hold() *hold {
	st := &cl.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.h == nil {
		st.h = newHold(cl.c.s, cl.key, cl.rev, ErrClaimLost, nil)
		if st.end != nil {
			st.h.finish(st.end, errors.Is(st.end, ErrNotHeld))
		}
	}
	return st.h
}

// beginFinish marks an Ack or Nack in flight: the deletion of the claim
// key that the monitor may see is then not a loss.
func (cl *Claim) beginFinish() {
	st := &cl.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.h != nil {
		st.h.mu.Lock()
		st.h.releasing = true
		st.h.mu.Unlock()
	}
}

// endFinish records the outcome of an Ack or Nack: nil (released), an
// error wrapping ErrClaimLost (lost), or another error (unknown: the
// claim may still be held).
func (cl *Claim) endFinish(err error) {
	st := &cl.st
	st.mu.Lock()
	defer st.mu.Unlock()
	var end error
	released := false
	switch {
	case err == nil:
		end, released = releasedError{"claim", cl.key}, true
	case errors.Is(err, ErrClaimLost):
		end = err
	}
	if end != nil && st.end == nil {
		st.end = end
	}
	h := st.h
	if h == nil {
		return
	}
	h.mu.Lock()
	h.releasing = false
	seen := h.sawDelete
	if end != nil {
		h.stopMon()
	}
	h.mu.Unlock()
	switch {
	case end != nil:
		h.finish(end, released)
	case seen != nil:
		h.finish(seen, false)
	}
}

// Done is closed when the claim ends: acked or nacked, its key deleted,
// or its session's lease expired or revoked (seen by a watch on the claim
// key), or the session's keep-alive stopped. The first call starts the
// watch.
func (cl *Claim) Done() <-chan struct{} { return cl.hold().doneCh() }

// Err returns nil while the claim holds its item, a *LossError wrapping
// ErrClaimLost once it was lost, and an error wrapping ErrNotHeld after a
// successful Ack or Nack.
func (cl *Claim) Err() error { return cl.hold().status() }

// Context is Lock.Context for a claim: it ends when the claim is lost, acked
// or nacked, or at the local deadline of a consumer made with a
// [Session]'s Concurrency().
//
// For a claim made WithVisibilityTimeout it also ends at the claim's own
// local deadline (cause ErrLeaseDeadline), which Extend moves.
func (cl *Claim) Context() context.Context {
	ctx := cl.hold().context()
	if cl.lease == nil {
		return ctx
	}
	st := &cl.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ctx == nil {
		c, cancel := context.WithCancelCause(ctx)
		lctx := cl.lease.ctx
		context.AfterFunc(lctx, func() {
			if cause := context.Cause(lctx); cause != nil && !errors.Is(cause, context.Canceled) {
				cancel(cause)
			}
		})
		st.ctx = c
	}
	return st.ctx
}
