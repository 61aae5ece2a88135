package recipes_test

import (
	"errors"
	"sync"
	"testing"
	"time"

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
