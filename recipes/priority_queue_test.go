package recipes_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	recipe "go.etcd.io/etcd/client/v3/experimental/recipes"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
)

func TestPriorityQueueOrder(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	q := recipes.NewPriorityQueue(newClient(t, c), "pq")
	in := []struct {
		v  string
		pr uint16
	}{{"low-1", 9}, {"high-1", 1}, {"mid-1", 5}, {"high-2", 1}, {"low-2", 9}, {"top", 0}, {"max", 65535}, {"mid-2", 5}}
	for _, it := range in {
		if _, err := q.Enqueue(ctx, it.v, it.pr); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"top", "high-1", "high-2", "mid-1", "mid-2", "low-1", "low-2", "max"}
	for _, w := range want {
		v, err := q.Dequeue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v != w {
			t.Fatalf("Dequeue = %q, want %q", v, w)
		}
	}
	// Consumers see the same order.
	if _, err := q.Enqueue(ctx, "later", 7); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue(ctx, "sooner", 3); err != nil {
		t.Fatal(err)
	}
	con := recipes.NewConsumer(newSession(t, c, 10), "pq")
	for _, w := range []string{"sooner", "later"} {
		cl := qbClaim(t, ctx, con, w)
		if err := cl.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// Len counts the items of every priority, claimed ones included, and
// none that was dequeued or acked.
func TestPriorityQueueLen(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	q := recipes.NewPriorityQueue(newClient(t, c), "pq-len")
	wantLen := func(want int) {
		t.Helper()
		if n, err := q.Len(ctx); err != nil || n != want {
			t.Fatalf("Len = %d, %v; want %d", n, err, want)
		}
	}
	wantLen(0)
	for _, it := range []struct {
		v  string
		pr uint16
	}{{"a", 1}, {"b", 5}, {"c", 5}, {"d", 9}} {
		if _, err := q.Enqueue(ctx, it.v, it.pr); err != nil {
			t.Fatal(err)
		}
	}
	wantLen(4)
	cl := qbClaim(t, ctx, recipes.NewConsumer(newSession(t, c, 10), "pq-len"), "a")
	wantLen(4)
	if v, err := q.Dequeue(ctx); err != nil || v != "b" {
		t.Fatalf("Dequeue = %q, %v; want b", v, err)
	}
	wantLen(3)
	if err := cl.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	wantLen(2)
}

// writesDuring records every key written anywhere in the cluster while fn
// runs, with how often each was written.
func writesDuring(t *testing.T, cli *clientv3.Client, fn func()) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	wch := cli.Watch(ctx, "\x00", clientv3.WithFromKey(), clientv3.WithCreatedNotify())
	<-wch
	fn()
	end, err := cli.Get(ctx, "\x00", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	writes := map[string]int{}
	for rev := int64(0); rev < end.Header.Revision; {
		wr, ok := <-wch
		if !ok {
			t.Fatalf("watch ended: %v", ctx.Err())
		}
		for _, ev := range wr.Events {
			writes[string(ev.Kv.Key)]++
			rev = ev.Kv.ModRevision
		}
	}
	return writes
}

// Etcd's recipe.PriorityQueue writes one bookkeeping key on every enqueue
// (a compare-and-swap that concurrent producers fail and retry). Ours
// writes only the item's own key, once.
func TestPriorityQueueNoHotKey(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 60*time.Second)
	const producers, per = 4, 25
	run := func(enqueue func(p, i int) error) func() {
		return func() {
			var wg sync.WaitGroup
			for p := range producers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range per {
						if err := enqueue(p, i); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		}
	}

	ours := make([]*recipes.PriorityQueue, producers)
	for p := range ours {
		ours[p] = recipes.NewPriorityQueue(newClient(t, c), "hot")
	}
	writes := writesDuring(t, c.Client(), run(func(p, i int) error {
		_, err := ours[p].Enqueue(ctx, fmt.Sprintf("%d/%d", p, i), uint16(i%3))
		return err
	}))
	if len(writes) != producers*per {
		t.Errorf("%d enqueues wrote %d distinct keys, want one each", producers*per, len(writes))
	}
	for k, n := range writes {
		if n != 1 || !strings.HasPrefix(k, "hot/items/") {
			t.Errorf("key %q written %d times", k, n)
		}
	}

	theirs := make([]*recipe.PriorityQueue, producers)
	for p := range theirs {
		theirs[p] = recipe.NewPriorityQueue(newClient(t, c), "hot-etcd")
	}
	writes = writesDuring(t, c.Client(), run(func(p, i int) error {
		return theirs[p].Enqueue(fmt.Sprintf("%d/%d", p, i), uint16(i%3))
	}))
	hottest, most := "", 0
	for k, n := range writes {
		if n > most {
			hottest, most = k, n
		}
	}
	t.Logf("etcd's recipe: %d enqueues wrote %d keys; %q was written %d times", producers*per, len(writes), hottest, most)
}
