package recipes_test

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
)

// Enqueue reports the item's key and create revision, as etcd has them.
func TestQueueEnqueueReturnsItem(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	cli := newClient(t, c)
	q := recipes.NewQueue(cli, "items")
	it, err := q.Enqueue(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if it.Duplicate {
		t.Fatal("first Enqueue reported a duplicate")
	}
	resp, err := cli.Get(ctx, it.Key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "a" || resp.Kvs[0].CreateRevision != it.Revision {
		t.Fatalf("Get(%q) = %v, want value a created at %d", it.Key, resp.Kvs, it.Revision)
	}
	pit, err := recipes.NewPriorityQueue(cli, "pitems").Enqueue(ctx, "p", 3)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := cli.Get(ctx, pit.Key); err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].CreateRevision != pit.Revision {
		t.Fatalf("priority item %+v: Get = %v, %v", pit, resp, err)
	}
	s := newSession(t, c, 10)
	cl, err := recipes.NewConsumer(s, "items").Claim(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Key() != it.Key {
		t.Fatalf("Claim.Key = %q, want the enqueued item's %q", cl.Key(), it.Key)
	}
}

// An Enqueue WithID adds its item once however often it is sent within
// the dedupe window; other ids are independent.
func TestQueueEnqueueWithID(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	cli := newClient(t, c)
	q := recipes.NewQueue(cli, "ids")
	first, err := q.Enqueue(ctx, "v1", recipes.WithID("order-7"))
	if err != nil {
		t.Fatal(err)
	}
	// A retry from another producer (another client, another Queue value).
	again, err := recipes.NewQueue(newClient(t, c), "ids").Enqueue(ctx, "v1", recipes.WithID("order-7"))
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.Key != first.Key || again.Revision != first.Revision {
		t.Fatalf("retry = %+v, want a duplicate of %+v", again, first)
	}
	if _, err := q.Enqueue(ctx, "v2", recipes.WithID("order-8")); err != nil {
		t.Fatal(err)
	}
	if n, err := q.Len(ctx); err != nil || n != 2 {
		t.Fatalf("Len = %d, %v; want 2", n, err)
	}
	// Consumed, the id is still remembered within the window.
	if v, err := q.Dequeue(ctx); err != nil || v != "v1" {
		t.Fatalf("Dequeue = %q, %v", v, err)
	}
	late, err := q.Enqueue(ctx, "v1", recipes.WithID("order-7"))
	if err != nil || !late.Duplicate {
		t.Fatalf("retry after the dequeue = %+v, %v; want a duplicate", late, err)
	}
	if n, err := q.Len(ctx); err != nil || n != 1 {
		t.Fatalf("Len = %d, %v; want 1", n, err)
	}
	if _, err := q.Enqueue(ctx, "x", recipes.WithID("")); !errors.Is(err, recipes.ErrInvalidArgument) {
		t.Fatalf("Enqueue WithID(\"\") = %v, want ErrInvalidArgument", err)
	}
	// The ids' lease revoked behind the queue's back (the ids are gone):
	// the next Enqueue WithID binds to a new lease and adds its item.
	resp, err := cli.Get(ctx, "ids/ids/order-8")
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Lease == 0 {
		t.Fatalf("id key: %v, %v; want one key bound to a lease", resp, err)
	}
	if _, err := cli.Revoke(ctx, clientv3.LeaseID(resp.Kvs[0].Lease)); err != nil {
		t.Fatal(err)
	}
	fresh, err := q.Enqueue(ctx, "v3", recipes.WithID("order-9"))
	if err != nil || fresh.Duplicate {
		t.Fatalf("Enqueue after the revoke = %+v, %v", fresh, err)
	}
	dup, err := q.Enqueue(ctx, "v3", recipes.WithID("order-9"))
	if err != nil || !dup.Duplicate || dup.Key != fresh.Key {
		t.Fatalf("retry after the revoke = %+v, %v; want a duplicate of %+v", dup, err, fresh)
	}
}

// The dedupe window ends: an id is forgotten after at most two windows.
func TestQueueEnqueueWithIDWindowEnds(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 60*time.Second)
	q := recipes.NewQueue(newClient(t, c), "window", recipes.WithDedupeWindow(time.Second))
	if _, err := q.Enqueue(ctx, "a", recipes.WithID("k")); err != nil {
		t.Fatal(err)
	}
	for {
		it, err := q.Enqueue(ctx, "a", recipes.WithID("k"))
		if err != nil {
			t.Fatal(err)
		}
		if !it.Duplicate {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the id was never forgotten")
		case <-time.After(200 * time.Millisecond):
		}
	}
	if n, err := q.Len(context.Background()); err != nil || n != 2 {
		t.Fatalf("Len = %d, %v; want 2", n, err)
	}
}
