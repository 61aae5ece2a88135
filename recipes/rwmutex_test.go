package recipes_test

import (
	"errors"
	"testing"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

func TestRWMutexReadersShareWritersExclude(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	rw := func() *recipes.RWMutex { return recipes.NewRWMutex(newSession(t, c, 5), "locks/rw") }
	r1, err := rw().RLock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := rw().TryRLock(ctx)
	if err != nil {
		t.Fatalf("second reader: %v", err)
	}
	if _, err := rw().TryLock(ctx); !errors.Is(err, recipes.ErrLocked) {
		t.Fatalf("TryLock while read-locked = %v, want ErrLocked", err)
	}
	wc := lockLater(t, ctx, rw().Lock)
	waitForKeys(t, c, "locks/rw/", 3)
	// A reader arriving after the waiting writer queues behind it.
	if _, err := rw().TryRLock(ctx); !errors.Is(err, recipes.ErrLocked) {
		t.Fatalf("TryRLock with a writer waiting = %v, want ErrLocked", err)
	}
	rc := lockLater(t, ctx, rw().RLock)
	waitForKeys(t, c, "locks/rw/", 4)
	if err := r1.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wc:
		t.Fatal("writer granted while a reader holds")
	case <-time.After(100 * time.Millisecond):
	}
	if err := r2.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	w := <-wc
	if w == nil || w.Token() <= r2.Token() {
		t.Fatalf("writer %v", w)
	}
	select {
	case <-rc:
		t.Fatal("late reader granted while the writer holds")
	case <-time.After(100 * time.Millisecond):
	}
	if err := w.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if r := <-rc; r == nil || r.Token() <= w.Token() {
		t.Fatalf("late reader %v", r)
	}
}

// A writer waits behind two readers. The reader just ahead of it releases
// first: the writer wakes, but an earlier reader still holds, so it must
// keep waiting (a reader's release is no hand-over of the whole line).
func TestRWMutexWriterWaitsForEarlierReader(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	rw := func() *recipes.RWMutex { return recipes.NewRWMutex(newSession(t, c, 5), "locks/rwnear") }
	r1, err := rw().RLock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := rw().RLock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wc := lockLater(t, ctx, rw().Lock)
	waitForKeys(t, c, "locks/rwnear/", 3)
	if err := r2.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wc:
		t.Fatal("writer granted while the earlier reader holds")
	case <-time.After(200 * time.Millisecond):
	}
	if err := r1.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if w := <-wc; w == nil || w.Token() <= r2.Token() {
		t.Fatalf("writer %v", w)
	}
}

// The RWMutex of etcd's experimental recipes had the same gap as
// Campaign (#19597): a waiter whose lease expired could be granted.
func TestRWMutexWaiterSessionExpiredNeverWins(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	w, err := recipes.NewRWMutex(newSession(t, c, 5), "locks/rw-expire").Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, write := range []bool{false, true} {
		s := newSession(t, c, 5)
		errc := make(chan error, 1)
		go func() {
			rw := recipes.NewRWMutex(s, "locks/rw-expire")
			lock := rw.RLock
			if write {
				lock = rw.Lock
			}
			_, err := lock(ctx)
			errc <- err
		}()
		waitForKeys(t, c, "locks/rw-expire/", 2)
		if _, err := c.Client().Revoke(ctx, s.Lease()); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, recipes.ErrSessionExpired) {
			t.Fatalf("write=%v: waiting lock = %v, want ErrSessionExpired", write, err)
		}
	}
	if err := w.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}
