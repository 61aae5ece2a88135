package recipes_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// runLog records the runs of Lead's functions and fails on an overlap.
type runLog struct {
	mu      sync.Mutex
	running int
	runs    []int64 // tokens, in start order
	overlap error
	started chan int64
}

func newRunLog() *runLog { return &runLog{started: make(chan int64, 100)} }

func (r *runLog) fn(ctx context.Context, l *recipes.Leadership) error {
	r.mu.Lock()
	r.running++
	if r.running > 1 {
		r.overlap = fmt.Errorf("token %d started while another ran", l.Token())
	}
	r.runs = append(r.runs, l.Token())
	r.mu.Unlock()
	r.started <- l.Token()
	<-ctx.Done()
	r.mu.Lock()
	r.running--
	r.mu.Unlock()
	return ctx.Err()
}

func TestLeadHandOverLossAndObserver(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 60*time.Second)
	if err := recipes.Lead(ctx, recipes.NewElection(newSession(t, c, 5), "lead/x"), "v", nil); !errors.Is(err, recipes.ErrNilFunc) {
		t.Fatalf("Lead(nil) = %v, want ErrNilFunc", err)
	}
	log := newRunLog()
	var omu sync.Mutex
	var seen []recipes.LeaderInfo
	observe := recipes.OnNewLeader(func(li recipes.LeaderInfo) {
		omu.Lock()
		seen = append(seen, li)
		omu.Unlock()
	})
	type runner struct {
		cancel context.CancelFunc
		done   chan error
	}
	start := func(name string) runner {
		rctx, cancel := context.WithCancel(ctx)
		r := runner{cancel: cancel, done: make(chan error, 1)}
		s := newSession(t, c, 5)
		go func() { r.done <- recipes.Lead(rctx, recipes.NewElection(s, "lead/x"), name, log.fn, observe) }()
		return r
	}
	a := start("a")
	first := <-log.started
	b := start("b")
	// Loss: the leader's key is deleted; a's function stops, b (or a,
	// campaigning again) takes over.
	li, err := recipes.NewElection(newSession(t, c, 5), "lead/x").Leader(ctx)
	if err != nil || li.Token != first {
		t.Fatalf("leader %+v %v, want token %d", li, err, first)
	}
	if _, err := c.Client().Delete(ctx, li.Key); err != nil {
		t.Fatal(err)
	}
	second := <-log.started
	if second <= first {
		t.Fatalf("token %d after %d", second, first)
	}
	// A deletion by someone else hands the leadership over at once, while
	// the old function may still run until its watch reports the loss:
	// only the hand-overs Lead makes itself are free of overlap. Wait for
	// the old one to stop.
	for {
		log.mu.Lock()
		n := log.running
		if n == 1 {
			log.overlap = nil
		}
		log.mu.Unlock()
		if n == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the function of the lost leadership never stopped")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// ReleaseOnCancel: cancel whoever leads; the other one takes over
	// without waiting for a TTL.
	cur, err := recipes.NewElection(newSession(t, c, 5), "lead/x").Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stopper, other := a, b
	if cur.Value == "b" {
		stopper, other = b, a
	}
	stopper.cancel()
	if err := <-stopper.done; err != nil {
		t.Fatalf("Lead after cancel = %v, want nil", err)
	}
	third := <-log.started
	// The remaining runner's observer reports its own leadership too.
	for {
		omu.Lock()
		ok := len(seen) > 0 && seen[len(seen)-1].Token == third
		omu.Unlock()
		if ok {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("leader %d never observed", third)
		}
		time.Sleep(10 * time.Millisecond)
	}
	other.cancel()
	if err := <-other.done; err != nil {
		t.Fatalf("Lead after cancel = %v", err)
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	if log.overlap != nil {
		t.Fatal(log.overlap)
	}
	omu.Lock()
	defer omu.Unlock()
	var toks []int64
	for _, li := range seen {
		toks = append(toks, li.Token)
	}
	for _, want := range []int64{first, second, third} {
		found := false
		for _, tok := range toks {
			found = found || tok == want
		}
		if !found {
			t.Fatalf("observer callbacks %v miss leader %d", toks, want)
		}
	}
}

func TestLeadReturnsAndStuck(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 60*time.Second)
	s := newSession(t, c, 5)
	e := recipes.NewElection(s, "lead/ret")
	boom := errors.New("boom")
	err := recipes.Lead(ctx, e, "v", func(context.Context, *recipes.Leadership) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("Lead = %v, want fn's error", err)
	}
	if _, err := e.Leader(ctx); !errors.Is(err, recipes.ErrNoLeader) {
		t.Fatalf("after fn returned, leader: %v, want resigned", err)
	}
	release := make(chan struct{})
	defer close(release)
	lctx, cancel := context.WithCancel(ctx)
	var token int64
	err = recipes.Lead(lctx, e, "v", func(_ context.Context, l *recipes.Leadership) error {
		token = l.Token()
		cancel() // the parent ends; the function does not stop
		<-release
		return nil
	}, recipes.WithGrace(100*time.Millisecond))
	if !errors.Is(err, recipes.ErrLeaderStuck) {
		t.Fatalf("Lead with a stuck function = %v, want ErrLeaderStuck", err)
	}
	// It did not resign: the stuck function may still be working.
	if li, err := e.Leader(ctx); err != nil || li.Token != token {
		t.Fatalf("leader after a stuck run: %+v %v, want still %d", li, err, token)
	}
}
