package recipes_test

import (
	"errors"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

func TestCounterBadInput(t *testing.T) {
	if _, err := recipes.NewCounter(nil, ""); !errors.Is(err, recipes.ErrInvalidArgument) {
		t.Fatalf("NewCounter(\"\") = %v, want ErrInvalidArgument", err)
	}
	c := testserver.Start(t, testserver.WithMembers(1))
	ctx := testCtx(t, 30*time.Second)
	cli := newClient(t, c)
	if _, err := cli.Put(ctx, "notnum", "twelve"); err != nil {
		t.Fatal(err)
	}
	n, err := recipes.NewCounter(cli, "notnum")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := n.Get(ctx); !errors.Is(err, recipes.ErrNotNumber) {
		t.Errorf("Get = %v, want ErrNotNumber", err)
	}
	if _, err := n.Add(ctx, 1); !errors.Is(err, recipes.ErrNotNumber) {
		t.Errorf("Add = %v, want ErrNotNumber", err)
	}
	if _, err := n.CompareAndSwap(ctx, 0, 1); !errors.Is(err, recipes.ErrNotNumber) {
		t.Errorf("CompareAndSwap = %v, want ErrNotNumber", err)
	}
	if resp, err := cli.Get(ctx, "notnum"); err != nil || string(resp.Kvs[0].Value) != "twelve" {
		t.Fatalf("the key changed: %v, %v", resp, err)
	}

	big, _ := recipes.NewCounter(cli, "big")
	if _, err := big.Add(ctx, math.MaxInt64); err != nil {
		t.Fatal(err)
	}
	if _, err := big.Add(ctx, 1); !errors.Is(err, recipes.ErrInvalidArgument) {
		t.Fatalf("overflowing Add = %v, want ErrInvalidArgument", err)
	}
	if v, _, err := big.Get(ctx); err != nil || v != math.MaxInt64 {
		t.Fatalf("after the refused Add: %d, %v", v, err)
	}
}

func TestCounterAddGetCompareAndSwap(t *testing.T) {
	c := testserver.Start(t, testserver.WithMembers(3))
	ctx := testCtx(t, time.Minute)
	a, _ := recipes.NewCounter(newClient(t, c), "hits")
	b, _ := recipes.NewCounter(newClient(t, c), "hits")
	if a.Key() != "hits" {
		t.Fatalf("Key = %q", a.Key())
	}
	if v, rev, err := a.Get(ctx); err != nil || v != 0 || rev == 0 {
		t.Fatalf("Get of a missing key = %d at %d, %v; want 0", v, rev, err)
	}
	if v, err := a.Add(ctx, 5); err != nil || v != 5 {
		t.Fatalf("Add(5) = %d, %v", v, err)
	}
	// b remembers nothing, a remembers 5: both see each other's writes.
	if v, err := b.Add(ctx, -2); err != nil || v != 3 {
		t.Fatalf("b.Add(-2) = %d, %v; want 3", v, err)
	}
	if v, err := a.Add(ctx, 10); err != nil || v != 13 {
		t.Fatalf("a.Add(10) after b's Add = %d, %v; want 13", v, err)
	}
	// a's remembered state (13) is current; b's (3) is stale: its CAS
	// from 13 must still succeed, and a's CAS from 13 must then fail.
	if ok, err := b.CompareAndSwap(ctx, 13, 100); err != nil || !ok {
		t.Fatalf("b.CompareAndSwap(13, 100) = %v, %v", ok, err)
	}
	if ok, err := a.CompareAndSwap(ctx, 13, 7); err != nil || ok {
		t.Fatalf("a.CompareAndSwap(13, 7) after b's swap = %v, %v; want false", ok, err)
	}
	if v, _, err := a.Get(ctx); err != nil || v != 100 {
		t.Fatalf("Get = %d, %v; want 100", v, err)
	}

	// 8 clients add concurrently: no update is lost.
	const clients, each = 8, 25
	var wg sync.WaitGroup
	for range clients {
		cn, _ := recipes.NewCounter(newClient(t, c), "hits")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				if _, err := cn.Add(ctx, 1); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if v, _, err := a.Get(ctx); err != nil || v != 100+clients*each {
		t.Fatalf("after %d concurrent Adds: %d, %v; want %d", clients*each, v, err, 100+clients*each)
	}
}
