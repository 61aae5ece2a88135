package recipes_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	recipe "go.etcd.io/etcd/client/v3/experimental/recipes"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
)

func qbEnqueue(t *testing.T, ctx context.Context, q *recipes.Queue, values ...string) {
	t.Helper()
	for _, v := range values {
		if _, err := q.Enqueue(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
}

func qbClaim(t *testing.T, ctx context.Context, c *recipes.Consumer, want string) *recipes.Claim {
	t.Helper()
	cl, err := c.Claim(ctx)
	if err != nil {
		t.Fatalf("Claim: %v", err)
	}
	if cl.Value() != want {
		t.Fatalf("Claim = %q, want %q", cl.Value(), want)
	}
	return cl
}

func TestClaimAckNackKeepsOrder(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	cli := newClient(t, c)
	q := recipes.NewQueue(cli, "jobs")
	qbEnqueue(t, ctx, q, "a", "b", "c")
	con := recipes.NewConsumer(sessionOn(t, cli, 10), "jobs")

	a := qbClaim(t, ctx, con, "a")
	b := qbClaim(t, ctx, con, "b") // a is claimed: skipped, not taken
	if a.Token() >= b.Token() {
		t.Fatalf("tokens %d, %d do not grow", a.Token(), b.Token())
	}
	// Nack puts a back at the head, before c.
	if err := a.Nack(ctx); err != nil {
		t.Fatal(err)
	}
	a2 := qbClaim(t, ctx, con, "a")
	if a2.Key() != a.Key() || a2.Token() <= b.Token() {
		t.Fatalf("re-claim of a: key %s token %d (first claim key %s)", a2.Key(), a2.Token(), a.Key())
	}
	// The old claim is gone: its Ack must not delete the item.
	if err := a.Ack(ctx); !errors.Is(err, recipes.ErrClaimLost) {
		t.Fatalf("Ack of a nacked claim = %v, want ErrClaimLost", err)
	}
	// A claimed item is invisible to at-most-once Dequeue too.
	if err := b.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := q.Dequeue(ctx); err != nil || v != "c" {
		t.Fatalf("Dequeue while a is claimed = %q, %v; want c", v, err)
	}
	if err := a2.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a2.Ack(ctx); !errors.Is(err, recipes.ErrClaimLost) {
		t.Fatalf("second Ack = %v, want ErrClaimLost", err)
	}
	if err := a2.Nack(ctx); !errors.Is(err, recipes.ErrClaimLost) {
		t.Fatalf("Nack after Ack = %v, want ErrClaimLost", err)
	}
	if n, err := q.Len(ctx); err != nil || n != 0 {
		t.Fatalf("Len = %d, %v; want 0", n, err)
	}
	// Nothing else is left under the prefix: no items, no claim keys.
	// (jobs/floor may be there: a queue moves its scan floor now and then,
	// from a random point of each queue value's count of takes.)
	resp, err := cli.Get(ctx, "jobs/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		if string(kv.Key) != "jobs/floor" {
			t.Errorf("key left under jobs/: %s", kv.Key)
		}
	}
}

// A Dequeue (or Claim) starts from the head its previous take read back.
// An item that was claimed in that view and nacked since is free again, at
// its old place: the next take must take it, not the next item of the
// view.
func TestDequeueAfterNackTakesTheNackedItem(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	cli := newClient(t, c)
	q := recipes.NewQueue(cli, "nacked")
	qbEnqueue(t, ctx, q, "a", "b", "c", "d")
	con := recipes.NewConsumer(newSession(t, c, 10), "nacked")
	a := qbClaim(t, ctx, con, "a")
	dq := recipes.NewQueue(newClient(t, c), "nacked")
	if v, err := dq.Dequeue(ctx); err != nil || v != "b" {
		t.Fatalf("Dequeue while a is claimed = %q, %v; want b", v, err)
	}
	if err := a.Nack(ctx); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"a", "c", "d"} {
		if v, err := dq.Dequeue(ctx); err != nil || v != w {
			t.Fatalf("Dequeue after the Nack = %q, %v; want %q", v, err, w)
		}
	}

	// The same for a Consumer: its view after claiming b holds a's claim.
	qbEnqueue(t, ctx, q, "a", "b", "c")
	a = qbClaim(t, ctx, con, "a")
	other := recipes.NewConsumer(newSession(t, c, 10), "nacked")
	b := qbClaim(t, ctx, other, "b")
	if err := a.Nack(ctx); err != nil {
		t.Fatal(err)
	}
	a2 := qbClaim(t, ctx, other, "a")
	if a2.Token() <= b.Token() {
		t.Fatalf("re-claim of a: token %d after b's %d", a2.Token(), b.Token())
	}
	for _, cl := range []*recipes.Claim{b, a2, qbClaim(t, ctx, other, "c")} {
		if err := cl.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// The bug in etcd's recipe.Queue: Dequeue deletes the item before the
// consumer has processed it, so a consumer that crashes in between loses
// it. With Claim the item comes back when the consumer's session ends.
func TestClaimConsumerCrashLosesNothing(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	q := recipes.NewQueue(newClient(t, c), "crash")
	qbEnqueue(t, ctx, q, "job-1", "job-2")

	// etcd's recipe: dequeue, then "crash" before processing: job-1 is gone.
	old := recipe.NewQueue(newClient(t, c), "crash-etcd")
	for _, v := range []string{"job-1", "job-2"} {
		if err := old.Enqueue(v); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := old.Dequeue(); err != nil || v != "job-1" {
		t.Fatalf("etcd Dequeue = %q, %v", v, err)
	}
	if v, err := old.Dequeue(); err != nil || v != "job-2" {
		t.Fatalf("after the crash etcd's queue hands out %q, %v: job-1 is lost", v, err)
	}

	// recipes: the crashing consumer's claim dies with its client. Until
	// then job-1 is in flight and the next consumer gets job-2; then it
	// gets job-1, from its original place in the queue.
	crashCli := newClient(t, c)
	crashSession := sessionOn(t, crashCli, 1)
	crashed := recipes.NewConsumer(crashSession, "crash")
	cl := qbClaim(t, ctx, crashed, "job-1")
	_ = crashCli.Close() // no Nack, no revoke: the process is gone

	next := recipes.NewConsumer(newSession(t, c, 10), "crash")
	job2 := qbClaim(t, ctx, next, "job-2")
	start := time.Now()
	again := qbClaim(t, ctx, next, "job-1")
	t.Logf("job-1 redelivered %v after the crash (session TTL 1s)", time.Since(start))
	if again.Key() != cl.Key() || again.Token() <= cl.Token() {
		t.Fatalf("redelivery: key %s token %d, first claim key %s token %d", again.Key(), again.Token(), cl.Key(), cl.Token())
	}
	for _, cl := range []*recipes.Claim{again, job2} {
		if err := cl.Ack(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := q.Len(ctx); err != nil || n != 0 {
		t.Fatalf("Len = %d, %v; want 0", n, err)
	}
}

// A consumer that was paused past its TTL comes back after its item went to
// someone else: its Ack and its guarded writes fail, so the item is acked
// exactly once.
func TestClaimStaleAckFenced(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	cli := newClient(t, c)
	q := recipes.NewQueue(cli, "stale")
	qbEnqueue(t, ctx, q, "x")

	slowSession := newSession(t, c, 10)
	slow := recipes.NewConsumer(slowSession, "stale")
	cl := qbClaim(t, ctx, slow, "x")
	// Its lease is revoked (the effect of a pause past the TTL).
	if _, err := cli.Revoke(ctx, slowSession.Lease()); err != nil {
		t.Fatal(err)
	}
	fast := recipes.NewConsumer(sessionOn(t, cli, 10), "stale")
	cl2 := qbClaim(t, ctx, fast, "x")

	resp, err := cli.Txn(ctx).If(cl.Guard()).Then(clientv3.OpPut("stale-result", "slow")).Commit()
	if err != nil || resp.Succeeded {
		t.Fatalf("write guarded by the lost claim: succeeded=%v, %v", resp != nil && resp.Succeeded, err)
	}
	resp, err = cli.Txn(ctx).If(cl2.Guard()).Then(clientv3.OpPut("stale-result", "fast")).Commit()
	if err != nil || !resp.Succeeded {
		t.Fatalf("write guarded by the live claim failed: %v", err)
	}
	if err := cl.Ack(ctx); !errors.Is(err, recipes.ErrClaimLost) {
		t.Fatalf("stale Ack = %v, want ErrClaimLost", err)
	}
	if err := cl2.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	// The slow consumer's session is over: it claims nothing more.
	qbEnqueue(t, ctx, q, "y")
	if _, err := slow.Claim(ctx); !errors.Is(err, recipes.ErrSessionExpired) {
		t.Fatalf("Claim on an expired session = %v, want ErrSessionExpired", err)
	}
}

func TestClaimWaitEndsWithSession(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	cli := newClient(t, c)
	s := sessionOn(t, cli, 10)
	con := recipes.NewConsumer(s, "empty")
	done := make(chan error, 1)
	go func() {
		_, err := con.Claim(ctx)
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	if _, err := c.Client().Revoke(ctx, s.Lease()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, recipes.ErrSessionExpired) {
			t.Fatalf("Claim = %v, want ErrSessionExpired", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Claim kept waiting after its session expired")
	}

	cctx, cancel := context.WithCancel(ctx)
	con2 := recipes.NewConsumer(sessionOn(t, cli, 10), "empty")
	go func() {
		_, err := con2.Claim(cctx)
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled Claim = %v", err)
	}
}

// Claims are spread: N consumers each holding one claim take N different
// items, and every item is claimed once.
//
// The consumers run until all n items are acked, not until a Claim finds
// nothing for a while: on a busy machine a short Claim deadline ends
// consumers while items are left, and a deadline that cuts a claim
// transaction short leaves its claim held until the session ends.
func TestClaimConcurrentConsumers(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 2*time.Minute)
	cli := newClient(t, c)
	q := recipes.NewQueue(cli, "par")
	const n, consumers = 120, 4
	for i := range n {
		qbEnqueue(t, ctx, q, fmt.Sprint(i))
	}
	var (
		mu   sync.Mutex
		seen = map[string]int{}
	)
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	errc := make(chan error, consumers)
	for range consumers {
		con := recipes.NewConsumer(newSession(t, c, 10), "par")
		go func() {
			for {
				cl, err := con.Claim(cctx)
				if err != nil {
					if cctx.Err() != nil && ctx.Err() == nil {
						err = nil // all n acked
					}
					errc <- err
					return
				}
				if err := cl.Ack(ctx); err != nil {
					errc <- err
					return
				}
				mu.Lock()
				seen[cl.Value()]++
				if len(seen) == n {
					stop()
				}
				mu.Unlock()
			}
		}()
	}
	for range consumers {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	for v, k := range seen {
		if k != 1 {
			t.Errorf("%s claimed and acked %d times", v, k)
		}
	}
	if len(seen) != n {
		t.Fatalf("acked %d items, want %d", len(seen), n)
	}
}
