package recipes_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
)

// A batch is one revision, in slice order, with nothing between its
// items; DequeueN and ClaimN hand items out in queue order.
func TestQueueBatches(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 60*time.Second)
	q := recipes.NewQueue(newClient(t, c), "batch")
	if _, err := q.Enqueue(ctx, "before"); err != nil {
		t.Fatal(err)
	}
	var values []string
	for i := range 40 {
		values = append(values, fmt.Sprint(i))
	}
	items, err := q.EnqueueAll(ctx, values)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != len(values) {
		t.Fatalf("EnqueueAll returned %d items, want %d", len(items), len(values))
	}
	for _, it := range items {
		if it.Revision != items[0].Revision {
			t.Fatalf("batch items at revisions %d and %d, want one", items[0].Revision, it.Revision)
		}
	}
	if _, err := q.Enqueue(ctx, "after"); err != nil {
		t.Fatal(err)
	}
	want := append(append([]string{"before"}, values...), "after")
	var got []string
	d := recipes.NewQueue(newClient(t, c), "batch")
	for len(got) < 20 {
		vs, err := d.DequeueN(ctx, 7)
		if err != nil {
			t.Fatal(err)
		}
		if len(vs) < 1 || len(vs) > 7 {
			t.Fatalf("DequeueN(7) returned %d items", len(vs))
		}
		got = append(got, vs...)
	}
	con := recipes.NewConsumer(newSession(t, c, 10), "batch")
	for len(got) < len(want) {
		cls, err := con.ClaimN(ctx, 16)
		if err != nil {
			t.Fatal(err)
		}
		for _, cl := range cls {
			got = append(got, cl.Value())
			if cl.Token() != cls[0].Token() {
				t.Fatalf("claims of one batch at tokens %d and %d", cls[0].Token(), cl.Token())
			}
		}
		// Nack the last one of the first batch: it comes back first.
		if len(got) == 20+len(cls) && len(cls) > 1 {
			last := cls[len(cls)-1]
			if err := last.Nack(ctx); err != nil {
				t.Fatal(err)
			}
			got = got[:len(got)-1]
			cls = cls[:len(cls)-1]
		}
		for _, cl := range cls {
			if err := cl.Ack(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("order:\n got %v\nwant %v", got, want)
	}
	if n, err := q.Len(ctx); err != nil || n != 0 {
		t.Fatalf("Len = %d, %v", n, err)
	}
}

func TestQueueBatchSize(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	q := recipes.NewQueue(newClient(t, c), "batch-size", recipes.WithMaxTxnOps(32))
	con := recipes.NewConsumer(newSession(t, c, 10), "batch-size")
	big := make([]string, 123)
	for name, err := range map[string]error{
		"EnqueueAll(none)": func() error { _, err := q.EnqueueAll(ctx, nil); return err }(),
		"EnqueueAll(123)": func() error {
			_, err := recipes.NewQueue(newClient(t, c), "batch-size").EnqueueAll(ctx, big)
			return err
		}(),
		"EnqueueAll(27)": func() error { _, err := q.EnqueueAll(ctx, big[:27]); return err }(),
		"DequeueN(0)":    func() error { _, err := q.DequeueN(ctx, 0); return err }(),
		"DequeueN(27)":   func() error { _, err := q.DequeueN(ctx, 27); return err }(),
		"ClaimN(0)":      func() error { _, err := con.ClaimN(ctx, 0); return err }(),
		"ClaimN(123)":    func() error { _, err := con.ClaimN(ctx, 123); return err }(),
	} {
		if !errors.Is(err, recipes.ErrBatchSize) || !errors.Is(err, recipes.ErrInvalidArgument) {
			t.Errorf("%s = %v, want ErrBatchSize", name, err)
		}
	}
	if _, err := q.EnqueueAll(ctx, []string{"a"}, recipes.WithID("x")); !errors.Is(err, recipes.ErrInvalidArgument) {
		t.Errorf("EnqueueAll WithID = %v, want ErrInvalidArgument", err)
	}
	if q.MaxBatch() != 26 || con.MaxBatch() != 122 {
		t.Fatalf("MaxBatch = %d and %d, want 26 and 122", q.MaxBatch(), con.MaxBatch())
	}
	// The largest batch etcd's default max-txn-ops allows goes through.
	full := make([]string, 122)
	for i := range full {
		full[i] = fmt.Sprint(i)
	}
	q128 := recipes.NewQueue(newClient(t, c), "batch-full")
	if _, err := q128.EnqueueAll(ctx, full); err != nil {
		t.Fatalf("EnqueueAll(122): %v", err)
	}
	n := 0
	for n < 61 {
		vs, err := q128.DequeueN(ctx, 61)
		if err != nil {
			t.Fatalf("DequeueN(122): %v", err)
		}
		n += len(vs)
	}
	fcon := recipes.NewConsumer(newSession(t, c, 10), "batch-full")
	for n < 122 {
		cls, err := fcon.ClaimN(ctx, 122)
		if err != nil {
			t.Fatalf("ClaimN(122): %v", err)
		}
		n += len(cls)
	}
}
