package recipes_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

func TestMutexLockUnlockGuard(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	s := newSession(t, c, 5)
	m := recipes.NewMutex(s, "locks/basic")
	l, err := m.Lock(ctx)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	if l.Token() <= 0 || l.Revision() < l.Token() {
		t.Fatalf("token %d revision %d", l.Token(), l.Revision())
	}
	cli := s.Client()
	resp, err := cli.Txn(ctx).If(l.Guard()).Then(clientv3.OpPut("data", "1")).Commit()
	if err != nil || !resp.Succeeded {
		t.Fatalf("guarded put while held: %v %v", resp, err)
	}
	if err := l.Err(); err != nil {
		t.Fatalf("Err while held: %v", err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	if !closedWithin(l.Done(), time.Second) {
		t.Fatal("Done not closed after Unlock")
	}
	if err := l.Err(); !errors.Is(err, recipes.ErrNotHeld) {
		t.Fatalf("Err after Unlock = %v, want ErrNotHeld", err)
	}
	resp, err = cli.Txn(ctx).If(l.Guard()).Then(clientv3.OpPut("data", "2")).Commit()
	if err != nil || resp.Succeeded {
		t.Fatalf("guarded put after Unlock succeeded: %v %v", resp, err)
	}
	if err := l.Unlock(ctx); !errors.Is(err, recipes.ErrNotHeld) {
		t.Fatalf("second Unlock = %v, want ErrNotHeld", err)
	}
}

func TestMutexFIFOAndMonotonicTokens(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 60*time.Second)
	const n = 4
	const rounds = 10
	var mu sync.Mutex
	var holder int
	var tokens []int64
	var wg sync.WaitGroup
	for i := range n {
		s := newSession(t, c, 5)
		m := recipes.NewMutex(s, "locks/fifo")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range rounds {
				l, err := m.Lock(ctx)
				if err != nil {
					t.Errorf("Lock: %v", err)
					return
				}
				mu.Lock()
				if holder != 0 {
					t.Errorf("client %d granted while %d holds", i+1, holder)
				}
				holder = i + 1
				tokens = append(tokens, l.Token())
				mu.Unlock()
				time.Sleep(time.Millisecond)
				mu.Lock()
				holder = 0
				mu.Unlock()
				if err := l.Unlock(ctx); err != nil {
					t.Errorf("Unlock: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(tokens) != n*rounds {
		t.Fatalf("%d grants, want %d", len(tokens), n*rounds)
	}
	for i := 1; i < len(tokens); i++ {
		if tokens[i] <= tokens[i-1] {
			t.Fatalf("token %d after %d: not monotonic: %v", tokens[i], tokens[i-1], tokens)
		}
	}
}

func TestMutexTryLock(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	a := recipes.NewMutex(newSession(t, c, 5), "locks/try")
	b := recipes.NewMutex(newSession(t, c, 5), "locks/try/")
	la, err := a.TryLock(ctx)
	if err != nil {
		t.Fatalf("TryLock on a free lock: %v", err)
	}
	if _, err := b.TryLock(ctx); !errors.Is(err, recipes.ErrLocked) {
		t.Fatalf("TryLock on a held lock = %v, want ErrLocked", err)
	}
	// The failed TryLock left no key behind.
	resp, err := c.Client().Get(ctx, "locks/try/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 1 {
		t.Fatalf("keys under the lock: %v %v, want 1", resp, err)
	}
	if err := la.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	lb, err := b.TryLock(ctx)
	if err != nil {
		t.Fatalf("TryLock after Unlock: %v", err)
	}
	if lb.Token() <= la.Token() {
		t.Fatalf("token %d not above previous %d", lb.Token(), la.Token())
	}
}

// etcd #22082: an Unlock that is retried or delayed must never delete the
// key of a newer holder, even one under the same name (the worst case).
func TestMutexStaleUnlockKeepsNewerHolder(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	sa, sb := newSession(t, c, 5), newSession(t, c, 5)
	la, err := recipes.NewMutex(sa, "locks/stale").Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := la.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	lb, err := recipes.NewMutex(sb, "locks/stale").Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A retried Unlock of the old grant.
	if err := la.Unlock(ctx); !errors.Is(err, recipes.ErrNotHeld) {
		t.Fatalf("retried Unlock = %v, want ErrNotHeld", err)
	}
	if err := lb.Unlock(ctx); err != nil {
		t.Fatal(err)
	}

	// A delayed Unlock that reaches etcd after the key was re-created under
	// the same name: same key, older token. A session has one key name per
	// lock, so the session re-creates it when it locks again after its
	// first grant was lost (here: the key was deleted behind its back).
	m := recipes.NewMutex(sa, "locks/stale")
	lost, err := m.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client().Delete(ctx, lost.Key()); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(lost.Done(), 10*time.Second) {
		t.Fatal("Done not closed after the key was deleted")
	}
	newer, err := m.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if newer.Key() != lost.Key() || newer.Token() <= lost.Token() {
		t.Fatalf("new grant key %s token %d; lost grant key %s token %d: want the same key, a larger token",
			newer.Key(), newer.Token(), lost.Key(), lost.Token())
	}
	if err := lost.Unlock(ctx); !errors.Is(err, recipes.ErrLockLost) {
		t.Fatalf("stale Unlock = %v, want ErrLockLost", err)
	}
	resp, err := c.Client().Get(ctx, newer.Key())
	if err != nil || len(resp.Kvs) != 1 || resp.Kvs[0].CreateRevision != newer.Token() {
		t.Fatalf("newer holder's key after stale Unlock: %v %v", resp, err)
	}
	if err := newer.Err(); err != nil {
		t.Fatalf("newer holder lost its lock: %v", err)
	}
	if err := newer.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// A waiter whose lease expires (here: is revoked behind its back) fails
// with ErrSessionExpired and is not granted when the holder leaves.
func TestMutexWaiterSessionExpiredNeverWins(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	holder := newSession(t, c, 5)
	l, err := recipes.NewMutex(holder, "locks/expire").Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waiter := newSession(t, c, 5)
	errc := make(chan error, 1)
	go func() {
		wl, err := recipes.NewMutex(waiter, "locks/expire").Lock(ctx)
		if err == nil {
			err = errors.New("granted with token " + itoa(wl.Token()))
		}
		errc <- err
	}()
	waitForKeys(t, c, "locks/expire/", 2)
	if _, err := c.Client().Revoke(ctx, waiter.Lease()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, recipes.ErrSessionExpired) {
			t.Fatalf("waiting Lock = %v, want ErrSessionExpired", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("waiting Lock did not fail after its lease was revoked")
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	// A session that is already gone cannot even queue.
	if _, err := recipes.NewMutex(waiter, "locks/expire").Lock(ctx); !errors.Is(err, recipes.ErrSessionExpired) {
		t.Fatalf("Lock with an expired session = %v, want ErrSessionExpired", err)
	}
}

// Done fires promptly (via the watch, long before the 60 s TTL) when the
// key is deleted and when the lease is revoked; Err says why.
func TestMutexDoneOnKeyDeletionAndRevoke(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	t.Run("key deleted", func(t *testing.T) {
		s := newSession(t, c, 60)
		l, err := recipes.NewMutex(s, "locks/done-del").Lock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		done := l.Done()
		if _, err := c.Client().Delete(ctx, l.Key()); err != nil {
			t.Fatal(err)
		}
		if !closedWithin(done, 2*time.Second) {
			t.Fatal("Done not closed after the key was deleted")
		}
		if err := l.Err(); !errors.Is(err, recipes.ErrLockLost) {
			t.Fatalf("Err = %v, want ErrLockLost", err)
		}
		if err := l.Unlock(ctx); !errors.Is(err, recipes.ErrLockLost) {
			t.Fatalf("Unlock of a lost lock = %v, want ErrLockLost", err)
		}
	})
	t.Run("lease revoked", func(t *testing.T) {
		s := newSession(t, c, 60)
		l, err := recipes.NewMutex(s, "locks/done-revoke").Lock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		done := l.Done()
		time.Sleep(50 * time.Millisecond) // let the monitor settle on its watch
		if _, err := c.Client().Revoke(ctx, s.Lease()); err != nil {
			t.Fatal(err)
		}
		if !closedWithin(done, 2*time.Second) {
			t.Fatal("Done not closed after the lease was revoked")
		}
		if err := l.Err(); !errors.Is(err, recipes.ErrLockLost) {
			t.Fatalf("Err = %v, want ErrLockLost", err)
		}
		resp, err := s.Client().Txn(ctx).If(l.Guard()).Then(clientv3.OpPut("x", "y")).Commit()
		if err != nil || resp.Succeeded {
			t.Fatalf("guarded write after loss: %v %v", resp, err)
		}
	})
	t.Run("deleted before Done was asked", func(t *testing.T) {
		s := newSession(t, c, 60)
		l, err := recipes.NewMutex(s, "locks/done-early").Lock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Client().Delete(ctx, l.Key()); err != nil {
			t.Fatal(err)
		}
		if !closedWithin(l.Done(), 2*time.Second) {
			t.Fatal("Done not closed for a lock lost before Done was called")
		}
	})
}

// Two goroutines sharing one session queue like any other waiters.
func TestMutexSharedSession(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	s := newSession(t, c, 5)
	m := recipes.NewMutex(s, "locks/shared")
	l1, err := m.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *recipes.Lock, 1)
	go func() {
		l2, err := m.Lock(ctx)
		if err != nil {
			t.Error(err)
		}
		got <- l2
	}()
	select {
	case <-got:
		t.Fatal("second Lock on the same session granted while the first holds")
	case <-time.After(200 * time.Millisecond):
	}
	if err := l1.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	l2 := <-got
	if l2 == nil || l2.Token() <= l1.Token() {
		t.Fatalf("second grant %v", l2)
	}
}

func TestMutexCanceledWaitRemovesKey(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	l, err := recipes.NewMutex(newSession(t, c, 5), "locks/cancel").Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := recipes.NewMutex(newSession(t, c, 5), "locks/cancel").Lock(wctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock with expiring ctx = %v, want DeadlineExceeded", err)
	}
	waitForKeys(t, c, "locks/cancel/", 1)
	_ = l
}

// A key of the session's own left over under the lock (e.g. by a process
// that crashed between its put and its cleanup, on the same lease) keeps
// its place: the next Lock of that session puts over it, keeps its create
// revision as the token, and is ranked by it, ahead of a waiter that came
// after the leftover.
func TestMutexReusesLeftoverKey(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	s := newSession(t, c, 5)
	m := recipes.NewMutex(s, "locks/left")
	key := m.Prefix() + strconv.FormatInt(int64(s.Lease()), 16)
	put, err := c.Client().Put(ctx, key, "", clientv3.WithLease(s.Lease()))
	if err != nil {
		t.Fatal(err)
	}
	later := make(chan *recipes.Lock, 1)
	go func() {
		l, err := recipes.NewMutex(newSession(t, c, 5), "locks/left").Lock(ctx)
		if err != nil {
			t.Errorf("Lock of the later waiter: %v", err)
		}
		later <- l
	}()
	waitForKeys(t, c, "locks/left/", 2)
	l, err := m.Lock(ctx)
	if err != nil {
		t.Fatalf("Lock over the leftover key: %v", err)
	}
	if l.Key() != key || l.Token() != put.Header.Revision {
		t.Fatalf("granted key %s token %d, want %s token %d", l.Key(), l.Token(), key, put.Header.Revision)
	}
	select {
	case <-later:
		t.Fatal("the later waiter was granted while the leftover's owner holds the lock")
	default:
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	l2 := <-later
	if l2 == nil || l2.Token() <= l.Token() {
		t.Fatalf("later grant %v after token %d", l2, l.Token())
	}
	_ = l2.Unlock(ctx)
}

// Prefix is the normalized prefix under which every key of a lock lives,
// so that one etcdctl get --prefix lists its holders and waiters, and two
// spellings of it ("p" and "p//") name the same lock.
func TestLockPrefixes(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	type lockFunc func(context.Context) (*recipes.Lock, error)
	type primitive struct {
		prefix    func() string
		lock, try lockFunc // try fails with ErrLocked while lock holds
	}
	for _, tc := range []struct {
		name string
		open func(s *concurrency.Session, prefix string) primitive
	}{
		{"Mutex", func(s *concurrency.Session, p string) primitive {
			m := recipes.NewMutex(s, p)
			return primitive{m.Prefix, m.Lock, m.TryLock}
		}},
		{"RWMutex", func(s *concurrency.Session, p string) primitive {
			rw := recipes.NewRWMutex(s, p)
			return primitive{rw.Prefix, rw.RLock, rw.TryLock}
		}},
		{"Semaphore", func(s *concurrency.Session, p string) primitive {
			sem := recipes.NewSemaphore(s, p, 1)
			return primitive{sem.Prefix, sem.Acquire, sem.TryAcquire}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := "prefixes/" + tc.name + "/"
			a := tc.open(newSession(t, c, 5), "prefixes/"+tc.name)
			b := tc.open(newSession(t, c, 5), "prefixes/"+tc.name+"//")
			for _, p := range []primitive{a, b} {
				if got := p.prefix(); got != want {
					t.Fatalf("Prefix() = %q, want %q", got, want)
				}
			}
			l, err := a.lock(ctx)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := c.Client().Get(ctx, want, clientv3.WithPrefix(), clientv3.WithKeysOnly())
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Kvs) != 1 || string(resp.Kvs[0].Key) != l.Key() {
				t.Fatalf("keys under Prefix(): %v, want only the holder's %s", resp.Kvs, l.Key())
			}
			if _, err := b.try(ctx); !errors.Is(err, recipes.ErrLocked) {
				t.Fatalf("try under the other spelling while held = %v, want ErrLocked", err)
			}
			if err := l.Unlock(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A release by the head of a whole line records its token next to the
// prefix, bound to its lease, so that the waiter just behind needs no read
// of the line (chase). A release that does not mean "no key precedes the
// next waiter" records nothing: a reader of an RWMutex (earlier readers
// may hold) or a semaphore with several slots.
func TestReleaseRecordsHandoff(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	cli := c.Client()
	record := func(prefix string) (value string, lease clientv3.LeaseID, ok bool) {
		t.Helper()
		resp, err := cli.Get(ctx, prefix+"\x00released")
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Kvs) == 0 {
			return "", 0, false
		}
		return string(resp.Kvs[0].Value), clientv3.LeaseID(resp.Kvs[0].Lease), true
	}

	sa, sb := newSession(t, c, 5), newSession(t, c, 5)
	a, err := recipes.NewMutex(sa, "locks/handoff").Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bc := lockLater(t, ctx, recipes.NewMutex(sb, "locks/handoff").Lock)
	waitForKeys(t, c, "locks/handoff/", 2)
	if _, _, ok := record("locks/handoff"); ok {
		t.Fatal("a record before any release")
	}
	if err := a.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	b := <-bc
	if b == nil {
		t.FailNow()
	}
	if v, lease, ok := record("locks/handoff"); !ok || v != itoa(a.Token()) || lease != sa.Lease() {
		t.Fatalf("record after the first release = %q (lease %x, present %v), want %d with lease %x", v, lease, ok, a.Token(), sa.Lease())
	}
	if err := b.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _, ok := record("locks/handoff"); !ok || v != itoa(b.Token()) {
		t.Fatalf("record after the second release = %q, want %d", v, b.Token())
	}
	if err := sb.Close(); err != nil {
		t.Fatal(err)
	}
	if v, _, ok := record("locks/handoff"); ok {
		t.Fatalf("record %q outlived its session", v)
	}
	// Nothing outside the record and the keys of the line was written.
	resp, err := cli.Get(ctx, "locks/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 {
		t.Fatalf("keys left under locks/: %v %v", resp, err)
	}

	rw := recipes.NewRWMutex(newSession(t, c, 5), "locks/rwhandoff")
	r, err := rw.RLock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _, ok := record("locks/rwhandoff"); ok {
		t.Fatalf("a reader's release recorded %q", v)
	}
	w, err := rw.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _, ok := record("locks/rwhandoff"); !ok || v != itoa(w.Token()) {
		t.Fatalf("record after a writer's release = %q, want %d", v, w.Token())
	}

	sem := recipes.NewSemaphore(newSession(t, c, 5), "locks/semhandoff", 2)
	p, err := sem.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _, ok := record("locks/semhandoff"); ok {
		t.Fatalf("a release of a 2-slot semaphore recorded %q", v)
	}
}

// A role may grant only the lock's prefix, not the record beside it. A
// release then records nothing (after one refusal), a waiter refused the
// record written by a holder with more rights reads the line instead, and
// locks keep working under such a role either way.
func TestMutexPrefixOnlyRole(t *testing.T) {
	c := testserver.Start(t, testserver.WithAuth())
	ctx := testCtx(t, 30*time.Second)
	root := c.Client()
	// "locks/rbac1/": the app holds and waits; "locks/rbac2/": root holds
	// (and records), the app waits.
	prefixes := []string{"locks/rbac1/", "locks/rbac2/"}
	if _, err := root.RoleAdd(ctx, "locker"); err != nil {
		t.Fatal(err)
	}
	for _, p := range prefixes {
		if _, err := root.RoleGrantPermission(ctx, "locker", p, clientv3.GetPrefixRangeEnd(p), clientv3.PermissionType(clientv3.PermReadWrite)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := root.UserAdd(ctx, "app", "app-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := root.UserGrantRole(ctx, "app", "locker"); err != nil {
		t.Fatal(err)
	}
	app := func() *concurrency.Session {
		cli, err := c.NewClient(clientv3.Config{Username: "app", Password: "app-password", DialTimeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cli.Close() })
		return sessionOn(t, cli, 5)
	}
	record := func(p string) string { return strings.TrimSuffix(p, "/") + "\x00released" }
	for _, p := range prefixes {
		if _, err := app().Client().Get(ctx, record(p)); err == nil {
			t.Fatalf("the role grants %q: this test would not exercise a refusal", record(p))
		}
	}
	handOver := func(what string, sa, sb *concurrency.Session, pfx string) {
		t.Helper()
		a, err := recipes.NewMutex(sa, pfx).Lock(ctx)
		if err != nil {
			t.Fatalf("%s: Lock: %v", what, err)
		}
		bc := lockLater(t, ctx, recipes.NewMutex(sb, pfx).Lock)
		waitForKeys(t, c, pfx, 2)
		if err := a.Unlock(ctx); err != nil {
			t.Fatalf("%s: Unlock: %v", what, err)
		}
		b := <-bc
		if b == nil {
			t.FailNow()
		}
		if b.Token() <= a.Token() {
			t.Fatalf("%s: tokens %d then %d", what, a.Token(), b.Token())
		}
		if err := b.Unlock(ctx); err != nil {
			t.Fatalf("%s: second Unlock: %v", what, err)
		}
	}
	sa, sb := app(), app()
	for round := range 3 {
		handOver(fmt.Sprintf("app to app, round %d", round), sa, sb, prefixes[0])
	}
	if resp, err := root.Get(ctx, record(prefixes[0])); err != nil || len(resp.Kvs) != 0 {
		t.Fatalf("record written without permission: %v %v", resp, err)
	}
	// A refusal is the app's client's alone: after the app's release on
	// "locks/rbac2/" was refused the record, root's release in the same
	// process still records its token.
	sr := newSession(t, c, 5)
	for _, s := range []*concurrency.Session{sb, sr} {
		g, err := recipes.NewMutex(s, prefixes[1]).Lock(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.Unlock(ctx); err != nil {
			t.Fatal(err)
		}
		if s == sr {
			resp, err := root.Get(ctx, record(prefixes[1]))
			if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != strconv.FormatInt(g.Token(), 10) {
				t.Fatalf("root's release after the app's refusal: record %v %v, want token %d", resp, err, g.Token())
			}
		}
	}
	// The waiter meets the refusal only if it watched the holder's key
	// before the release (else its first read finds the line empty):
	// several rounds make that near certain, and every round must pass.
	for round := range 5 {
		handOver(fmt.Sprintf("root to app, round %d", round), sr, sb, prefixes[1])
	}
	if resp, err := root.Get(ctx, record(prefixes[1])); err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("root's release recorded nothing: %v %v", resp, err)
	}
}
