package recipes

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// LeadOption configures Lead.
type LeadOption func(*leadOptions)

type leadOptions struct {
	grace    time.Duration
	onLeader func(LeaderInfo)
}

// WithGrace sets how long Lead waits for the function to return once its
// context ended (default 10 s). A function still running then is stuck:
// Lead returns ErrLeaderStuck without resigning and without campaigning
// again, as its work may still be going on.
func WithGrace(d time.Duration) LeadOption {
	return func(o *leadOptions) {
		if d > 0 {
			o.grace = d
		}
	}
}

// OnNewLeader makes Lead call f with every new leader of the election
// (from Observe), this process's and others', in order, from its own
// goroutine; Lead returns only after the last call returned.
func OnNewLeader(f func(LeaderInfo)) LeadOption {
	return func(o *leadOptions) { o.onLeader = f }
}

// Lead runs fn whenever this process leads the election e, like
// client-go's leader election:
//
//   - It campaigns with value, then calls fn with the leadership's
//     Context (see Leadership.Context: it ends on loss, on the session's
//     local deadline, or when ctx ends) and the Leadership, whose Token and
//     Guard fence fn's writes.
//   - When that context ends, fn must return. Lead waits for it (at most
//     the grace period, see WithGrace), resigns if the leadership is still
//     held, and campaigns again: two functions of one election never run
//     at once, in this process or, when fn stops in time, anywhere.
//   - When ctx ends, fn's context ends at once, and Lead resigns as soon
//     as fn returned, so the next candidate takes over within about one
//     etcd write, not after a TTL (client-go's ReleaseOnCancel). Lead then
//     returns nil.
//   - If fn returns on its own, Lead resigns and returns fn's error.
//
// Lead also returns when the session ends (an error wrapping
// ErrSessionExpired: make a new session and call Lead again), on an error
// that retrying does not cure, and with ErrLeaderStuck. A nil fn is
// ErrNilFunc.
func Lead(ctx context.Context, e *Election, value string, fn func(ctx context.Context, l *Leadership) error, opts ...LeadOption) error {
	if fn == nil {
		return ErrNilFunc
	}
	if _, err := normalizePrefix(e.prefix); err != nil {
		return err
	}
	o := leadOptions{grace: 10 * time.Second}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.onLeader != nil {
		octx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last int64
			for obs := range e.Observe(octx) {
				if obs.Leader != nil && obs.Leader.Token != last {
					last = obs.Leader.Token
					o.onLeader(*obs.Leader)
				}
			}
		}()
		defer wg.Wait()
		defer cancel()
	}
	b := newBackoff()
	for {
		if ctx.Err() != nil {
			return nil
		}
		l, err := e.Campaign(ctx, value)
		if err != nil {
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, ErrSessionExpired):
				return err
			case errors.Is(err, ErrLeadershipLost), retryable(err):
				if pause(ctx, e.s.Client(), b.next()) != nil {
					return nil
				}
				continue
			}
			return err
		}
		again, err := leadOnce(ctx, l, fn, o.grace)
		if !again {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrLeaseDeadline) {
			// The session has no proven lease time left: give its
			// keep-alives a moment before leading again.
			if pause(ctx, e.s.Client(), b.next()) != nil {
				return nil
			}
			continue
		}
		b = newBackoff()
	}
}

// leadOnce runs fn for one leadership and ends it. It reports whether
// Lead should campaign again, and why the leadership ended (or fn's
// error, or ErrLeaderStuck).
func leadOnce(ctx context.Context, l *Leadership, fn func(context.Context, *Leadership) error, grace time.Duration) (bool, error) {
	run, cancel := context.WithCancelCause(l.Context())
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() { cancel(context.Cause(ctx)) })
	defer stop()
	done := make(chan error, 1)
	go func() { done <- fn(run, l) }()
	var ferr error
	byItself := false
	select {
	case ferr = <-done:
		byItself = run.Err() == nil
	case <-run.Done():
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case ferr = <-done:
		case <-t.C:
			return false, fmt.Errorf("%w: token %d: still running %v after its context ended (%v)",
				ErrLeaderStuck, l.Token(), grace, context.Cause(run))
		}
	}
	why := context.Cause(run)
	resign(ctx, l, grace)
	if byItself {
		return false, ferr
	}
	return true, why
}

// resign ends l, retrying for up to limit while etcd cannot be reached:
// until it is gone, the next Campaign of the session waits for it.
func resign(ctx context.Context, l *Leadership, limit time.Duration) {
	end := time.Now().Add(limit)
	b := newBackoff()
	for l.Err() == nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), attemptTimeout)
		err := l.Resign(rctx)
		cancel()
		if err == nil || !retryable(err) || time.Now().After(end) {
			return
		}
		if pause(context.Background(), l.h.session.Client(), b.next()) != nil {
			return
		}
	}
}
