package recipes_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

func TestSemaphoreAdmitsAtMostN(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 60*time.Second)
	const n, clients, rounds = 3, 6, 5
	var mu sync.Mutex
	inside, peak := 0, 0
	var wg sync.WaitGroup
	for range clients {
		sem := recipes.NewSemaphore(newSession(t, c, 5), "sem/a", n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				l, err := sem.Acquire(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				inside++
				peak = max(peak, inside)
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
				mu.Lock()
				inside--
				mu.Unlock()
				if err := l.Unlock(ctx); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if peak > n {
		t.Fatalf("%d holders at once, limit %d", peak, n)
	}
	if peak < 2 {
		t.Logf("peak concurrency only %d", peak)
	}
}

func TestSemaphoreTryAcquire(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	sem := func() *recipes.Semaphore { return recipes.NewSemaphore(newSession(t, c, 5), "sem/try", 2) }
	a, err := sem().TryAcquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sem().TryAcquire(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sem().TryAcquire(ctx); !errors.Is(err, recipes.ErrLocked) {
		t.Fatalf("third TryAcquire = %v, want ErrLocked", err)
	}
	waitForKeys(t, c, "sem/try/", 2)
	if err := a.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sem().TryAcquire(ctx); err != nil {
		t.Fatalf("TryAcquire after a release: %v", err)
	}
	if _, err := recipes.NewSemaphore(newSession(t, c, 5), "sem/bad", 0).Acquire(ctx); !errors.Is(err, recipes.ErrInvalidArgument) {
		t.Fatalf("n=0: %v, want ErrInvalidArgument", err)
	}
}

// Prefix is the normalized prefix under which the keys of every holder
// and waiter live; "sem/prefix" and "sem/prefix/" name the same semaphore.
func TestSemaphorePrefix(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	const want = "sem/prefix/"
	a := recipes.NewSemaphore(newSession(t, c, 5), "sem/prefix", 2)
	b := recipes.NewSemaphore(newSession(t, c, 5), "sem/prefix/", 2)
	for _, sem := range []*recipes.Semaphore{a, b} {
		if got := sem.Prefix(); got != want {
			t.Fatalf("Prefix() = %q, want %q", got, want)
		}
	}
	la, err := a.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	lb, err := b.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := recipes.NewSemaphore(newSession(t, c, 5), "sem/prefix", 2).TryAcquire(ctx); !errors.Is(err, recipes.ErrLocked) {
		t.Fatalf("third TryAcquire across both spellings = %v, want ErrLocked", err)
	}
	resp, err := c.Client().Get(ctx, a.Prefix(), clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = true
	}
	if len(got) != 2 || !got[la.Key()] || !got[lb.Key()] {
		t.Fatalf("keys under Prefix(): %v, want the holders' %s and %s", resp.Kvs, la.Key(), lb.Key())
	}
	for _, l := range []*recipes.Lock{la, lb} {
		if err := l.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
	}
}
