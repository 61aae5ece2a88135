package recipes_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

func TestResumeMutex(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	cli := newClient(t, c)
	old := sessionOn(t, cli, 10)
	l, err := recipes.NewMutex(old, "resume/m").Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// In this process the key is still held by l.
	if _, err := recipes.ResumeMutex(ctx, old, "resume/m", l.Token()); !errors.Is(err, recipes.ErrLocked) {
		t.Fatalf("resume of a lock held in-process: %v, want ErrLocked", err)
	}
	// "Restart": a new client and session on the same lease.
	old.Orphan()
	cli2 := newClient(t, c)
	s, err := concurrency.NewSession(cli2, concurrency.WithLease(old.Lease()))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := recipes.ResumeMutex(ctx, s, "resume/m", l.Token()+1); !errors.Is(err, recipes.ErrTokenMismatch) || !errors.Is(err, recipes.ErrInvalidArgument) {
		t.Fatalf("resume with a wrong token: %v, want ErrTokenMismatch", err)
	}
	r, err := recipes.ResumeMutex(ctx, s, "resume/m/", l.Token())
	if err != nil {
		t.Fatalf("ResumeMutex: %v", err)
	}
	if r.Token() != l.Token() || r.Key() != l.Key() {
		t.Fatalf("resumed %d %s, want %d %s", r.Token(), r.Key(), l.Token(), l.Key())
	}
	resp, err := cli2.Txn(ctx).If(r.Guard()).Then(clientv3.OpPut("resume/data", "x")).Commit()
	if err != nil || !resp.Succeeded {
		t.Fatalf("guarded write of the resumed lock: %v %v", resp, err)
	}
	if err := r.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := recipes.ResumeMutex(ctx, s, "resume/m", l.Token()); !errors.Is(err, recipes.ErrLockLost) {
		t.Fatalf("resume after Unlock: %v, want ErrLockLost", err)
	}
	// A waiting key is not a lock: it is withdrawn.
	holder, err := recipes.NewMutex(newSession(t, c, 10), "resume/w").Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error, 1)
	go func() {
		_, err := recipes.NewMutex(s, "resume/w").Lock(ctx)
		waiting <- err
	}()
	waitForKeys(t, c, "resume/w/", 2)
	kvs, err := cli.Get(ctx, "resume/w/", append(clientv3.WithLastCreate(), clientv3.WithLimit(1))...)
	if err != nil || len(kvs.Kvs) != 1 {
		t.Fatal(err)
	}
	// Another client on the same lease (the waiter's own client gates
	// the key in-process) tries to resume the waiting key as a lock.
	s3, err := concurrency.NewSession(newClient(t, c), concurrency.WithLease(s.Lease()))
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Orphan()
	if _, err := recipes.ResumeMutex(ctx, s3, "resume/w", kvs.Kvs[0].CreateRevision); !errors.Is(err, recipes.ErrLockLost) {
		t.Fatalf("resume of a waiting key: %v, want ErrLockLost", err)
	}
	// The waiting key was withdrawn: the waiter fails.
	if err := <-waiting; !errors.Is(err, recipes.ErrLockLost) {
		t.Fatalf("waiter after its key was withdrawn: %v", err)
	}
	if err := holder.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestLockAllErrors(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	s := newSession(t, c, 10)
	for _, tc := range []struct {
		a, b string
		want error
	}{
		{"all/a", "all/a/", recipes.ErrSamePrefix},
		{"all/a", "all/a/b", recipes.ErrSamePrefix},
	} {
		if _, err := recipes.LockAll(ctx, recipes.NewMutex(s, tc.a), recipes.NewMutex(s, tc.b)); !errors.Is(err, tc.want) || !errors.Is(err, recipes.ErrInvalidArgument) {
			t.Fatalf("LockAll(%s, %s) = %v, want %v", tc.a, tc.b, err, tc.want)
		}
	}
	if _, err := recipes.LockAll(ctx, recipes.NewMutex(s, "all/a"), recipes.NewMutex(newSession(t, c, 10), "all/b")); !errors.Is(err, recipes.ErrMixedSessions) {
		t.Fatalf("mixed sessions: %v", err)
	}
	if _, err := recipes.LockAll(ctx); !errors.Is(err, recipes.ErrInvalidArgument) {
		t.Fatalf("no mutexes: %v", err)
	}
	resp, err := c.Client().Get(ctx, "all/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 {
		t.Fatalf("rejected calls wrote %v keys (%v)", resp, err)
	}
}

func TestLockAll(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 60*time.Second)
	s := newSession(t, c, 10)
	cli := s.Client()
	ms := []*recipes.Mutex{recipes.NewMutex(s, "all/c"), recipes.NewMutex(s, "all/a"), recipes.NewMutex(s, "all/b")}
	ml, err := recipes.LockAll(ctx, ms...)
	if err != nil {
		t.Fatal(err)
	}
	locks := ml.Locks()
	if len(locks) != 3 || locks[0].Key() >= locks[1].Key() || locks[1].Key() >= locks[2].Key() {
		t.Fatalf("locks not in the global order: %v", locks)
	}
	resp, err := cli.Txn(ctx).If(ml.Guard()...).Then(clientv3.OpPut("all/data", "1")).Commit()
	if err != nil || !resp.Succeeded {
		t.Fatalf("write guarded by all: %v %v", resp, err)
	}
	mctx := ml.Context()
	del, err := cli.Delete(ctx, locks[1].Key())
	if err != nil {
		t.Fatal(err)
	}
	<-mctx.Done()
	var le *recipes.LossError
	if cause := context.Cause(mctx); !errors.As(cause, &le) || le.Revision != del.Header.Revision || le.Key != locks[1].Key() {
		t.Fatalf("cause after losing one lock: %v", cause)
	}
	if err := ml.Unlock(ctx); !errors.Is(err, recipes.ErrLockLost) {
		t.Fatalf("Unlock with one lock lost = %v, want ErrLockLost", err)
	}
	if n, _ := cli.Get(ctx, "all/", clientv3.WithPrefix(), clientv3.WithCountOnly()); n.Count != 1 { // all/data
		t.Fatalf("%d keys under all/ after Unlock, want only the data", n.Count)
	}

	// Contended: b is held by another session; LockAll waits for it and
	// holds nothing else meanwhile that would block b's holder.
	other, err := recipes.NewMutex(newSession(t, c, 10), "all/b").Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	var ml2 *recipes.MultiLock
	go func() {
		var err error
		ml2, err = recipes.LockAll(ctx, ms...)
		got <- err
	}()
	waitForKeys(t, c, "all/b/", 2)
	if err := other.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if err := ml2.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestLockAllNoDeadlock runs LockAll on overlapping sets in opposite
// orders from several sessions and checks that every call returns and
// that no two holders of one prefix overlap.
func TestLockAllNoDeadlock(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 120*time.Second)
	sets := [][]string{{"nd/a", "nd/b"}, {"nd/b", "nd/a"}, {"nd/b", "nd/c"}, {"nd/c", "nd/a", "nd/b"}}
	var mu sync.Mutex
	held := map[string]int{}
	var wg sync.WaitGroup
	errc := make(chan error, len(sets))
	for i, set := range sets {
		s := newSession(t, c, 10)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 15 {
				var ms []*recipes.Mutex
				for _, p := range set {
					ms = append(ms, recipes.NewMutex(s, p))
				}
				ml, err := recipes.LockAll(ctx, ms...)
				if err != nil {
					errc <- err
					return
				}
				mu.Lock()
				for _, p := range set {
					held[p]++
					if held[p] > 1 {
						errc <- errors.New("two holders of " + p + " in set " + string(rune('0'+i)))
					}
				}
				mu.Unlock()
				mu.Lock()
				for _, p := range set {
					held[p]--
				}
				mu.Unlock()
				if err := ml.Unlock(ctx); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}
