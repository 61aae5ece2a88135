package chaos

import (
	"context"
	"sync"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
)

// SkewedClock is a recipes.Clock that runs at Rate times the real clock:
// the clock-rate drift injected into a session's deadline.
type SkewedClock struct {
	start time.Time
	Rate  float64
}

// NewSkewedClock returns a clock running at rate (1: real time).
func NewSkewedClock(rate float64) *SkewedClock { return &SkewedClock{start: time.Now(), Rate: rate} }

// Now is the start time plus the real time elapsed, times Rate.
func (c *SkewedClock) Now() time.Time {
	return c.start.Add(time.Duration(float64(time.Since(c.start)) * c.Rate))
}

// AfterFunc calls f once d has passed on this clock.
func (c *SkewedClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(time.Duration(float64(d)/c.Rate), f).Stop
}

// holdSessions holds each worker's current recipes.Session.
var holdSessions sync.Map // *Worker -> *recipes.Session

// HoldSession returns the worker's live recipes.Session (TTL seconds,
// with opts), replacing one that ended. It returns nil only when ctx ends.
// These sessions are not offered to RevokeLease: a revocation hands a
// lock over at once, which no local deadline can anticipate.
func (w *Worker) HoldSession(ctx context.Context, opts ...recipes.SessionOption) *recipes.Session {
	if v, ok := holdSessions.Load(w); ok {
		s := v.(*recipes.Session)
		select {
		case <-s.Done():
			_ = s.Close()
			holdSessions.Delete(w)
		default:
			return s
		}
	}
	for ctx.Err() == nil {
		gctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		grant, err := w.Client.Grant(gctx, TTL)
		cancel()
		var s *recipes.Session
		if err == nil {
			s, err = recipes.NewSession(w.Client, append([]recipes.SessionOption{recipes.WithSessionLease(grant.ID)}, opts...)...)
		}
		if err == nil {
			holdSessions.Store(w, s)
			w.env.T.Cleanup(func() { _ = s.Close() })
			return s
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// CloseHoldSession ends the worker's recipes.Session, revoking its lease if
// etcd is reachable.
func (w *Worker) CloseHoldSession() {
	v, ok := holdSessions.LoadAndDelete(w)
	if !ok {
		return
	}
	s := v.(*recipes.Session)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_, _ = w.Client.Revoke(ctx, s.Lease())
	cancel()
	_ = s.Close()
}

// HoldFaults are the faults of the hold-context workloads: all but
// RevokeLease (see HoldSession).
var HoldFaults = []Fault{StopRestart, KillLeader, Partition, Blackhole, Pause}
