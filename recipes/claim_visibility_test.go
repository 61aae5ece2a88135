package recipes_test

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
)

// A claim made with a visibility timeout expires although its consumer's
// session lives on: the item goes to another consumer, and the stuck
// consumer's Guard, Ack and Extend fail.
func TestConsumerVisibilityTimeout(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 60*time.Second)
	cli := newClient(t, c)
	q := recipes.NewQueue(cli, "vis")
	if _, err := q.Enqueue(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	stuck := recipes.NewConsumer(newSession(t, c, 30), "vis", recipes.WithVisibilityTimeout(2*time.Second))
	cl, err := stuck.Claim(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hctx := cl.Context()
	// The consumer is alive (its 30 s session is kept alive) but does
	// nothing: the claim expires with its own lease.
	select {
	case <-cl.Done():
	case <-ctx.Done():
		t.Fatal("the claim did not expire")
	}
	if !errors.Is(cl.Err(), recipes.ErrClaimLost) {
		t.Fatalf("Err = %v, want ErrClaimLost", cl.Err())
	}
	<-hctx.Done()
	if cause := context.Cause(hctx); !errors.Is(cause, recipes.ErrClaimLost) && !errors.Is(cause, recipes.ErrLeaseDeadline) {
		t.Fatalf("Context cause = %v", cause)
	}
	other := recipes.NewConsumer(newSession(t, c, 30), "vis", recipes.WithVisibilityTimeout(5*time.Second))
	cl2, err := other.Claim(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cl2.Key() != cl.Key() || cl2.Token() <= cl.Token() {
		t.Fatalf("second claim %s@%d, want %s above %d", cl2.Key(), cl2.Token(), cl.Key(), cl.Token())
	}
	resp, err := cli.Txn(ctx).If(cl.Guard()).Then(clientv3.OpPut("vis-result", "stale")).Commit()
	if err != nil || resp.Succeeded {
		t.Fatalf("write guarded by the expired claim: %v, %v; want refused", resp, err)
	}
	if err := cl.Extend(ctx); !errors.Is(err, recipes.ErrClaimLost) {
		t.Fatalf("Extend of the expired claim = %v, want ErrClaimLost", err)
	}
	if err := cl.Ack(ctx); !errors.Is(err, recipes.ErrClaimLost) {
		t.Fatalf("Ack of the expired claim = %v, want ErrClaimLost", err)
	}
	if err := cl2.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := q.Len(ctx); err != nil || n != 0 {
		t.Fatalf("Len = %d, %v", n, err)
	}
}

// Extend keeps a claim past its timeout for as long as it is called.
func TestClaimExtend(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 60*time.Second)
	cli := newClient(t, c)
	q := recipes.NewQueue(cli, "extend")
	if _, err := q.Enqueue(ctx, "job"); err != nil {
		t.Fatal(err)
	}
	con := recipes.NewConsumer(newSession(t, c, 30), "extend", recipes.WithVisibilityTimeout(3*time.Second))
	cl, err := con.Claim(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Extend for three timeouts, every half second.
	for end := time.Now().Add(9 * time.Second); time.Now().Before(end); time.Sleep(500 * time.Millisecond) {
		if err := cl.Extend(ctx); err != nil {
			t.Fatalf("Extend: %v", err)
		}
	}
	if err := cl.Extend(ctx); err != nil {
		t.Fatalf("Extend: %v", err)
	}
	if cl.Err() != nil || cl.Context().Err() != nil {
		t.Fatalf("extended claim: Err %v, Context %v", cl.Err(), context.Cause(cl.Context()))
	}
	resp, err := cli.Txn(ctx).If(cl.Guard()).Then(clientv3.OpPut("extend-result", "done")).Commit()
	if err != nil || !resp.Succeeded {
		t.Fatalf("guarded write of the extended claim: %v, %v", resp, err)
	}
	if err := cl.Ack(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cl.Extend(ctx); !errors.Is(err, recipes.ErrClaimLost) {
		t.Fatalf("Extend after Ack = %v, want ErrClaimLost", err)
	}
}

func TestConsumerVisibilityTimeoutTooShort(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	con := recipes.NewConsumer(newSession(t, c, 10), "vis-bad", recipes.WithVisibilityTimeout(500*time.Millisecond))
	_, err := con.Claim(ctx)
	if !errors.Is(err, recipes.ErrVisibilityTimeout) || !errors.Is(err, recipes.ErrInvalidArgument) {
		t.Fatalf("Claim = %v, want ErrVisibilityTimeout", err)
	}
}
