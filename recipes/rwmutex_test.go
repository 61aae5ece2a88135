package recipes_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

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
	wc := make(chan *recipes.Lock, 1)
	go func() {
		w, err := rw().Lock(ctx)
		if err != nil {
			t.Error(err)
		}
		wc <- w
	}()
	waitForKeys(t, c, "locks/rw/", 3)
	// A reader arriving after the waiting writer queues behind it.
	if _, err := rw().TryRLock(ctx); !errors.Is(err, recipes.ErrLocked) {
		t.Fatalf("TryRLock with a writer waiting = %v, want ErrLocked", err)
	}
	rc := make(chan *recipes.Lock, 1)
	go func() {
		r, err := rw().RLock(ctx)
		if err != nil {
			t.Error(err)
		}
		rc <- r
	}()
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

// Prefix is the normalized prefix under which every key of the lock lives,
// reader's or writer's, so that one etcdctl get --prefix lists them all;
// "locks/rw-prefix" and "locks/rw-prefix//" name the same lock.
func TestRWMutexPrefix(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	const want = "locks/rw-prefix/"
	a := recipes.NewRWMutex(newSession(t, c, 5), "locks/rw-prefix")
	b := recipes.NewRWMutex(newSession(t, c, 5), "locks/rw-prefix//")
	for _, rw := range []*recipes.RWMutex{a, b} {
		if got := rw.Prefix(); got != want {
			t.Fatalf("Prefix() = %q, want %q", got, want)
		}
	}
	r, err := a.RLock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.TryLock(ctx); !errors.Is(err, recipes.ErrLocked) {
		t.Fatalf("TryLock under the other spelling while read-locked = %v, want ErrLocked", err)
	}
	if err := r.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := b.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []*recipes.Lock{r, w} {
		if !strings.HasPrefix(l.Key(), want) {
			t.Errorf("key %q is not under Prefix() %q", l.Key(), want)
		}
	}
	resp, err := c.Client().Get(ctx, a.Prefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Key) != w.Key() {
		t.Fatalf("keys under Prefix() while the writer holds: %v, want only %s", resp.Kvs, w.Key())
	}
	if err := w.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}
