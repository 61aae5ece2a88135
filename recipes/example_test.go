package recipes_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// startExampleCluster starts a throw-away 3-member cluster for an example.
func startExampleCluster() (*testserver.Cluster, *clientv3.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := testserver.New(ctx)
	if err != nil {
		log.Fatal(err)
	}
	return c, c.Client()
}

// A Mutex guards a read-modify-write of a key: the write is fenced with
// Guard(), so it cannot land once the lock is lost, however long the
// holder was paused.
func ExampleMutex() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx := context.Background()

	session, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	if err != nil {
		log.Fatal(err)
	}
	defer session.Close()

	lock, err := recipes.NewMutex(session, "/locks/counter").Lock(ctx)
	if err != nil {
		log.Fatal(err)
	}
	// Done closes as soon as the lock is lost (lease expired or revoked,
	// key deleted): check it between steps of long work. It is a notice;
	// Guard() below is what makes the write safe.
	select {
	case <-lock.Done():
		log.Fatal(lock.Err())
	default:
	}

	resp, err := cli.Txn(ctx).
		If(lock.Guard()).
		Then(clientv3.OpPut("/counter", "1")).
		Commit()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("write accepted while holding the lock:", resp.Succeeded)

	if err := lock.Unlock(ctx); err != nil {
		log.Fatal(err)
	}

	// The same guarded write after the lock is gone is refused by etcd.
	resp, err = cli.Txn(ctx).
		If(lock.Guard()).
		Then(clientv3.OpPut("/counter", "2")).
		Commit()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("write accepted after unlock:", resp.Succeeded)
	fmt.Println("unlock again:", errors.Is(lock.Unlock(ctx), recipes.ErrNotHeld))
	// Output:
	// write accepted while holding the lock: true
	// write accepted after unlock: false
	// unlock again: true
}

// Tokens grow from one holder to the next, so a storage system outside
// etcd can reject a stale holder by remembering the highest token it saw.
func ExampleLock_Token() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx := context.Background()

	var last int64
	for range 3 {
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
		if err != nil {
			log.Fatal(err)
		}
		l, err := recipes.NewMutex(s, "/locks/tokens").Lock(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("token grew:", l.Token() > last)
		last = l.Token()
		if err := l.Unlock(ctx); err != nil {
			log.Fatal(err)
		}
		_ = s.Close()
	}
	// Output:
	// token grew: true
	// token grew: true
	// token grew: true
}

// An Election with an observer: the observer sees every leader, and "no
// leader" in between, in order.
func ExampleElection() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	newSession := func() *concurrency.Session {
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
		if err != nil {
			log.Fatal(err)
		}
		return s
	}
	observer := recipes.NewElection(newSession(), "/elections/scheduler").Observe(ctx)
	show := func() {
		o := <-observer
		if o.Leader == nil {
			fmt.Println("observed: no leader")
			return
		}
		fmt.Println("observed:", o.Leader.Value)
	}
	show()

	for _, name := range []string{"alpha", "beta"} {
		e := recipes.NewElection(newSession(), "/elections/scheduler")
		leader, err := e.Campaign(ctx, name)
		if err != nil {
			log.Fatal(err)
		}
		show()
		// Leader writes are fenced like lock writes.
		if _, err := cli.Txn(ctx).If(leader.Guard()).Then(clientv3.OpPut("/scheduler/owner", name)).Commit(); err != nil {
			log.Fatal(err)
		}
		if err := leader.Proclaim(ctx, name+" (busy)"); err != nil {
			log.Fatal(err)
		}
		show()
		if err := leader.Resign(ctx); err != nil {
			log.Fatal(err)
		}
		show()
	}
	// Output:
	// observed: no leader
	// observed: alpha
	// observed: alpha (busy)
	// observed: no leader
	// observed: beta
	// observed: beta (busy)
	// observed: no leader
}
