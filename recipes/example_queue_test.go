package recipes_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
)

// A FIFO queue with at-most-once delivery: Dequeue removes the item as it
// hands it out, and blocks while the queue is empty.
func ExampleQueue() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx := context.Background()

	q := recipes.NewQueue(cli, "/queues/emails")
	for _, to := range []string{"ana@example.com", "bo@example.com", "cy@example.com"} {
		if _, err := q.Enqueue(ctx, to); err != nil {
			log.Fatal(err)
		}
	}
	for range 3 {
		to, err := q.Dequeue(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("send to", to)
	}
	// Output:
	// send to ana@example.com
	// send to bo@example.com
	// send to cy@example.com
}

// At-least-once processing: a claimed item stays in the queue until it is
// acked. A Nack (or the consumer's death: its session ends) makes it
// available again, in its original place. The result is written under the
// claim's Guard, so a consumer that lost its claim cannot record it.
func ExampleConsumer() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx := context.Background()

	q := recipes.NewQueue(cli, "/queues/thumbnails")
	for _, img := range []string{"a.png", "b.png"} {
		if _, err := q.Enqueue(ctx, img); err != nil {
			log.Fatal(err)
		}
	}

	session, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	if err != nil {
		log.Fatal(err)
	}
	defer session.Close()
	consumer := recipes.NewConsumer(session, "/queues/thumbnails")

	first, err := consumer.Claim(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("claimed", first.Value())
	// Not now: give it back.
	if err := first.Nack(ctx); err != nil {
		log.Fatal(err)
	}

	for range 2 {
		cl, err := consumer.Claim(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("claimed", cl.Value())
		resp, err := cli.Txn(ctx).
			If(cl.Guard()).
			Then(clientv3.OpPut("/thumbnails/"+cl.Value(), "done")).
			Commit()
		if err != nil {
			log.Fatal(err)
		}
		if !resp.Succeeded {
			fmt.Println("claim lost: result dropped, the item will be redelivered")
			continue
		}
		if err := cl.Ack(ctx); err != nil {
			log.Fatal(err)
		}
	}
	// Acking twice, or after the claim was lost, is refused.
	err = first.Ack(ctx)
	fmt.Println("stale ack refused:", errors.Is(err, recipes.ErrClaimLost))
	n, err := q.Len(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("left:", n)
	// Output:
	// claimed a.png
	// claimed a.png
	// claimed b.png
	// stale ack refused: true
	// left: 0
}

// Items come out by priority (lowest value first), FIFO within one
// priority. Every enqueue writes its own key: there is no shared counter
// key for producers to fight over.
func ExamplePriorityQueue() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx := context.Background()

	q := recipes.NewPriorityQueue(cli, "/queues/alerts")
	for _, it := range []struct {
		msg string
		pr  uint16
	}{{"disk 80%", 5}, {"node down", 0}, {"disk 90%", 5}, {"new login", 9}} {
		if _, err := q.Enqueue(ctx, it.msg, it.pr); err != nil {
			log.Fatal(err)
		}
	}
	for range 4 {
		msg, err := q.Dequeue(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(msg)
	}
	// Output:
	// node down
	// disk 80%
	// disk 90%
	// new login
}

// A Barrier holds workers back until a coordinator releases it. If the
// coordinator's session ends before Release, Wait fails with
// ErrBarrierAbandoned instead of letting the workers through.
func ExampleBarrier() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx := context.Background()

	newSession := func() *concurrency.Session {
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
		if err != nil {
			log.Fatal(err)
		}
		return s
	}
	coordinator := newSession()
	defer coordinator.Close()
	gate := recipes.NewBarrier(coordinator, "/barriers/deploy")
	if err := gate.Hold(ctx); err != nil {
		log.Fatal(err)
	}

	worker := newSession()
	defer worker.Close()
	passed := make(chan error)
	go func() { passed <- recipes.NewBarrier(worker, "/barriers/deploy").Wait(ctx) }()

	fmt.Println("migrating the schema")
	if err := gate.Release(ctx); err != nil {
		log.Fatal(err)
	}
	if err := <-passed; err != nil {
		log.Fatal(err)
	}
	fmt.Println("worker passed the barrier")

	// The holder dies: its waiters are told, and do not pass.
	dying := newSession()
	held := recipes.NewBarrier(dying, "/barriers/deploy")
	if err := held.Hold(ctx); err != nil {
		log.Fatal(err)
	}
	go func() { passed <- recipes.NewBarrier(worker, "/barriers/deploy").Wait(ctx) }()
	if _, err := cli.Revoke(ctx, dying.Lease()); err != nil { // as if its lease expired
		log.Fatal(err)
	}
	fmt.Println("abandoned:", errors.Is(<-passed, recipes.ErrBarrierAbandoned))
	// Output:
	// migrating the schema
	// worker passed the barrier
	// abandoned: true
}

// A DoubleBarrier starts three workers together and lets them go on only
// when all three are done.
func ExampleDoubleBarrier() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx := context.Background()

	var mu sync.Mutex
	var events []string
	note := func(e string) {
		mu.Lock()
		events = append(events, e)
		mu.Unlock()
	}
	var wg sync.WaitGroup
	for _, name := range []string{"a", "b", "c"} {
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
		if err != nil {
			log.Fatal(err)
		}
		defer s.Close()
		b := recipes.NewDoubleBarrier(s, "/barriers/batch", 3)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Enter(ctx); err != nil {
				log.Fatal(err)
			}
			note("started " + name)
			if err := b.Leave(ctx); err != nil {
				log.Fatal(err)
			}
			note("finished " + name)
		}()
	}
	wg.Wait()
	startsFirst := true
	for i, e := range events {
		if (i < 3) != strings.HasPrefix(e, "started") {
			startsFirst = false
		}
	}
	fmt.Println("all started before any finished:", startsFirst)
	sort.Strings(events)
	fmt.Println(strings.Join(events, ", "))
	// Output:
	// all started before any finished: true
	// finished a, finished b, finished c, started a, started b, started c
}

// A producer that cannot tell whether its Enqueue went through sends it
// again with the same ID: the item is added once, and every attempt
// returns its key and revision.
func ExampleWithID() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx := context.Background()

	q := recipes.NewQueue(cli, "/queues/orders")
	first, err := q.Enqueue(ctx, "order 1017", recipes.WithID("order-1017"))
	if err != nil {
		log.Fatal(err)
	}
	// Say the answer to the first attempt was lost: send it again.
	retry, err := q.Enqueue(ctx, "order 1017", recipes.WithID("order-1017"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("duplicate:", retry.Duplicate, "same item:", retry.Key == first.Key && retry.Revision == first.Revision)
	n, err := q.Len(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("items:", n)
	// Output:
	// duplicate: true same item: true
	// items: 1
}

// A delayed item waits in its place in the queue until its time: ready
// items behind it go out first, and a Dequeue blocked on it wakes when it
// comes due.
func ExampleWithDelay() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx := context.Background()

	q := recipes.NewQueue(cli, "/queues/reminders")
	if _, err := q.Enqueue(ctx, "remind in a moment", recipes.WithDelay(300*time.Millisecond)); err != nil {
		log.Fatal(err)
	}
	if _, err := q.Enqueue(ctx, "send now"); err != nil {
		log.Fatal(err)
	}
	for range 2 {
		v, err := q.Dequeue(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(v)
	}
	_, err := q.Enqueue(ctx, "x", recipes.WithDelay(-time.Second))
	fmt.Println("negative delay refused:", errors.Is(err, recipes.ErrInvalidDelay))
	// Output:
	// send now
	// remind in a moment
	// negative delay refused: true
}

// With a visibility timeout, a claim expires after that time even if its
// consumer is alive but stuck, and the item goes to another consumer. A
// consumer that needs longer extends its claim.
func ExampleWithVisibilityTimeout() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx := context.Background()

	q := recipes.NewQueue(cli, "/queues/reports")
	if _, err := q.Enqueue(ctx, "monthly report"); err != nil {
		log.Fatal(err)
	}
	session, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
	if err != nil {
		log.Fatal(err)
	}
	defer session.Close()
	consumer := recipes.NewConsumer(session, "/queues/reports", recipes.WithVisibilityTimeout(5*time.Second))
	cl, err := consumer.Claim(ctx)
	if err != nil {
		log.Fatal(err)
	}
	// Long work: extend the claim before its Context's deadline.
	if err := cl.Extend(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("working on", cl.Value(), "- still held:", cl.Context().Err() == nil)
	if err := cl.Ack(ctx); err != nil {
		log.Fatal(err)
	}
	_, err = recipes.NewConsumer(session, "/queues/reports", recipes.WithVisibilityTimeout(time.Millisecond)).Claim(ctx)
	fmt.Println("timeout below 1s refused:", errors.Is(err, recipes.ErrVisibilityTimeout))
	// Output:
	// working on monthly report - still held: true
	// timeout below 1s refused: true
}

// Batches: EnqueueAll adds its items in one transaction, next to each
// other in the queue; DequeueN and ClaimN take up to n items in one
// transaction, in queue order. Every item keeps the guarantee of its
// kind of consumer.
func ExampleQueue_EnqueueAll() {
	cluster, cli := startExampleCluster()
	defer cluster.Close()
	ctx := context.Background()

	q := recipes.NewQueue(cli, "/queues/pages")
	items, err := q.EnqueueAll(ctx, []string{"p1", "p2", "p3", "p4", "p5"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("enqueued", len(items), "items at one revision:", items[0].Revision == items[4].Revision)

	first, err := q.DequeueN(ctx, 2) // at most once
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("dequeued", first)

	session, err := concurrency.NewSession(cli, concurrency.WithTTL(10))
	if err != nil {
		log.Fatal(err)
	}
	defer session.Close()
	claims, err := recipes.NewConsumer(session, "/queues/pages").ClaimN(ctx, 16) // at least once
	if err != nil {
		log.Fatal(err)
	}
	for _, cl := range claims {
		fmt.Println("claimed", cl.Value())
		if err := cl.Ack(ctx); err != nil {
			log.Fatal(err)
		}
	}
	_, err = q.DequeueN(ctx, 0)
	fmt.Println("empty batch refused:", errors.Is(err, recipes.ErrBatchSize))
	// Output:
	// enqueued 5 items at one revision: true
	// dequeued [p1 p2]
	// claimed p3
	// claimed p4
	// claimed p5
	// empty batch refused: true
}
