package recipes_test

import (
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

func TestFencedTxnAppliesOnce(t *testing.T) {
	c := testserver.Start(t)
	ctx := testCtx(t, 30*time.Second)
	s := newSession(t, c, 10)
	cli := s.Client()
	l, err := recipes.NewMutex(s, "fenced/lock").Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := recipes.FencedTxn(s, "fenced/markers").If(l.Guard()).Then(clientv3.OpPut("fenced/counter", "1"))
	out, resp, err := w.Commit(ctx)
	if err != nil || out != recipes.FencedApplied || resp.Responses[0].GetResponsePut() == nil {
		t.Fatalf("first Commit: %v %v %v", out, resp, err)
	}
	// A second arrival of the same write (what a resend is) changes
	// nothing and says so.
	out, _, err = w.Commit(ctx)
	if err != nil || out != recipes.FencedAppliedBefore {
		t.Fatalf("second Commit: %v %v, want applied before", out, err)
	}
	got, err := cli.Get(ctx, "fenced/counter")
	if err != nil || len(got.Kvs) != 1 || got.Kvs[0].Version != 1 {
		t.Fatalf("counter after two commits: %v %v, want written once", got, err)
	}
	m, err := cli.Get(ctx, w.Marker())
	if err != nil || len(m.Kvs) != 1 || clientv3.LeaseID(m.Kvs[0].Lease) != s.Lease() {
		t.Fatalf("marker %s: %v %v, want bound to the session", w.Marker(), m, err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	// Even after the guard fails, the earlier application is reported.
	if out, _, err := w.Commit(ctx); err != nil || out != recipes.FencedAppliedBefore {
		t.Fatalf("Commit after Unlock of an applied write: %v %v", out, err)
	}
	late := recipes.FencedTxn(s, "fenced/markers").If(l.Guard()).Then(clientv3.OpPut("fenced/counter", "2"))
	if out, _, err := late.Commit(ctx); err != nil || out != recipes.FencedNotApplied || out.String() != "not applied" {
		t.Fatalf("Commit after Unlock: %v %v, want not applied", out, err)
	}
	if out, _, err := recipes.FencedTxn(s, "/").Commit(ctx); !errors.Is(err, recipes.ErrInvalidArgument) || out != recipes.FencedUnknown {
		t.Fatalf("empty marker prefix: %v %v", out, err)
	}
}
