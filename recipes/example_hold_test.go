package recipes_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
)

// A holder that does work outside etcd runs it under the lock's Context:
// it ends when the lock is lost, released, or the session's local deadline
// passes, whichever comes first, and context.Cause tells which.
func ExampleSession() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx := context.Background()

	s, err := recipes.NewSession(cli, recipes.WithSessionTTL(10), recipes.WithSafetyMargin(3*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	l, err := recipes.NewMutex(s.Concurrency(), "/locks/migration").Lock(ctx)
	if err != nil {
		log.Fatal(err)
	}
	work := l.Context()
	// The context ends 7s after the send time of the last acknowledged
	// keep-alive at the latest (s.Deadline()).
	fmt.Println("TTL", s.TTL(), "margin", s.Margin())
	// ... run the migration with work ...
	if err := l.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	<-work.Done()
	fmt.Println("stopped because released:", errors.Is(context.Cause(work), recipes.ErrNotHeld))
	// Output:
	// TTL 10s margin 3s
	// stopped because released: true
}

// Lead runs a function while this process leads, and hands over at once
// when its context ends.
func ExampleLead() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx, cancel := context.WithCancel(context.Background())

	s, err := recipes.NewSession(cli, recipes.WithSessionTTL(10))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	e := recipes.NewElection(s.Concurrency(), "/elections/scheduler")
	err = recipes.Lead(ctx, e, "host-a", func(lctx context.Context, l *recipes.Leadership) error {
		// Fence the leader's writes with l.Guard(); stop when lctx ends.
		fmt.Println("leading with a token:", l.Token() > 0)
		cancel() // e.g. SIGTERM during a rolling deploy
		<-lctx.Done()
		return nil
	})
	fmt.Println("Lead returned:", err)
	_, err = e.Leader(context.Background())
	fmt.Println("resigned at once:", errors.Is(err, recipes.ErrNoLeader))
	// Output:
	// leading with a token: true
	// Lead returned: <nil>
	// resigned at once: true
}

// A FencedTxn is applied at most once, however often it is sent.
func ExampleFencedTxn() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx := context.Background()

	s, err := recipes.NewSession(cli, recipes.WithSessionTTL(10))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	l, err := recipes.NewMutex(s.Concurrency(), "/locks/orders").Lock(ctx)
	if err != nil {
		log.Fatal(err)
	}
	w := recipes.FencedTxn(s.Concurrency(), "/markers").If(l.Guard()).Then(clientv3.OpPut("/orders/next", "43"))
	for range 2 { // the second Commit stands for a resend
		out, _, err := w.Commit(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(out)
	}
	if err := l.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	out, _, _ := recipes.FencedTxn(s.Concurrency(), "/markers").If(l.Guard()).Then(clientv3.OpPut("/orders/next", "44")).Commit(ctx)
	fmt.Println(out)
	// Output:
	// applied
	// applied before
	// not applied
}

// LockAll takes several locks without deadlock and returns one grant.
func ExampleLockAll() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx := context.Background()

	s, err := recipes.NewSession(cli, recipes.WithSessionTTL(10))
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	ml, err := recipes.LockAll(ctx,
		recipes.NewMutex(s.Concurrency(), "/locks/accounts/2"),
		recipes.NewMutex(s.Concurrency(), "/locks/accounts/1"))
	if err != nil {
		log.Fatal(err)
	}
	for _, l := range ml.Locks() {
		fmt.Println(l.Key()[:len("/locks/accounts/1")])
	}
	resp, err := cli.Txn(ctx).If(ml.Guard()...).Then(clientv3.OpPut("/accounts/transfer", "1->2")).Commit()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("transfer written under both locks:", resp.Succeeded)
	if err := ml.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// /locks/accounts/1
	// /locks/accounts/2
	// transfer written under both locks: true
}
