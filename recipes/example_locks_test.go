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
)

// Readers share an RWMutex; a writer waits until every reader left, and
// readers that come after a waiting writer queue behind it.
func ExampleRWMutex() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx := context.Background()

	newRW := func() *recipes.RWMutex {
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
		if err != nil {
			log.Fatal(err)
		}
		return recipes.NewRWMutex(s, "/locks/config")
	}
	r1, err := newRW().RLock(ctx)
	if err != nil {
		log.Fatal(err)
	}
	r2, err := newRW().RLock(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("two readers hold it")

	writer := newRW()
	_, err = writer.TryLock(ctx)
	fmt.Println("writer refused while reading:", errors.Is(err, recipes.ErrLocked))

	for _, r := range []*recipes.Lock{r1, r2} {
		if err := r.Unlock(ctx); err != nil {
			log.Fatal(err)
		}
	}
	w, err := writer.Lock(ctx)
	if err != nil {
		log.Fatal(err)
	}
	// The write side fences like a Mutex: later writers get larger tokens.
	fmt.Println("writer holds it, token above the readers':", w.Token() > r2.Token())
	if err := w.Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// two readers hold it
	// writer refused while reading: true
	// writer holds it, token above the readers': true
}

// A Semaphore lets n holders in at once; each holder has its own Lock,
// with a token, a Guard and a Done channel.
func ExampleSemaphore() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx := context.Background()

	newSem := func() *recipes.Semaphore {
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
		if err != nil {
			log.Fatal(err)
		}
		return recipes.NewSemaphore(s, "/semaphores/backups", 2)
	}
	var held []*recipes.Lock
	for range 2 {
		l, err := newSem().Acquire(ctx)
		if err != nil {
			log.Fatal(err)
		}
		held = append(held, l)
	}
	fmt.Println("holders:", len(held))

	third := newSem()
	_, err := third.TryAcquire(ctx)
	fmt.Println("third refused:", errors.Is(err, recipes.ErrLocked))

	if err := held[0].Unlock(ctx); err != nil {
		log.Fatal(err)
	}
	l, err := third.TryAcquire(ctx)
	fmt.Println("third in after a release:", err == nil)
	if err == nil {
		_ = l.Unlock(ctx)
	}
	_ = held[1].Unlock(ctx)
	// Output:
	// holders: 2
	// third refused: true
	// third in after a release: true
}

// A leader that restarts within its session TTL takes its leadership back
// with ResumeElection, from the lease ID and the token it saved, instead
// of campaigning again behind other candidates.
func ExampleResumeElection() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx := context.Background()

	// The first run of the process: win, save lease and token.
	s1, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
	if err != nil {
		log.Fatal(err)
	}
	leader, err := recipes.NewElection(s1, "/elections/billing").Campaign(ctx, "billing-1")
	if err != nil {
		log.Fatal(err)
	}
	lease, token := s1.Lease(), leader.Token()
	s1.Orphan() // the process dies: no revoke, the lease lives on for its TTL

	// The restarted process: a new client, a session on the old lease.
	cli2, err := cluster.NewClient(clientv3.Config{DialTimeout: 5 * time.Second})
	if err != nil {
		log.Fatal(err)
	}
	defer cli2.Close()
	s2, err := concurrency.NewSession(cli2, concurrency.WithLease(lease))
	if err != nil {
		log.Fatal(err)
	}
	defer s2.Close()
	resumed, err := recipes.ResumeElection(ctx, s2, "/elections/billing", token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same leadership:", resumed.Token() == token)

	// A wrong token is refused: only the key with that token is ours.
	_, err = recipes.ResumeElection(ctx, s2, "/elections/billing", token+1)
	fmt.Println("wrong token refused:", errors.Is(err, recipes.ErrLeadershipLost))
	if err := resumed.Resign(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// same leadership: true
	// wrong token refused: true
}
