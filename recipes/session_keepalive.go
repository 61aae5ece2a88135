package recipes

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Session is a concurrency.Session that also knows, on its own clock, how
// long its lease is certainly alive: it sends its own keep-alives and
// records when each was sent and when etcd acknowledged it. etcd expires a
// lease TTL after the last renewal it received, and it received an
// acknowledged keep-alive no earlier than it was sent, so the lease lives
// at least until "send time of the last acknowledged keep-alive + TTL"
// (as long as the clocks of this process and of etcd's leader run at the
// same rate). The local deadline is that instant minus a safety margin;
// every grant made with the session has a Context that ends there at the
// latest (see "Stopping in time" in the package documentation).
//
// Pass Concurrency() wherever a *concurrency.Session is taken: NewMutex,
// NewElection, NewConsumer and the others. The grants then know the
// session's deadline; with a plain concurrency.Session their Context ends
// only on a loss seen or a release.
//
// The concurrency.Session keeps the lease alive as well, with clientv3's
// keep-alive, whose send times are hidden; its renewals only make the
// lease live longer than the deadline assumes.
type Session struct {
	cs     *concurrency.Session
	ttl    time.Duration
	margin time.Duration
	clock  Clock
	stop   context.CancelFunc
	ended  chan struct{} // closed when the keep-alive loop returns

	mu      sync.Mutex
	sent    time.Time // send time of the last acknowledged keep-alive (or grant)
	acked   time.Time // when it was acknowledged
	ep      *epoch    // current deadline epoch; nil once the session ended
	stopped bool
}

// epoch is a stretch of time over which the session's lease was kept
// alive without a gap: its context ends (cause ErrLeaseDeadline) when the
// deadline passes without a new acknowledgment. A later acknowledgment
// starts a new epoch; grants keep the epoch they were made in.
type epoch struct {
	ctx      context.Context
	cancel   context.CancelCauseFunc
	deadline time.Time // under Session.mu
	armed    bool      // a timer is pending (under Session.mu)
}

// Clock is the time source of a Session's deadline: Now reads it and
// AfterFunc calls f (in its own goroutine) once d has passed on it, unless
// stop is called first. WithSessionClock lets tests inject skew or
// pauses.
type Clock interface {
	Now() time.Time
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) func() bool { return time.AfterFunc(d, f).Stop }

// SessionOption configures NewSession.
type SessionOption func(*sessionOptions)

type sessionOptions struct {
	ttl       int
	lease     clientv3.LeaseID
	ctx       context.Context
	margin    time.Duration
	marginSet bool
	clock     Clock
}

// WithSessionTTL sets the TTL of the session's lease in seconds (default
// 60, as concurrency.WithTTL).
func WithSessionTTL(seconds int) SessionOption {
	return func(o *sessionOptions) {
		if seconds > 0 {
			o.ttl = seconds
		}
	}
}

// WithSessionLease makes the session use an existing lease (as
// concurrency.WithLease), e.g. to resume grants after a restart; its TTL
// is read from etcd.
func WithSessionLease(id clientv3.LeaseID) SessionOption {
	return func(o *sessionOptions) { o.lease = id }
}

// WithSessionContext sets the context that bounds the session's
// keep-alives (as concurrency.WithContext).
func WithSessionContext(ctx context.Context) SessionOption {
	return func(o *sessionOptions) { o.ctx = ctx }
}

// WithSafetyMargin sets how long before the earliest possible lease
// expiry the local deadline falls (default a third of the TTL). It covers
// a clock of this process that runs slower than etcd's leader's and
// pauses between a deadline check and the work it guards. It must be at
// least 0 and below the TTL (ErrMarginTooLarge).
func WithSafetyMargin(d time.Duration) SessionOption {
	return func(o *sessionOptions) { o.margin, o.marginSet = d, true }
}

// WithSessionClock sets the clock of the local deadline (default the
// system's monotonic clock).
func WithSessionClock(c Clock) SessionOption {
	return func(o *sessionOptions) {
		if c != nil {
			o.clock = c
		}
	}
}

// sessions maps the concurrency.Session of every live Session to it, so
// that primitives given Concurrency() find the deadline.
var sessions sync.Map // *concurrency.Session -> *Session

// NewSession grants a lease (or takes WithSessionLease's), keeps it alive
// and records its keep-alives. The options are checked before anything is
// written.
func NewSession(client *clientv3.Client, opts ...SessionOption) (*Session, error) {
	o := sessionOptions{ttl: 60, ctx: client.Ctx(), clock: realClock{}}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	ttl := time.Duration(o.ttl) * time.Second
	checkMargin := func(ttl time.Duration) (time.Duration, error) {
		if !o.marginSet {
			return ttl / 3, nil
		}
		if o.margin < 0 || o.margin >= ttl {
			return 0, fmt.Errorf("%w: margin %v, TTL %v", ErrMarginTooLarge, o.margin, ttl)
		}
		return o.margin, nil
	}
	var sent time.Time
	id := o.lease
	if id == clientv3.NoLease {
		if _, err := checkMargin(ttl); err != nil {
			return nil, err
		}
		sent = o.clock.Now()
		resp, err := client.Grant(o.ctx, int64(o.ttl))
		if err != nil {
			return nil, etcdErr("grant session lease", err)
		}
		id = resp.ID
	} else {
		// One keep-alive on a stream of our own, which (unlike
		// KeepAliveOnce) skips answers about other leases.
		kctx, cancel := context.WithTimeout(o.ctx, attemptTimeout)
		st, err := openKAStream(kctx, client)
		var left int64
		if err == nil {
			sent = o.clock.Now()
			left, err = st.renew(int64(id), attemptTimeout)
			st.close()
		}
		cancel()
		if err != nil {
			return nil, etcdErr(fmt.Sprintf("keep lease %x alive", int64(id)), err)
		}
		if left <= 0 {
			return nil, fmt.Errorf("%w: lease %x not found", ErrSessionExpired, int64(id))
		}
		ttl = time.Duration(left) * time.Second
		if _, err := checkMargin(ttl); err != nil {
			return nil, err
		}
	}
	margin, _ := checkMargin(ttl)
	cs, err := concurrency.NewSession(client, concurrency.WithLease(id), concurrency.WithContext(o.ctx))
	if err != nil {
		if o.lease == clientv3.NoLease {
			rctx, cancel := context.WithTimeout(o.ctx, attemptTimeout)
			_, _ = client.Revoke(rctx, id) // ours: do not leave it to expire
			cancel()
		}
		return nil, etcdErr("new session", err)
	}
	ctx, stop := context.WithCancel(o.ctx)
	s := &Session{cs: cs, ttl: ttl, margin: margin, clock: o.clock, stop: stop, ended: make(chan struct{})}
	s.acknowledged(sent, o.clock.Now())
	sessions.Store(cs, s)
	go s.keepAlive(ctx)
	return s, nil
}

// Concurrency returns the concurrency.Session to give the primitives.
func (s *Session) Concurrency() *concurrency.Session { return s.cs }

// Lease returns the session's lease.
func (s *Session) Lease() clientv3.LeaseID { return s.cs.Lease() }

// Done is closed when the session's keep-alive ends (as
// concurrency.Session.Done).
func (s *Session) Done() <-chan struct{} { return s.cs.Done() }

// TTL returns the lease's TTL.
func (s *Session) TTL() time.Duration { return s.ttl }

// Margin returns the safety margin.
func (s *Session) Margin() time.Duration { return s.margin }

// LastKeepAlive returns the send and acknowledgment times, on the
// session's clock, of the last keep-alive etcd acknowledged (the lease
// grant, at first).
func (s *Session) LastKeepAlive() (sent, acked time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent, s.acked
}

// Deadline returns the current local deadline: LastKeepAlive's send time
// plus TTL minus Margin.
func (s *Session) Deadline() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent.Add(s.ttl - s.margin)
}

// Close ends the keep-alives and revokes the lease (as
// concurrency.Session.Close); every grant's Context ends, as lost.
func (s *Session) Close() error {
	s.end()
	return s.cs.Close()
}

func (s *Session) end() {
	s.stop()
	sessions.Delete(s.cs)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	// The grants' contexts end through their loss monitors, which see the
	// session end (cause: a LossError); the last epoch's timer still ends
	// it at its deadline.
	s.stopped = true
	s.ep = nil
}

// acknowledged records an acknowledged keep-alive sent at sent.
func (s *Session) acknowledged(sent, acked time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped || sent.Before(s.sent) {
		return
	}
	s.sent, s.acked = sent, acked
	deadline := sent.Add(s.ttl - s.margin)
	if s.ep == nil || s.ep.ctx.Err() != nil {
		if !deadline.After(s.clock.Now()) {
			return // acknowledged too late to prove anything
		}
		ctx, cancel := context.WithCancelCause(context.Background())
		s.ep = &epoch{ctx: ctx, cancel: cancel}
	}
	if deadline.After(s.ep.deadline) {
		s.ep.deadline = deadline
	}
	if !s.ep.armed {
		s.arm(s.ep)
	}
}

// arm starts the timer of ep's deadline (under s.mu). When it fires early
// (the deadline moved), it arms itself again.
func (s *Session) arm(ep *epoch) {
	ep.armed = true
	s.clock.AfterFunc(ep.deadline.Sub(s.clock.Now()), func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		ep.armed = false
		if ep.ctx.Err() != nil {
			return
		}
		now := s.clock.Now()
		if now.Before(ep.deadline) {
			s.arm(ep)
			return
		}
		ep.cancel(fmt.Errorf("%w: lease %x: no keep-alive acknowledged since one sent at %s (TTL %v, margin %v)",
			ErrLeaseDeadline, int64(s.cs.Lease()), s.sent.Format(time.RFC3339Nano), s.ttl, s.margin))
	})
}

// currentEpoch returns the epoch a grant made now by s belongs to, or nil
// for a session that is not a Session's.
func currentEpoch(cs *concurrency.Session) *epoch {
	v, ok := sessions.Load(cs)
	if !ok {
		return nil
	}
	s := v.(*Session)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ep == nil {
		// Ended (or never acknowledged in time): a grant made now has no
		// proven lease time left.
		ctx, cancel := context.WithCancelCause(context.Background())
		cancel(fmt.Errorf("%w: lease %x: local deadline passed", ErrLeaseDeadline, int64(cs.Lease())))
		return &epoch{ctx: ctx, cancel: cancel}
	}
	return s.ep
}

// keepAlive sends a keep-alive every third of the TTL on a stream of its
// own and records each acknowledgment, until ctx ends or the lease is
// gone.
func (s *Session) keepAlive(ctx context.Context) {
	defer close(s.ended)
	defer s.end()
	c := s.cs.Client()
	id := int64(s.cs.Lease())
	interval := s.ttl / 3
	var st *kaStream
	defer func() { st.close() }()
	wait := interval
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.cs.Done():
			return
		case <-time.After(wait):
		}
		if st == nil {
			var err error
			if st, err = openKAStream(ctx, c); err != nil {
				wait = retryWait(interval)
				continue
			}
		}
		sent := s.clock.Now()
		ttl, err := st.renew(id, interval)
		switch {
		case err == nil && ttl > 0:
			s.acknowledged(sent, s.clock.Now())
			wait = interval
		case err == nil:
			return // the lease is gone
		default:
			st.close()
			st = nil
			wait = retryWait(interval)
		}
	}
}

func retryWait(interval time.Duration) time.Duration {
	return min(interval/4, 200*time.Millisecond)
}

// kaStream is one LeaseKeepAlive stream with a goroutine that reads it.
// Answers for other leases (etcd sends none, but a proxy may) are skipped.
type kaStream struct {
	stream pb.Lease_LeaseKeepAliveClient
	cancel context.CancelFunc
	resps  chan *pb.LeaseKeepAliveResponse
	errc   chan error
}

func openKAStream(ctx context.Context, c *clientv3.Client) (*kaStream, error) {
	sctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	stream, err := pb.NewLeaseClient(c.ActiveConnection()).LeaseKeepAlive(sctx, rawCallOpts...)
	if err != nil {
		cancel()
		return nil, err
	}
	st := &kaStream{stream: stream, cancel: cancel, resps: make(chan *pb.LeaseKeepAliveResponse, 16), errc: make(chan error, 1)}
	go func() {
		for {
			resp, err := stream.Recv()
			if err != nil {
				st.errc <- err
				return
			}
			select {
			case st.resps <- resp:
			case <-sctx.Done():
				return
			}
		}
	}()
	return st, nil
}

var errKATimeout = errors.New("keep-alive not acknowledged in time")

// renew sends one keep-alive for lease id and waits up to timeout for its
// answer; it returns the TTL etcd answered (0: the lease is gone).
func (st *kaStream) renew(id int64, timeout time.Duration) (int64, error) {
	if err := st.stream.Send(&pb.LeaseKeepAliveRequest{ID: id}); err != nil {
		return 0, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case resp := <-st.resps:
			if resp.ID == id {
				return resp.TTL, nil
			}
		case err := <-st.errc:
			return 0, err
		case <-t.C:
			return 0, errKATimeout
		}
	}
}

func (st *kaStream) close() {
	if st != nil {
		st.cancel()
	}
}
