package client_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

func TestPrefixOperations(t *testing.T) {
	cluster := testserver.Start(t, testserver.WithMembers(1))
	ctx := testCtx(t)
	cl := open(t, client.Config{Endpoints: cluster.Endpoints()})
	raw := cluster.Client()

	t.Run("read in pages at one revision", func(t *testing.T) {
		prefix := "/prefix/pages/"
		const n = 2500 // more than one page
		var ops []client.GuardedOp
		for i := range n {
			ops = append(ops, client.GuardedOp{Key: fmt.Sprintf("%s%05d", prefix, i), Value: []byte{byte(i), 0xff}})
		}
		applied, err := cl.ApplyGuarded(ctx, ops, 0)
		if err != nil || len(applied) != n {
			t.Fatalf("applied %d of %d: %v", len(applied), n, err)
		}
		// One transaction per 128 operations: 20 distinct revisions.
		revs := map[int64]bool{}
		for _, a := range applied {
			revs[a.Revision] = true
		}
		if len(revs) != (n+client.DefaultMaxTxnOps-1)/client.DefaultMaxTxnOps {
			t.Errorf("%d transactions", len(revs))
		}
		// Neighbours outside the prefix are not read.
		if _, err := raw.Put(ctx, "/prefix/pages0", "x"); err != nil {
			t.Fatal(err)
		}
		kvs, rev, err := cl.ReadPrefix(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		if len(kvs) != n || rev == 0 {
			t.Fatalf("read %d keys at %d", len(kvs), rev)
		}
		for i, kv := range kvs {
			if kv.Key != ops[i].Key || string(kv.Value) != string(ops[i].Value) || kv.ModRevision != applied[i].Revision {
				t.Fatalf("key %d: %+v, want %+v", i, kv, applied[i])
			}
		}
		if _, _, err := cl.ReadPrefix(ctx, ""); err == nil {
			t.Error("empty prefix read")
		}
	})

	t.Run("pages shrink to the size of the values", func(t *testing.T) {
		prefix := "/prefix/big/"
		const n = 4500 // pages of 2,000, then 1,024 keys of 4 KiB
		var ops []client.GuardedOp
		for i := range n {
			v := make([]byte, 4096)
			for j := range v {
				v[j] = byte(i + j)
			}
			ops = append(ops, client.GuardedOp{Key: fmt.Sprintf("%s%05d", prefix, i), Value: v})
		}
		applied, err := cl.ApplyGuarded(ctx, ops, 0)
		if err != nil || len(applied) != n {
			t.Fatalf("applied %d of %d: %v", len(applied), n, err)
		}
		kvs, rev, err := cl.ReadPrefix(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		if len(kvs) != n || rev < applied[n-1].Revision {
			t.Fatalf("read %d keys at %d", len(kvs), rev)
		}
		for i, kv := range kvs {
			if kv.Key != ops[i].Key || string(kv.Value) != string(ops[i].Value) || kv.ModRevision != applied[i].Revision {
				t.Fatalf("key %d: %s at %d, want %s at %d", i, kv.Key, kv.ModRevision, ops[i].Key, applied[i].Revision)
			}
		}
		if _, err := raw.Delete(ctx, prefix, clientv3.WithPrefix()); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("one transaction is all or nothing", func(t *testing.T) {
		prefix := "/prefix/atomic/"
		created, err := cl.ApplyGuarded(ctx, []client.GuardedOp{{Key: prefix + "a", Value: []byte("1")}, {Key: prefix + "b", Value: []byte("1")}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		// Someone changes b after we read it.
		if _, err := raw.Put(ctx, prefix+"b", "theirs"); err != nil {
			t.Fatal(err)
		}
		_, err = cl.ApplyGuarded(ctx, []client.GuardedOp{
			{Key: prefix + "a", Value: []byte("2"), ModRevision: created[0].Revision},
			{Key: prefix + "b", Value: []byte("2"), ModRevision: created[1].Revision},
			{Key: prefix + "c", Value: []byte("2")},
		}, 0)
		var ce *client.ConflictError
		if !errors.As(err, &ce) || !errors.Is(err, client.ErrConflict) || len(ce.Conflicts) != 1 || ce.Conflicts[0].Key != prefix+"b" || ce.Conflicts[0].Actual <= created[1].Revision {
			t.Fatalf("got %v", err)
		}
		kvs, _, _ := cl.ReadPrefix(ctx, prefix)
		if len(kvs) != 2 || string(kvs[0].Value) != "1" || string(kvs[1].Value) != "theirs" {
			t.Fatalf("half applied: %+v", kvs)
		}
		// Creating over an existing key is a conflict too.
		_, err = cl.ApplyGuarded(ctx, []client.GuardedOp{{Key: prefix + "a", Value: []byte("x")}}, 0)
		if !errors.As(err, &ce) || ce.Conflicts[0].Expected != 0 || ce.Conflicts[0].Actual != created[0].Revision {
			t.Fatalf("create over existing: %v", err)
		}
	})

	t.Run("multi-transaction batch stops at the first conflict and reports what it applied", func(t *testing.T) {
		prefix := "/prefix/multi/"
		var ops []client.GuardedOp
		for i := range 5 {
			ops = append(ops, client.GuardedOp{Key: fmt.Sprintf("%s%d", prefix, i), Value: []byte("v")})
		}
		if _, err := raw.Put(ctx, prefix+"3", "taken"); err != nil {
			t.Fatal(err)
		}
		applied, err := cl.ApplyGuarded(ctx, ops, 2) // [0 1] [2 3] [4]
		if !errors.Is(err, client.ErrConflict) || len(applied) != 2 {
			t.Fatalf("applied %d: %v", len(applied), err)
		}
		resp, _ := raw.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if resp.Count != 3 { // 0, 1 and the foreign 3
			t.Fatalf("%d keys", resp.Count)
		}
	})

	t.Run("deleting a key that is already gone is fine", func(t *testing.T) {
		prefix := "/prefix/gone/"
		created, err := cl.ApplyGuarded(ctx, []client.GuardedOp{{Key: prefix + "a", Value: []byte("1")}, {Key: prefix + "b", Value: []byte("1")}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Delete(ctx, prefix+"a"); err != nil {
			t.Fatal(err)
		}
		applied, err := cl.ApplyGuarded(ctx, []client.GuardedOp{
			{Key: prefix + "a", Delete: true, ModRevision: created[0].Revision},
			{Key: prefix + "b", Delete: true, ModRevision: created[1].Revision},
		}, 0)
		if err != nil || len(applied) != 2 {
			t.Fatalf("applied %v: %v", applied, err)
		}
		resp, _ := raw.Get(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if resp.Count != 0 {
			t.Fatalf("%d keys left", resp.Count)
		}
	})

	t.Run("too many operations for the server", func(t *testing.T) {
		var ops []client.GuardedOp
		for i := range 200 {
			ops = append(ops, client.GuardedOp{Key: fmt.Sprintf("/prefix/toomany/%d", i), Value: []byte("v")})
		}
		_, err := cl.ApplyGuarded(ctx, ops, 200)
		if err == nil || !strings.Contains(err.Error(), "set max_txn_ops") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestRangeAndLease(t *testing.T) {
	cluster := testserver.Start(t, testserver.WithMembers(1))
	ctx := testCtx(t)
	cl := open(t, client.Config{Endpoints: cluster.Endpoints()})

	l, err := cl.GrantLease(ctx, 600)
	if err != nil || l.GrantedTTL != 600 {
		t.Fatalf("grant: %+v %v", l, err)
	}
	var ops []client.GuardedOp
	for _, k := range []string{"/r/a", "/r/b", "/r/c"} {
		ops = append(ops, client.GuardedOp{Key: k, Value: []byte("v" + k), Lease: l.ID})
	}
	applied, err := cl.ApplyGuarded(ctx, ops, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cluster.Client().Put(ctx, "/r/b", "v2"); err != nil {
		t.Fatal(err)
	}

	got, err := cl.GetLease(ctx, l.ID, true)
	if err != nil || got.GrantedTTL != 600 || got.TTL <= 0 || len(got.Keys) != 2 { // /r/b lost its lease
		t.Fatalf("lease: %+v %v", got, err)
	}
	if ttl, err := cl.RenewLease(ctx, l.ID); err != nil || ttl != 600 {
		t.Fatalf("renew: %d %v", ttl, err)
	}

	all, err := cl.GetRange(ctx, client.Range{Key: "/r/", End: client.PrefixRangeEnd("/r/")})
	if err != nil || all.Count != 3 || len(all.Kvs) != 3 || all.More || string(all.Kvs[1].Value) != "v2" || all.Kvs[0].Lease != l.ID {
		t.Fatalf("range: %+v %v", all, err)
	}
	limited, err := cl.GetRange(ctx, client.Range{Key: "/r/", End: client.PrefixRangeEnd("/r/"), Limit: 1, KeysOnly: true})
	if err != nil || limited.Count != 3 || len(limited.Kvs) != 1 || !limited.More || len(limited.Kvs[0].Value) != 0 {
		t.Fatalf("limited: %+v %v", limited, err)
	}
	past, err := cl.GetRange(ctx, client.Range{Key: "/r/b", Revision: applied[0].Revision})
	if err != nil || len(past.Kvs) != 1 || string(past.Kvs[0].Value) != "v/r/b" {
		t.Fatalf("past: %+v %v", past, err)
	}
	from, err := cl.GetRange(ctx, client.Range{Key: "/r/b", End: client.NoPrefixEnd})
	if err != nil || len(from.Kvs) != 2 {
		t.Fatalf("from key: %+v %v", from, err)
	}

	if err := cl.RevokeLease(ctx, l.ID); err != nil {
		t.Fatal(err)
	}
	if err := cl.RevokeLease(ctx, l.ID); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	if _, err := cl.GetLease(ctx, l.ID, false); !errors.Is(err, client.ErrLeaseNotFound) {
		t.Fatalf("revoked lease: %v", err)
	}
	if _, err := cl.RenewLease(ctx, l.ID); !errors.Is(err, client.ErrLeaseNotFound) {
		t.Fatalf("renew revoked lease: %v", err)
	}
	left, _ := cl.GetRange(ctx, client.Range{Key: "/r/", End: client.PrefixRangeEnd("/r/")})
	if len(left.Kvs) != 1 || left.Kvs[0].Key != "/r/b" {
		t.Fatalf("after revoke: %+v", left.Kvs)
	}
}

func TestStatus(t *testing.T) {
	cluster := testserver.Start(t, testserver.WithMembers(3))
	ctx := testCtx(t)
	cl := open(t, client.Config{Endpoints: cluster.Endpoints()})
	eps := append(cluster.Endpoints(), "http://127.0.0.1:1")
	st := cl.Status(ctx, eps)
	if len(st) != 4 {
		t.Fatal(st)
	}
	leaders := 0
	for _, s := range st[:3] {
		if s.Err != nil || s.MemberID == 0 || s.Version == "" || s.DBSize == 0 || s.RaftTerm == 0 || s.RaftIndex == 0 {
			t.Errorf("status %+v", s)
		}
		if s.IsLeader() {
			leaders++
		}
	}
	if leaders != 1 {
		t.Errorf("%d leaders", leaders)
	}
	if st[3].Err == nil || !errors.Is(st[3].Err, client.ErrUnreachable) {
		t.Errorf("unreachable endpoint: %+v", st[3])
	}
	if got := client.FormatMemberID(0x8e9e05c52164694d); got != "8e9e05c52164694d" {
		t.Error(got)
	}
}
