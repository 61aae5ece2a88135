package recipes_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
)

// qbWaitAsync runs fn in a goroutine and returns a channel for its error.
func qbWaitAsync(fn func() error) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- fn() }()
	return ch
}

func qbPending(t *testing.T, ch <-chan error, what string) {
	t.Helper()
	select {
	case err := <-ch:
		t.Fatalf("%s returned early: %v", what, err)
	case <-time.After(200 * time.Millisecond):
	}
}

func qbResult(t *testing.T, ch <-chan error, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not return", what)
		return nil
	}
}

func TestBarrierHoldWaitRelease(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	holder := recipes.NewBarrier(newSession(t, c, 10), "gate")

	// Not held: Wait passes at once.
	if err := recipes.NewBarrier(newSession(t, c, 10), "gate").Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := holder.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	if err := holder.Hold(ctx); err != nil {
		t.Fatalf("Hold again under the same session = %v, want nil", err)
	}
	other := recipes.NewBarrier(newSession(t, c, 10), "gate")
	if err := other.Hold(ctx); !errors.Is(err, recipes.ErrBarrierHeld) {
		t.Fatalf("Hold under another session = %v, want ErrBarrierHeld", err)
	}
	var waits []<-chan error
	for range 3 {
		b := recipes.NewBarrier(newSession(t, c, 10), "gate/")
		waits = append(waits, qbWaitAsync(func() error { return b.Wait(ctx) }))
	}
	for _, w := range waits {
		qbPending(t, w, "Wait on a held barrier")
	}
	if err := holder.Release(ctx); err != nil {
		t.Fatal(err)
	}
	for _, w := range waits {
		if err := qbResult(t, w, "Wait after Release"); err != nil {
			t.Fatal(err)
		}
	}
	// Released: Hold works again, and Release is idempotent.
	if err := holder.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := holder.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// A waiter must pass a Release even when the barrier is held again right
// after it, before the waiter had a chance to read.
func TestBarrierReleaseThenHoldAgain(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	holder := recipes.NewBarrier(newSession(t, c, 10), "flip")
	if err := holder.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	waiter := recipes.NewBarrier(newSession(t, c, 10), "flip")
	w := qbWaitAsync(func() error { return waiter.Wait(ctx) })
	qbPending(t, w, "Wait")
	if err := holder.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := holder.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	if err := qbResult(t, w, "Wait"); err != nil {
		t.Fatalf("Wait across Release+Hold = %v", err)
	}
}

// etcd's recipe.Barrier key has no lease: if its holder dies, waiters block
// forever. Here the hold dies with the holder's session, and the waiters
// learn that the barrier was abandoned: they neither pass (nobody released
// it) nor hang.
func TestBarrierHolderSessionExpired(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	hs := newSession(t, c, 10)
	holder := recipes.NewBarrier(hs, "dead")
	if err := holder.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	waiter := recipes.NewBarrier(newSession(t, c, 10), "dead")
	w := qbWaitAsync(func() error { return waiter.Wait(ctx) })
	qbPending(t, w, "Wait")
	if _, err := c.Client().Revoke(ctx, hs.Lease()); err != nil {
		t.Fatal(err)
	}
	if err := qbResult(t, w, "Wait"); !errors.Is(err, recipes.ErrBarrierAbandoned) {
		t.Fatalf("Wait after the holder died = %v, want ErrBarrierAbandoned", err)
	}
	if err := waiter.Wait(ctx); !errors.Is(err, recipes.ErrBarrierAbandoned) {
		t.Fatalf("later Wait = %v, want ErrBarrierAbandoned", err)
	}
	// A Release after the fact reports it, and lets later waiters through.
	if err := waiter.Release(ctx); !errors.Is(err, recipes.ErrBarrierAbandoned) {
		t.Fatalf("Release of an abandoned barrier = %v, want ErrBarrierAbandoned", err)
	}
	if err := waiter.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	// The dead holder's Barrier cannot hold again.
	if err := holder.Hold(ctx); !errors.Is(err, recipes.ErrSessionExpired) {
		t.Fatalf("Hold on an expired session = %v, want ErrSessionExpired", err)
	}
}

func TestBarrierWaitEnds(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	holder := recipes.NewBarrier(newSession(t, c, 10), "ends")
	if err := holder.Hold(ctx); err != nil {
		t.Fatal(err)
	}
	// The waiter's own session ends.
	ws := newSession(t, c, 10)
	waiter := recipes.NewBarrier(ws, "ends")
	w := qbWaitAsync(func() error { return waiter.Wait(ctx) })
	qbPending(t, w, "Wait")
	_ = ws.Close()
	if err := qbResult(t, w, "Wait"); !errors.Is(err, recipes.ErrSessionExpired) {
		t.Fatalf("Wait after its session closed = %v, want ErrSessionExpired", err)
	}
	// Its ctx ends.
	cctx, cancel := context.WithCancel(ctx)
	other := recipes.NewBarrier(newSession(t, c, 10), "ends")
	w = qbWaitAsync(func() error { return other.Wait(cctx) })
	qbPending(t, w, "Wait")
	start := time.Now()
	cancel()
	if err := qbResult(t, w, "Wait"); !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled Wait = %v", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Wait returned %v after cancel", d)
	}
}
