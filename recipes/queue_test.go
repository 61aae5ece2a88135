package recipes_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// qbCluster starts a 3-member cluster for one queue or barrier test.
func qbCluster(t *testing.T) *testserver.Cluster {
	t.Helper()
	return testserver.Start(t, testserver.WithMembers(3))
}

func TestQueueFIFO(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	// Producers on different clients, one after the other: the dequeue
	// order must follow real-time order even across clients (their keys
	// need not: each producer's hint is the revision it saw last).
	p1, p2 := newClient(t, c), newClient(t, c)
	q1, q2 := recipes.NewQueue(p1, "fifo"), recipes.NewQueue(p2, "fifo/")
	const n = 300 // enough for the consumer to move the floor twice
	for i := range n {
		q := q1
		if i%2 == 1 {
			q = q2
		}
		if _, err := q.Enqueue(ctx, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	consumer := recipes.NewQueue(newClient(t, c), "fifo")
	if l, err := consumer.Len(ctx); err != nil || l != n {
		t.Fatalf("Len = %d, %v; want %d", l, err, n)
	}
	for i := range n {
		v, err := consumer.Dequeue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if v != fmt.Sprint(i) {
			t.Fatalf("item %d: got %q", i, v)
		}
	}
	if l, err := consumer.Len(ctx); err != nil || l != 0 {
		t.Fatalf("Len after draining = %d, %v", l, err)
	}
	// Scans now start at the floor, not at the tombstones of the items
	// dequeued; a producer that saw the old floor still lands above it.
	resp, err := p1.Get(ctx, "fifo/floor")
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].Version < 2 {
		t.Fatalf("floor after %d dequeues: %v, %v", n, resp, err)
	}
	if _, err := q1.Enqueue(ctx, "after"); err != nil {
		t.Fatal(err)
	}
	if v, err := consumer.Dequeue(ctx); err != nil || v != "after" {
		t.Fatalf("Dequeue after the floor moved = %q, %v", v, err)
	}
	// Priority keys could land below the floor: a priority queue refuses
	// the prefix of a FIFO queue.
	if _, err := recipes.NewPriorityQueue(p2, "fifo").Enqueue(ctx, "x", 1); !errors.Is(err, recipes.ErrInvalidArgument) {
		t.Fatalf("priority Enqueue into a FIFO queue = %v, want ErrInvalidArgument", err)
	}
}

// A producer's key carries the newest revision it had seen, which can be
// far behind: here one producer enqueues, another enqueues many items, and
// the first enqueues again with a key that sorts among the first ones. The
// items still go out in the order their Enqueues returned, also when the
// consumer's first head read (64 keys) holds no other free item than the
// late one, and on a priority queue.
func TestQueueOrderWithStaleProducer(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 60*time.Second)
	const others = 150 // more than one head read holds
	for _, prio := range []bool{false, true} {
		pfx := "stale"
		enqueue := func(q *recipes.Queue, v string) error { _, err := q.Enqueue(ctx, v); return err }
		var pq1, pq2 *recipes.PriorityQueue
		if prio {
			pfx = "stale-pq"
			pq1, pq2 = recipes.NewPriorityQueue(newClient(t, c), pfx), recipes.NewPriorityQueue(newClient(t, c), pfx)
		}
		q1, q2 := recipes.NewQueue(newClient(t, c), pfx), recipes.NewQueue(newClient(t, c), pfx)
		put := func(first bool, v string) {
			t.Helper()
			var err error
			switch {
			case prio && first:
				_, err = pq1.Enqueue(ctx, v, 1)
			case prio:
				_, err = pq2.Enqueue(ctx, v, 1)
			case first:
				err = enqueue(q1, v)
			default:
				err = enqueue(q2, v)
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		want := []string{"first"}
		put(true, "first")
		for i := range others {
			v := fmt.Sprint(i)
			put(false, v)
			want = append(want, v)
		}
		put(true, "late")
		want = append(want, "late")

		// The late item's key does sort before most of the others'.
		resp, err := newClient(t, c).Get(ctx, pfx+"/items/", clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		pos := -1
		for i, kv := range resp.Kvs {
			if string(kv.Value) == "late" {
				pos = i
			}
		}
		if pos < 0 || pos > others/2 {
			t.Fatalf("the late item's key sorts at %d of %d: the test needs it among the first", pos, len(resp.Kvs))
		}

		// A consumer holds the oldest 63 items, all of the first head
		// read's keys but the late item's: a Dequeue must not take the
		// late item for the oldest free one.
		con := recipes.NewConsumer(newSession(t, c, 30), pfx)
		var held []*recipes.Claim
		for _, w := range want[:63] {
			held = append(held, qbClaim(t, ctx, con, w))
		}
		dq := recipes.NewQueue(newClient(t, c), pfx)
		var dpq *recipes.PriorityQueue
		if prio {
			dpq = recipes.NewPriorityQueue(newClient(t, c), pfx)
		}
		for i, w := range want[63:] {
			if i == 1 {
				for _, cl := range held {
					if err := cl.Ack(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
			var v string
			if prio {
				v, err = dpq.Dequeue(ctx)
			} else {
				v, err = dq.Dequeue(ctx)
			}
			if err != nil {
				t.Fatal(err)
			}
			if v != w {
				t.Fatalf("priority %v: item %d: got %q, want %q", prio, i, v, w)
			}
		}
	}
}

func TestQueueDequeueWaitsForEnqueue(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	q := recipes.NewQueue(newClient(t, c), "wait")
	type result struct {
		v   string
		err error
		at  time.Time
	}
	got := make(chan result, 1)
	go func() {
		v, err := q.Dequeue(ctx)
		got <- result{v, err, time.Now()}
	}()
	time.Sleep(300 * time.Millisecond) // let Dequeue find the queue empty and wait
	select {
	case r := <-got:
		t.Fatalf("Dequeue returned on an empty queue: %q, %v", r.v, r.err)
	default:
	}
	start := time.Now()
	if _, err := recipes.NewQueue(newClient(t, c), "wait").Enqueue(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil || r.v != "x" {
		t.Fatalf("Dequeue = %q, %v", r.v, r.err)
	}
	// The wait is a synced watch: it wakes within round trips, not after
	// etcd's 100 ms unsynced-watcher tick. (Logged, not asserted: speed is
	// measured by the benchmarks.)
	t.Logf("woke %v after Enqueue started", r.at.Sub(start))
}

// etcd's recipe.Queue takes no ctx: a Dequeue on an empty queue can only be
// stopped by closing the client.
func TestQueueDequeueCanceledReturnsPromptly(t *testing.T) {
	c := qbCluster(t)
	q := recipes.NewQueue(newClient(t, c), "cancel")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	if _, err := q.Dequeue(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Dequeue with a canceled ctx = %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Dequeue with a canceled ctx took %v", d)
	}

	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := q.Dequeue(ctx)
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	start = time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Dequeue = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("Dequeue returned %v after cancel", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Dequeue did not return after its ctx was canceled")
	}

	dctx, dcancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer dcancel()
	if _, err := q.Dequeue(dctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dequeue past its deadline = %v, want context.DeadlineExceeded", err)
	}
}

// etcd's recipe.Queue dereferences a nil event when its watch channel
// closes (WaitPrefixEvents returns nil). Closing the client under a
// waiting Dequeue must return an error instead of panicking.
func TestQueueDequeueClientClosedNoPanic(t *testing.T) {
	c := qbCluster(t)
	cli := newClient(t, c)
	q := recipes.NewQueue(cli, "closed")
	done := make(chan error, 1)
	go func() {
		_, err := q.Dequeue(context.Background())
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	_ = cli.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Dequeue on a closed client returned no error")
		}
		t.Logf("Dequeue after Close: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("Dequeue did not return after the client was closed")
	}
}

func TestQueueEmptyPrefix(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 10*time.Second)
	q := recipes.NewQueue(c.Client(), "/")
	if _, err := q.Enqueue(ctx, "x"); !errors.Is(err, recipes.ErrInvalidArgument) {
		t.Fatalf("Enqueue = %v, want ErrInvalidArgument", err)
	}
	if _, err := q.Dequeue(ctx); !errors.Is(err, recipes.ErrInvalidArgument) {
		t.Fatalf("Dequeue = %v, want ErrInvalidArgument", err)
	}
}

// Many producers and consumers: every item is delivered exactly once (no
// faults, so nothing may be lost either), and each consumer sees the items
// of one producer in that producer's order.
func TestQueueConcurrentExactlyOnce(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 60*time.Second)
	const producers, consumers, perProducer = 4, 4, 100
	var wg sync.WaitGroup
	for p := range producers {
		q := recipes.NewQueue(newClient(t, c), "many")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perProducer {
				if _, err := q.Enqueue(ctx, fmt.Sprintf("%d/%d", p, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var mu sync.Mutex
	seen := map[string]int{}
	total := producers * perProducer
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	for range consumers {
		q := recipes.NewQueue(newClient(t, c), "many")
		wg.Add(1)
		go func() {
			defer wg.Done()
			last := map[int]int{}
			for {
				v, err := q.Dequeue(cctx)
				if err != nil {
					if cctx.Err() == nil {
						t.Error(err)
					}
					return
				}
				var p, i int
				if _, err := fmt.Sscanf(v, "%d/%d", &p, &i); err != nil {
					t.Error(err)
					return
				}
				if l, ok := last[p]; ok && i <= l {
					t.Errorf("consumer saw %s after %d/%d", v, p, l)
				}
				last[p] = i
				mu.Lock()
				seen[v]++
				if len(seen) == total {
					stop()
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != total {
		t.Fatalf("delivered %d distinct items, want %d", len(seen), total)
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("item %s delivered %d times", v, n)
		}
	}
}

// cancelingKV is a KV server that answers every write with Canceled, as a
// member does for the requests in flight when it stops, and counts them.
type cancelingKV struct {
	pb.UnimplementedKVServer
	writes atomic.Int64
	// queueWrites counts only writes under the queue's prefix "once", so a
	// plain-client resend of the first part still in flight when the
	// Enqueue starts cannot be counted as the Enqueue's.
	queueWrites atomic.Int64
}

func (s *cancelingKV) Txn(_ context.Context, in *pb.TxnRequest) (*pb.TxnResponse, error) {
	for _, op := range append(in.Success, in.Failure...) {
		if op.GetRequestRange() == nil {
			s.writes.Add(1)
			if put := op.GetRequestPut(); put != nil && bytes.HasPrefix(put.Key, []byte("once")) {
				s.queueWrites.Add(1)
			}
			return nil, status.Error(codes.Canceled, "context canceled")
		}
	}
	resp := &pb.TxnResponse{Header: &pb.ResponseHeader{Revision: 7}, Succeeded: true}
	for range in.Success {
		resp.Responses = append(resp.Responses, &pb.ResponseOp{Response: &pb.ResponseOp_ResponseRange{ResponseRange: &pb.RangeResponse{}}})
	}
	return resp, nil
}

// clientv3 sends a write again when the server answers Canceled while the
// caller's ctx is live; if the first attempt was applied anyway, the item
// is added twice (after a Dequeue in between, as the fault suite found).
// Enqueue sends it once and reports an unknown outcome.
func TestQueueEnqueueNotResentAfterServerCancel(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	kv := &cancelingKV{}
	pb.RegisterKVServer(srv, kv)
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{l.Addr().String()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx := testCtx(t, 30*time.Second)

	// Plain clientv3: the same write goes out again and again.
	pctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if _, err := cli.Txn(pctx).Then(clientv3.OpPut("k", "v")).Commit(); err == nil {
		t.Fatal("write succeeded on a server that cancels everything")
	}
	if n := kv.writes.Swap(0); n < 2 {
		t.Logf("clientv3 sent the write %d time(s)", n)
	} else {
		t.Logf("clientv3 sent the same write %d times", n)
	}

	_, err = recipes.NewQueue(cli, "once").Enqueue(ctx, "x")
	if !errors.Is(err, recipes.ErrEtcd) || errors.Is(err, context.Canceled) {
		t.Fatalf("Enqueue = %v, want ErrEtcd (outcome unknown), not context.Canceled", err)
	}
	if n := kv.queueWrites.Load(); n != 1 {
		t.Fatalf("Enqueue sent its write %d times, want 1", n)
	}
}

// WithCandidates bounds how many free items one dequeue transaction tries:
// the takes of a Queue made with WithCandidates(n) carry at most n levels
// (one per item tried) and reach n when enough items wait; without the
// option, or with n < 1 (ignored), they try more. The items still go out
// in order.
func TestQueueWithCandidatesBoundsTakes(t *testing.T) {
	c := qbCluster(t)
	ctx := testCtx(t, 30*time.Second)
	var mu sync.Mutex
	levels := map[string][]int{} // queue prefix -> levels of each take
	countLevels := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		// A take is a transaction whose first operation is a nested
		// transaction: level i tries item i, level i+1 is its Else.
		if r, ok := req.(*pb.TxnRequest); ok && len(r.Success) > 0 {
			n, key := 0, ""
			for lv := r.Success[0].GetRequestTxn(); lv != nil; {
				n++
				if len(lv.Compare) > 0 && key == "" {
					key = string(lv.Compare[0].Key)
				}
				if len(lv.Failure) == 0 {
					break
				}
				lv = lv.Failure[0].GetRequestTxn()
			}
			if n > 0 {
				prefix, _, _ := strings.Cut(key, "/")
				mu.Lock()
				levels[prefix] = append(levels[prefix], n)
				mu.Unlock()
			}
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	cli, err := c.NewClient(clientv3.Config{
		DialTimeout: 5 * time.Second,
		DialOptions: []grpc.DialOption{grpc.WithChainUnaryInterceptor(countLevels)},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })

	const items = 10
	for _, tc := range []struct {
		prefix   string
		opts     []recipes.QueueOption
		min, max int // bounds of the widest take
	}{
		{"candidates-1", []recipes.QueueOption{recipes.WithCandidates(1)}, 1, 1},
		{"candidates-2", []recipes.QueueOption{recipes.WithCandidates(2)}, 2, 2},
		{"candidates-default", nil, 3, 16},
		{"candidates-0", []recipes.QueueOption{recipes.WithCandidates(0)}, 3, 16},
	} {
		q := recipes.NewQueue(cli, tc.prefix, tc.opts...)
		for i := range items {
			if _, err := q.Enqueue(ctx, fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
		for i := range items {
			v, err := q.Dequeue(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if v != fmt.Sprint(i) {
				t.Fatalf("%s: Dequeue %d = %q, want %q", tc.prefix, i, v, fmt.Sprint(i))
			}
		}
		mu.Lock()
		takes := levels[tc.prefix]
		mu.Unlock()
		if len(takes) < items {
			t.Fatalf("%s: %d take transactions seen for %d dequeues", tc.prefix, len(takes), items)
		}
		if widest := slices.Max(takes); widest < tc.min || widest > tc.max {
			t.Errorf("%s: take transactions tried %v items, want the widest within [%d, %d]", tc.prefix, takes, tc.min, tc.max)
		}
	}
}
