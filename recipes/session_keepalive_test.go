package recipes_test

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// manualClock is a recipes.Clock that moves only when Advance is called;
// timers due by then run inside Advance, in deadline order.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
}

type manualTimer struct {
	at      time.Time
	f       func()
	stopped bool
}

func newManualClock() *manualClock { return &manualClock{now: time.Unix(1_000_000, 0)} }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		was := !t.stopped
		t.stopped = true
		return was
	}
}

// Advance moves the clock by d and runs the timers that are due, also
// those they set that are due.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.Slice(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
		var due *manualTimer
		if len(c.timers) > 0 && !c.timers[0].at.After(c.now) {
			due, c.timers = c.timers[0], c.timers[1:]
		}
		c.mu.Unlock()
		if due == nil {
			return
		}
		if !due.stopped {
			due.f()
		}
	}
}

func proxiedClient(t *testing.T, c *testserver.Cluster) (*clientv3.Client, string) {
	t.Helper()
	m := c.Members()[0].Name
	cli, err := c.NewClient(clientv3.Config{Endpoints: []string{c.ProxyEndpoint(m)}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli, m
}

func newRecipesSession(t *testing.T, cli *clientv3.Client, opts ...recipes.SessionOption) *recipes.Session {
	t.Helper()
	s, err := recipes.NewSession(cli, opts...)
	if err != nil {
		t.Fatalf("NewSession: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func TestSessionMarginTooLarge(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	cli := newClient(t, c)
	before, err := cli.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []time.Duration{5 * time.Second, 6 * time.Second, -time.Second} {
		_, err := recipes.NewSession(cli, recipes.WithSessionTTL(5), recipes.WithSafetyMargin(m))
		if !errors.Is(err, recipes.ErrMarginTooLarge) || !errors.Is(err, recipes.ErrInvalidArgument) {
			t.Fatalf("margin %v: err = %v, want ErrMarginTooLarge", m, err)
		}
	}
	after, err := cli.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Leases) != len(before.Leases) {
		t.Fatalf("a rejected NewSession granted a lease: %d leases before, %d after", len(before.Leases), len(after.Leases))
	}
	// An existing lease's TTL (read from etcd) is checked the same way.
	g, err := cli.Grant(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recipes.NewSession(cli, recipes.WithSessionLease(g.ID), recipes.WithSafetyMargin(4*time.Second)); !errors.Is(err, recipes.ErrMarginTooLarge) {
		t.Fatalf("existing lease of TTL 3 with margin 4s: err = %v, want ErrMarginTooLarge", err)
	}
	s := newRecipesSession(t, cli, recipes.WithSessionLease(g.ID), recipes.WithSessionContext(ctx))
	if s.Lease() != g.ID || s.TTL() < 2*time.Second || s.Margin() != s.TTL()/3 {
		t.Fatalf("resumed session: lease %x TTL %v margin %v", s.Lease(), s.TTL(), s.Margin())
	}
}

// TestHoldContextDeadlineManualClock checks the deadline arithmetic on an
// injected clock: the context of a grant ends exactly when the clock
// passes "send time of the last acknowledged keep-alive + TTL - margin",
// and an acknowledged keep-alive moves that instant.
func TestHoldContextDeadlineManualClock(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 60*time.Second)
	cli, member := proxiedClient(t, c)
	clk := newManualClock()
	s := newRecipesSession(t, cli, recipes.WithSessionTTL(6), recipes.WithSafetyMargin(2*time.Second), recipes.WithSessionClock(clk))
	t0 := clk.Now()
	if sent, _ := s.LastKeepAlive(); !sent.Equal(t0) || !s.Deadline().Equal(t0.Add(4*time.Second)) {
		t.Fatalf("sent %v deadline %v, want %v and +4s", sent, s.Deadline(), t0)
	}
	l, err := recipes.NewMutex(s.Concurrency(), "hold/manual").Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hctx := l.Context()
	clk.Advance(3900 * time.Millisecond)
	if hctx.Err() != nil {
		t.Fatalf("context ended before the deadline: %v", context.Cause(hctx))
	}
	// The next keep-alive is sent at t0+3.9s on this clock.
	for {
		if sent, acked := s.LastKeepAlive(); sent.Equal(t0.Add(3900*time.Millisecond)) && !acked.Before(sent) {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("no keep-alive acknowledged")
		}
		time.Sleep(20 * time.Millisecond)
	}
	clk.Advance(3 * time.Second) // t0+6.9s: past the first deadline, before the new one (t0+7.9s)
	if hctx.Err() != nil {
		t.Fatalf("context ended although a keep-alive moved the deadline to %v: %v", s.Deadline().Sub(t0), context.Cause(hctx))
	}
	// Stall the client: no keep-alive is acknowledged any more. Every one
	// sent so far was sent at t0+6.9s at the latest, so 4s later the
	// deadline has passed whatever was acknowledged.
	if err := c.Blackhole(member); err != nil {
		t.Fatal(err)
	}
	clk.Advance(4 * time.Second)
	if !errors.Is(context.Cause(hctx), recipes.ErrLeaseDeadline) {
		t.Fatalf("cause after the deadline = %v, want ErrLeaseDeadline", context.Cause(hctx))
	}
	// Stopping in time: etcd still has the lease and the lock.
	ttl, err := c.Client().TimeToLive(ctx, s.Lease())
	if err != nil || ttl.TTL <= 0 {
		t.Fatalf("lease after the local deadline: %v %v, want alive", ttl, err)
	}
	if err := c.Unblackhole(member); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
}

// TestHoldContextStopsBeforeExpiry checks on the real clock that a holder
// cut off from etcd sees its context end while etcd still has its lease.
func TestHoldContextStopsBeforeExpiry(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 60*time.Second)
	cli, member := proxiedClient(t, c)
	s := newRecipesSession(t, cli, recipes.WithSessionTTL(4), recipes.WithSafetyMargin(2*time.Second))
	e := recipes.NewElection(s.Concurrency(), "hold/real")
	l, err := e.Campaign(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	hctx := l.Context()
	if err := c.Blackhole(member); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Unblackhole(member) }()
	select {
	case <-hctx.Done():
	case <-ctx.Done():
		t.Fatal("context never ended")
	}
	ttl, err := c.Client().TimeToLive(ctx, s.Lease())
	if !errors.Is(context.Cause(hctx), recipes.ErrLeaseDeadline) || err != nil || ttl.TTL <= 0 {
		t.Fatalf("cause %v; lease %v %v: want ErrLeaseDeadline while the lease lives", context.Cause(hctx), ttl, err)
	}
	// The lease then expires: the leadership is lost, with its revision.
	select {
	case <-l.Done():
	case <-ctx.Done():
		t.Fatal("loss never seen")
	}
	if err := c.Unblackhole(member); err != nil {
		t.Fatal(err)
	}
	var le *recipes.LossError
	if err := l.Err(); !errors.Is(err, recipes.ErrLeadershipLost) || !errors.As(err, &le) || le.Token != l.Token() {
		t.Fatalf("Err = %v, want a LossError of token %d", err, l.Token())
	}
}

// TestHoldContextCauses checks the causes of loss and release for locks,
// leaderships and claims, and the loss revision.
func TestHoldContextCauses(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 60*time.Second)
	cli := newClient(t, c)

	// Release.
	s := sessionOn(t, cli, 10)
	l, err := recipes.NewMutex(s, "causes/m").Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lctx := l.Context()
	if lctx.Err() != nil {
		t.Fatalf("context of a held lock ended: %v", context.Cause(lctx))
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	<-lctx.Done()
	if !errors.Is(context.Cause(lctx), recipes.ErrNotHeld) {
		t.Fatalf("cause after Unlock = %v", context.Cause(lctx))
	}
	lead, err := recipes.NewElection(s, "causes/e").Campaign(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	if err := lead.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(context.Cause(lead.Context()), recipes.ErrNotHeld) {
		t.Fatalf("cause after Resign = %v", context.Cause(lead.Context()))
	}

	// Loss: the key is deleted behind the holder's back.
	l, err = recipes.NewMutex(s, "causes/m").Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lctx = l.Context()
	del, err := cli.Delete(ctx, l.Key())
	if err != nil {
		t.Fatal(err)
	}
	<-lctx.Done()
	var le *recipes.LossError
	if cause := context.Cause(lctx); !errors.Is(cause, recipes.ErrLockLost) || !errors.As(cause, &le) ||
		le.Revision != del.Header.Revision || le.Key != l.Key() || le.Token != l.Token() {
		t.Fatalf("cause after deletion at %d = %v (%+v)", del.Header.Revision, cause, le)
	}
	if err := l.Err(); !errors.As(err, &le) || le.Revision != del.Header.Revision {
		t.Fatalf("Err = %v, want the LossError at revision %d", err, del.Header.Revision)
	}

	// Claims: acked, then lost with the consumer's lease.
	q := recipes.NewQueue(cli, "causes/q")
	qbEnqueue(t, ctx, q, "a", "b")
	cs := sessionOn(t, cli, 10)
	con := recipes.NewConsumer(cs, "causes/q")
	cl := qbClaim(t, ctx, con, "a")
	cctx := cl.Context()
	if err := cl.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	<-cctx.Done()
	if !errors.Is(context.Cause(cctx), recipes.ErrNotHeld) || !errors.Is(cl.Err(), recipes.ErrNotHeld) {
		t.Fatalf("claim after Ack: cause %v, Err %v", context.Cause(cctx), cl.Err())
	}
	cl = qbClaim(t, ctx, con, "b")
	cctx = cl.Context()
	if _, err := cli.Revoke(ctx, cs.Lease()); err != nil {
		t.Fatal(err)
	}
	<-cl.Done()
	if cause := context.Cause(cctx); !errors.Is(cause, recipes.ErrClaimLost) || !errors.As(cause, &le) {
		t.Fatalf("claim after revoke: cause %v", cause)
	}
}
