package recipes_test

import (
	"errors"
	"testing"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
)

// Delayed items are handed out only from their not-before time, ready
// items in Enqueue order meanwhile; a consumer blocked on a queue whose
// items all wait wakes when the first comes due.
func TestQueueDelay(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 60*time.Second)
	q := recipes.NewQueue(newClient(t, c), "delay")
	late, err := q.Enqueue(ctx, "late", recipes.WithDelay(1500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if late.NotBefore.IsZero() {
		t.Fatal("Item.NotBefore not set for a delayed item")
	}
	if _, err := q.Enqueue(ctx, "now"); err != nil {
		t.Fatal(err)
	}
	later, err := q.Enqueue(ctx, "later", recipes.WithNotBefore(late.NotBefore.Add(500*time.Millisecond)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue(ctx, "past", recipes.WithNotBefore(time.Now().Add(-time.Hour))); err != nil {
		t.Fatal(err)
	}
	// Two consumers on other clients: a Dequeue and a Claim.
	d := recipes.NewQueue(newClient(t, c), "delay")
	for _, want := range []string{"now", "past"} {
		if v, err := d.Dequeue(ctx); err != nil || v != want {
			t.Fatalf("Dequeue = %q, %v; want %q", v, err, want)
		}
	}
	v, err := d.Dequeue(ctx)
	if err != nil || v != "late" {
		t.Fatalf("Dequeue = %q, %v; want late", v, err)
	}
	if now := time.Now(); now.Before(late.NotBefore) {
		t.Fatalf("late handed out at %v, before its time %v", now, late.NotBefore)
	}
	cl, err := recipes.NewConsumer(newSession(t, c, 10), "delay").Claim(ctx)
	if err != nil || cl.Value() != "later" {
		t.Fatalf("Claim = %v, %v; want later", cl, err)
	}
	if now := time.Now(); now.Before(later.NotBefore) {
		t.Fatalf("later claimed at %v, before its time %v", now, later.NotBefore)
	}
}

// FIFO holds among ready items: two items due at different times come out
// in Enqueue order once both are due.
func TestQueueDelayKeepsOrderAmongReady(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 60*time.Second)
	q := recipes.NewQueue(newClient(t, c), "delay-order")
	first, err := q.Enqueue(ctx, "first", recipes.WithDelay(800*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue(ctx, "second", recipes.WithDelay(10*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	// Wait until both are due (condition: the later time passed).
	for time.Now().Before(first.NotBefore) {
		time.Sleep(time.Until(first.NotBefore))
	}
	for _, want := range []string{"first", "second"} {
		if v, err := q.Dequeue(ctx); err != nil || v != want {
			t.Fatalf("Dequeue = %q, %v; want %q", v, err, want)
		}
	}
	pq := recipes.NewPriorityQueue(newClient(t, c), "delay-prio")
	if _, err := pq.Enqueue(ctx, "urgent-later", 0, recipes.WithDelay(time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := pq.Enqueue(ctx, "lazy-now", 9); err != nil {
		t.Fatal(err)
	}
	if v, err := pq.Dequeue(ctx); err != nil || v != "lazy-now" {
		t.Fatalf("priority Dequeue = %q, %v; want lazy-now (the urgent item is not ready)", v, err)
	}
	if v, err := pq.Dequeue(ctx); err != nil || v != "urgent-later" {
		t.Fatalf("priority Dequeue = %q, %v; want urgent-later", v, err)
	}
}

func TestQueueDelayInvalid(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	q := recipes.NewQueue(newClient(t, c), "delay-bad")
	for name, opt := range map[string]recipes.EnqueueOption{
		"negative":  recipes.WithDelay(-time.Second),
		"too large": recipes.WithDelay(recipes.MaxDelay + time.Second),
		"too far":   recipes.WithNotBefore(time.Now().Add(recipes.MaxDelay + time.Hour)),
	} {
		_, err := q.Enqueue(ctx, "x", opt)
		if !errors.Is(err, recipes.ErrInvalidDelay) || !errors.Is(err, recipes.ErrInvalidArgument) {
			t.Errorf("%s: Enqueue = %v, want ErrInvalidDelay", name, err)
		}
	}
	if n, err := q.Len(ctx); err != nil || n != 0 {
		t.Fatalf("Len = %d, %v; want 0 (nothing added)", n, err)
	}
}
