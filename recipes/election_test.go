package recipes_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// nextObs returns the next observation or fails the test after 5 s.
func nextObs(t *testing.T, ch <-chan recipes.Observation) recipes.Observation {
	t.Helper()
	select {
	case o, ok := <-ch:
		if !ok {
			t.Fatal("Observe channel closed")
		}
		return o
	case <-time.After(5 * time.Second):
		t.Fatal("no observation within 5s")
	}
	return recipes.Observation{}
}

func describe(o recipes.Observation) string {
	if o.Leader == nil {
		return "none"
	}
	return o.Leader.Value
}

func TestElectionCampaignProclaimResign(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	s1, s2 := newSession(t, c, 5), newSession(t, c, 5)
	e1, e2 := recipes.NewElection(s1, "elect/basic"), recipes.NewElection(s2, "elect/basic")
	if _, err := e1.Leader(ctx); !errors.Is(err, recipes.ErrNoLeader) {
		t.Fatalf("Leader of an empty election = %v, want ErrNoLeader", err)
	}
	l1, err := e1.Campaign(ctx, "one")
	if err != nil {
		t.Fatal(err)
	}
	if li, err := e2.Leader(ctx); err != nil || li.Value != "one" || li.Token != l1.Token() {
		t.Fatalf("Leader = %+v, %v", li, err)
	}
	if err := l1.Proclaim(ctx, "one'"); err != nil {
		t.Fatal(err)
	}
	if li, _ := e2.Leader(ctx); li.Value != "one'" {
		t.Fatalf("Leader after Proclaim = %+v", li)
	}
	won := make(chan *recipes.Leadership, 1)
	go func() {
		l2, err := e2.Campaign(ctx, "two")
		if err != nil {
			t.Error(err)
		}
		won <- l2
	}()
	select {
	case <-won:
		t.Fatal("second candidate won while the first leads")
	case <-time.After(100 * time.Millisecond):
	}
	if err := l1.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	l2 := <-won
	if l2 == nil || l2.Token() <= l1.Token() {
		t.Fatalf("second leadership %v", l2)
	}
	if err := l1.Proclaim(ctx, "stale"); !errors.Is(err, recipes.ErrLeadershipLost) {
		t.Fatalf("Proclaim after Resign = %v, want ErrLeadershipLost", err)
	}
	if li, _ := e1.Leader(ctx); li.Value != "two" {
		t.Fatalf("Leader = %+v, want two", li)
	}
}

// etcd #19597: a campaign whose session expires while it waits fails and
// never becomes leader, even when the leader resigns right after.
func TestElectionCampaignAfterSessionExpiryFails(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	campaign := func(s *concurrency.Session) <-chan error {
		errc := make(chan error, 1)
		go func() {
			l, err := recipes.NewElection(s, "elect/expire").Campaign(ctx, "waiter")
			if err == nil {
				err = fmt.Errorf("won with token %d", l.Token())
			}
			errc <- err
		}()
		return errc
	}
	t.Run("lease revoked, then leader resigns", func(t *testing.T) {
		leader, err := recipes.NewElection(newSession(t, c, 5), "elect/expire").Campaign(ctx, "leader")
		if err != nil {
			t.Fatal(err)
		}
		s := newSession(t, c, 5)
		errc := campaign(s)
		waitForKeys(t, c, "elect/expire/", 2)
		if _, err := c.Client().Revoke(ctx, s.Lease()); err != nil {
			t.Fatal(err)
		}
		if err := leader.Resign(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, recipes.ErrSessionExpired) {
			t.Fatalf("Campaign = %v, want ErrSessionExpired", err)
		}
	})
	t.Run("lease expired while the client was cut off", func(t *testing.T) {
		leader, err := recipes.NewElection(newSession(t, c, 5), "elect/expire").Campaign(ctx, "leader")
		if err != nil {
			t.Fatal(err)
		}
		// The waiter reaches etcd only through one member's proxy, which
		// then stalls all its traffic: keep-alives stop, etcd expires the
		// 1 s lease.
		name := c.Members()[0].Name
		cli, err := c.NewClient(clientv3.Config{Endpoints: []string{c.ProxyEndpoint(name)}, DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cli.Close() })
		s, err := concurrency.NewSession(cli, concurrency.WithTTL(1))
		if err != nil {
			t.Fatal(err)
		}
		errc := campaign(s)
		waitForKeys(t, c, "elect/expire/", 2)
		if err := c.Blackhole(name); err != nil {
			t.Fatal(err)
		}
		waitForKeys(t, c, "elect/expire/", 1) // the server expired the waiter
		if err := leader.Resign(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		if err := c.Unblackhole(name); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-errc:
			if !errors.Is(err, recipes.ErrSessionExpired) {
				t.Fatalf("Campaign = %v, want ErrSessionExpired", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Campaign still waiting after its lease expired")
		}
		if _, err := recipes.NewElection(newSession(t, c, 5), "elect/expire").Leader(ctx); !errors.Is(err, recipes.ErrNoLeader) {
			t.Fatalf("Leader = %v, want ErrNoLeader", err)
		}
	})
}

// Observe reports every leader in order, with "no leader" in between
// (etcd's Observe skips intermediate leaders and never reports "no
// leader", #7815/#18163). The leaders hand over as fast as they can,
// without waiting for the observer.
func TestElectionObserveEveryChange(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	obs := recipes.NewElection(newSession(t, c, 5), "elect/observe").Observe(ctx)
	if o := nextObs(t, obs); o.Leader != nil {
		t.Fatalf("first observation %+v, want no leader", o)
	}
	type won struct {
		l *recipes.Leadership
		v string
	}
	campaign := func(v string) <-chan won {
		ch := make(chan won, 1)
		go func() {
			l, err := recipes.NewElection(newSession(t, c, 5), "elect/observe").Campaign(ctx, v)
			if err != nil {
				t.Error(err)
			}
			ch <- won{l, v}
		}()
		return ch
	}
	var queue []<-chan won
	for i, v := range []string{"a", "b", "c"} {
		queue = append(queue, campaign(v))
		waitForKeys(t, c, "elect/observe/", int64(i+1))
	}
	for _, next := range queue {
		w := <-next
		if w.l == nil {
			t.FailNow()
		}
		if err := w.l.Proclaim(ctx, w.v+"!"); err != nil {
			t.Fatal(err)
		}
		if err := w.l.Resign(ctx); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	var last recipes.Observation
	for len(got) < 7 {
		o := nextObs(t, obs)
		if o.Revision <= last.Revision || o.Resynced {
			t.Fatalf("observation %+v after %+v", o, last)
		}
		if o.Leader != nil && last.Leader != nil && o.Leader.Token < last.Leader.Token {
			t.Fatalf("token went back: %+v after %+v", o, last)
		}
		last = o
		got = append(got, describe(o))
	}
	if fmt.Sprint(got) != "[a a! b b! c c! none]" {
		t.Fatalf("observations %q, want a a! b b! c c! none", got)
	}
}

// etcd's Observe closed its channel when the history it needed was
// compacted (#7815). Here the observer's only member stops while leaders
// change and the history is compacted; when the member is back the
// observer's watch cannot resume, so it re-reads, marks the observation
// Resynced, and goes on.
func TestElectionObserveSurvivesCompaction(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 60*time.Second)
	m := c.Members()[0]
	cli, err := c.NewClient(clientv3.Config{Endpoints: m.ClientURLs, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
	if err != nil {
		t.Fatal(err)
	}
	obs := recipes.NewElection(s, "elect/compact").Observe(ctx)
	if o := nextObs(t, obs); o.Leader != nil {
		t.Fatalf("first observation %+v", o)
	}
	if err := c.StopMember(ctx, m.Name); err != nil {
		t.Fatal(err)
	}
	var last *recipes.Leadership
	for i := range 3 {
		if last != nil {
			if err := last.Resign(ctx); err != nil {
				t.Fatal(err)
			}
		}
		l, err := recipes.NewElection(newSession(t, c, 5), "elect/compact").Campaign(ctx, fmt.Sprint("v", i))
		if err != nil {
			t.Fatal(err)
		}
		last = l
	}
	resp, err := c.Client().Put(ctx, "elect-compact-marker", "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client().Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	if err := c.RestartMember(ctx, m.Name); err != nil {
		t.Fatal(err)
	}
	o := nextObs(t, obs)
	if !o.Resynced || o.Leader == nil || o.Leader.Value != "v2" {
		t.Fatalf("observation after compaction %+v, want Resynced with leader v2", o)
	}
	if err := last.Resign(ctx); err != nil {
		t.Fatal(err)
	}
	if o := nextObs(t, obs); o.Leader != nil || o.Resynced {
		t.Fatalf("observation after the last resign %+v, want no leader", o)
	}
}

// etcd #13469: ResumeElection dropped the trailing "/" of the prefix, so
// the resumed election also matched "<prefix>x/..." keys. Here the resumed
// election has exactly the prefix of the original one and ignores a
// sibling election whose name extends it.
func TestResumeElectionKeepsPrefixExact(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	cli := newClient(t, c)
	s, err := concurrency.NewSession(cli, concurrency.WithTTL(30))
	if err != nil {
		t.Fatal(err)
	}
	// A sibling election "elect/resume2" with an older candidate.
	if _, err := recipes.NewElection(newSession(t, c, 30), "elect/resume2").Campaign(ctx, "sibling"); err != nil {
		t.Fatal(err)
	}
	l, err := recipes.NewElection(s, "elect/resume").Campaign(ctx, "me")
	if err != nil {
		t.Fatal(err)
	}
	// The process restarts and takes its lease back.
	s.Orphan()
	s2, err := concurrency.NewSession(newClient(t, c), concurrency.WithLease(s.Lease()))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for i, prefix := range []string{"elect/resume", "elect/resume/"} {
		r, err := recipes.ResumeElection(ctx, s2, prefix, l.Token())
		if i == 1 {
			// Already resumed by this process (same key, same client).
			if !errors.Is(err, recipes.ErrLocked) {
				t.Fatalf("second ResumeElection(%q) = %v, want ErrLocked", prefix, err)
			}
			s3, serr := concurrency.NewSession(newClient(t, c), concurrency.WithLease(s.Lease()))
			if serr != nil {
				t.Fatal(serr)
			}
			defer s3.Close()
			r, err = recipes.ResumeElection(ctx, s3, prefix, l.Token())
		}
		if err != nil {
			t.Fatalf("ResumeElection(%q): %v", prefix, err)
		}
		if got := r.Election().Prefix(); got != "elect/resume/" {
			t.Fatalf("resumed prefix %q, want elect/resume/", got)
		}
		if r.Key() != l.Key() || r.Token() != l.Token() {
			t.Fatalf("resumed %s/%d, want %s/%d", r.Key(), r.Token(), l.Key(), l.Token())
		}
		li, err := r.Election().Leader(ctx)
		if err != nil || li.Token != l.Token() || li.Value != "me" {
			t.Fatalf("Leader of the resumed election = %+v, %v", li, err)
		}
		o := nextObs(t, r.Election().Observe(ctx))
		if o.Leader == nil || o.Leader.Value != "me" {
			t.Fatalf("Observe of the resumed election = %+v", o)
		}
	}
	if _, err := recipes.ResumeElection(ctx, s2, "elect/resume", l.Token()+1); !errors.Is(err, recipes.ErrLeadershipLost) {
		t.Fatalf("ResumeElection with a wrong token = %v, want ErrLeadershipLost", err)
	}
	if _, err := recipes.ResumeElection(ctx, s2, "elect", l.Token()); !errors.Is(err, recipes.ErrLeadershipLost) {
		t.Fatalf("ResumeElection with a parent prefix = %v, want ErrLeadershipLost", err)
	}
}

func TestElectionDoneOnRevoke(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	s := newSession(t, c, 60)
	l, err := recipes.NewElection(s, "elect/done").Campaign(ctx, "v")
	if err != nil {
		t.Fatal(err)
	}
	done := l.Done()
	if _, err := c.Client().Revoke(ctx, s.Lease()); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(done, 2*time.Second) {
		t.Fatal("Done not closed after the lease was revoked")
	}
	if err := l.Err(); !errors.Is(err, recipes.ErrLeadershipLost) {
		t.Fatalf("Err = %v, want ErrLeadershipLost", err)
	}
	if err := l.Resign(ctx); !errors.Is(err, recipes.ErrLeadershipLost) {
		t.Fatalf("Resign = %v, want ErrLeadershipLost", err)
	}
}
