package recipes_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

type qbParticipant struct {
	s *concurrency.Session
	b *recipes.DoubleBarrier
}

func qbParticipants(t *testing.T, c *testserver.Cluster, key string, count, n int) []qbParticipant {
	t.Helper()
	ps := make([]qbParticipant, n)
	for i := range ps {
		s := newSession(t, c, 10)
		ps[i] = qbParticipant{s: s, b: recipes.NewDoubleBarrier(s, key, count)}
	}
	return ps
}

// qbBarrierRound runs Enter and Leave for every participant concurrently and
// checks that no Enter returns before every participant called Enter and no
// Leave returns before every participant called Leave.
func qbBarrierRound(t *testing.T, ctx context.Context, ps []qbParticipant) {
	t.Helper()
	var mu sync.Mutex
	entering, leaving := 0, 0
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i*40) * time.Millisecond)
			mu.Lock()
			entering++
			mu.Unlock()
			if err := p.b.Enter(ctx); err != nil {
				t.Errorf("participant %d: Enter: %v", i, err)
				return
			}
			mu.Lock()
			if entering != len(ps) {
				t.Errorf("participant %d passed Enter when %d of %d had entered", i, entering, len(ps))
			}
			mu.Unlock()
			time.Sleep(time.Duration((len(ps)-i)*40) * time.Millisecond)
			mu.Lock()
			leaving++
			mu.Unlock()
			if err := p.b.Leave(ctx); err != nil {
				t.Errorf("participant %d: Leave: %v", i, err)
				return
			}
			mu.Lock()
			if leaving != len(ps) {
				t.Errorf("participant %d passed Leave when %d of %d had left", i, leaving, len(ps))
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
}

// Over several rounds on one barrier (etcd's recipe had hang bugs when
// reused), nobody passes Enter or Leave early.
func TestDoubleBarrierRounds(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 60*time.Second)
	ps := qbParticipants(t, c, "early", 3, 3)
	for range 4 {
		qbBarrierRound(t, ctx, ps)
		if t.Failed() {
			return
		}
	}
}

func TestDoubleBarrierFullAndNotEntered(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	ps := qbParticipants(t, c, "full", 2, 3)
	// etcd's recipe dereferences a nil key here.
	if err := ps[0].b.Leave(ctx); !errors.Is(err, recipes.ErrNotEntered) {
		t.Fatalf("Leave without Enter = %v, want ErrNotEntered", err)
	}
	e0 := qbWaitAsync(func() error { return ps[0].b.Enter(ctx) })
	qbPending(t, e0, "Enter of 1 of 2")
	if err := ps[1].b.Enter(ctx); err != nil {
		t.Fatal(err)
	}
	if err := qbResult(t, e0, "Enter"); err != nil {
		t.Fatal(err)
	}
	if err := ps[0].b.Enter(ctx); !errors.Is(err, recipes.ErrInvalidArgument) {
		t.Fatalf("second Enter = %v, want ErrInvalidArgument", err)
	}
	if err := ps[2].b.Enter(ctx); !errors.Is(err, recipes.ErrBarrierFull) {
		t.Fatalf("third Enter of a 2-barrier = %v, want ErrBarrierFull", err)
	}
	l0 := qbWaitAsync(func() error { return ps[0].b.Leave(ctx) })
	qbPending(t, l0, "Leave of 1 of 2")
	if err := ps[1].b.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if err := qbResult(t, l0, "Leave"); err != nil {
		t.Fatal(err)
	}
	// The round is over: the third one can start the next with the first.
	e2 := qbWaitAsync(func() error { return ps[2].b.Enter(ctx) })
	qbPending(t, e2, "Enter of 1 of 2")
	if err := ps[0].b.Enter(ctx); err != nil {
		t.Fatal(err)
	}
	if err := qbResult(t, e2, "Enter"); err != nil {
		t.Fatal(err)
	}
	if err := recipes.NewDoubleBarrier(ps[0].s, "bad", 0).Enter(ctx); !errors.Is(err, recipes.ErrInvalidArgument) {
		t.Fatalf("count 0: %v", err)
	}
}

// A participant that dies between Enter and Leave is not waited for.
func TestDoubleBarrierParticipantDiesInside(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	ps := qbParticipants(t, c, "inside", 3, 3)
	var enters []<-chan error
	for _, p := range ps {
		enters = append(enters, qbWaitAsync(func() error { return p.b.Enter(ctx) }))
	}
	for _, e := range enters {
		if err := qbResult(t, e, "Enter"); err != nil {
			t.Fatal(err)
		}
	}
	l0 := qbWaitAsync(func() error { return ps[0].b.Leave(ctx) })
	l1 := qbWaitAsync(func() error { return ps[1].b.Leave(ctx) })
	qbPending(t, l0, "Leave while a participant is inside")
	if _, err := c.Client().Revoke(ctx, ps[2].s.Lease()); err != nil {
		t.Fatal(err)
	}
	for _, l := range []<-chan error{l0, l1} {
		if err := qbResult(t, l, "Leave after a participant died"); err != nil {
			t.Fatal(err)
		}
	}
}

// A participant that dies, or gives up, while entering is not counted: the
// round waits for someone else, and the dead one's Enter fails.
func TestDoubleBarrierParticipantDiesEntering(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	ps := qbParticipants(t, c, "entering", 2, 4)
	e0 := qbWaitAsync(func() error { return ps[0].b.Enter(ctx) })
	qbPending(t, e0, "Enter")
	if _, err := c.Client().Revoke(ctx, ps[0].s.Lease()); err != nil {
		t.Fatal(err)
	}
	if err := qbResult(t, e0, "Enter"); !errors.Is(err, recipes.ErrSessionExpired) {
		t.Fatalf("Enter after its session died = %v, want ErrSessionExpired", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	e1 := qbWaitAsync(func() error { return ps[1].b.Enter(cctx) })
	qbPending(t, e1, "Enter")
	cancel()
	if err := qbResult(t, e1, "Enter"); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled Enter = %v", err)
	}
	e2 := qbWaitAsync(func() error { return ps[2].b.Enter(ctx) })
	qbPending(t, e2, "Enter after the others dropped out")
	if err := ps[3].b.Enter(ctx); err != nil {
		t.Fatal(err)
	}
	if err := qbResult(t, e2, "Enter"); err != nil {
		t.Fatal(err)
	}
}

// Every participant of a round dies inside: the ready key is left behind.
// The next round must neither pass early on it nor be locked out by it.
func TestDoubleBarrierStaleRound(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	dead := qbParticipants(t, c, "stale", 2, 2)
	e0 := qbWaitAsync(func() error { return dead[0].b.Enter(ctx) })
	if err := dead[1].b.Enter(ctx); err != nil {
		t.Fatal(err)
	}
	if err := qbResult(t, e0, "Enter"); err != nil {
		t.Fatal(err)
	}
	for _, p := range dead {
		if _, err := c.Client().Revoke(ctx, p.s.Lease()); err != nil {
			t.Fatal(err)
		}
	}
	next := qbParticipants(t, c, "stale", 2, 2)
	for range 2 {
		qbBarrierRound(t, ctx, next)
	}
	resp, err := c.Client().Get(ctx, "stale/ready")
	if err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("ready key left after the rounds: %v %v", resp, err)
	}
}
