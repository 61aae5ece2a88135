package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-semver/semver"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/snapshot"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver/sshhost"
)

// sourceSnapshotParallel is sourceSnapshot with 16 writers, for benchmarks
// with many keys.
func sourceSnapshotParallel(tb testing.TB, dir string, keys, valueSize int) (RestoreSource, map[string]int64) {
	return sourceSnapshotN(tb, dir, keys, valueSize, 16)
}

func mustVersion(tb testing.TB, s string) semver.Version {
	v, err := snapshot.ParseVersion(s)
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// sourceSnapshot writes keys before under "/before/" into a one-member
// source cluster, snapshots it into dir, then writes keys under "/after/".
// It returns the snapshot's source and the mod revision of every key
// written before.
func sourceSnapshot(tb testing.TB, dir string, before, valueSize int) (RestoreSource, map[string]int64) {
	return sourceSnapshotN(tb, dir, before, valueSize, 1)
}

func sourceSnapshotN(tb testing.TB, dir string, before, valueSize, writers int) (RestoreSource, map[string]int64) {
	tb.Helper()
	src := testserver.Start(tb, testserver.WithMembers(1))
	cli, err := src.NewClient(clientv3.Config{Endpoints: src.Endpoints()[:1]})
	if err != nil {
		tb.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	revs := map[string]int64{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Go(func() {
			v := make([]byte, valueSize)
			for i := w; i < before; i += writers {
				_, _ = rand.Read(v)
				k := fmt.Sprintf("/before/%08d", i)
				resp, err := cli.Put(ctx, k, string(v))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				revs[k] = resp.Header.Revision
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		tb.Fatal(err)
	}
	p := filepath.Join(dir, "snap.db")
	if _, err := snapshot.Save(ctx, cli, p); err != nil {
		tb.Fatal(err)
	}
	for i := range 5 {
		if _, err := cli.Put(ctx, fmt.Sprintf("/after/%d", i), "later"); err != nil {
			tb.Fatal(err)
		}
	}
	sum, err := snapshot.FileSHA256(p)
	if err != nil {
		tb.Fatal(err)
	}
	return RestoreSource{Path: p, SHA256: sum}, revs
}

func TestClusterRestore(t *testing.T) {
	if testing.Short() {
		t.Skip("starts clusters over SSH")
	}
	hosts := sshhost.Start(t, 3)
	providerBinary(t)
	s := testSpec(hosts, 3, "restored", 15379)
	t.Cleanup(func() { destroy(t, s, true) })
	src, revs := sourceSnapshot(t, t.TempDir(), 100, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// A wrong sha256 and a truncated file are refused before anything
	// changes.
	bad := src
	bad.SHA256 = strings.Repeat("0", 64)
	c := New(s, logProgress(t))
	defer c.Close()
	_, err := c.Restore(ctx, bad)
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Attr != "restore" || fe.Field != "sha256" || !NothingChanged(err) {
		t.Fatalf("restore with a wrong sha256: %v", err)
	}
	data, _ := os.ReadFile(src.Path)
	trunc := filepath.Join(t.TempDir(), "trunc.db")
	if err := os.WriteFile(trunc, data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	sum, _ := snapshot.FileSHA256(trunc)
	_, err = c.Restore(ctx, RestoreSource{Path: trunc, SHA256: sum})
	if !errors.As(err, &fe) || fe.Field != "snapshot" || !NothingChanged(err) {
		t.Fatalf("restore of a truncated file: %v", err)
	}
	// The snapshot went up while it was checked; its copies, and the
	// directories they created, are gone.
	for _, h := range hosts {
		if entries, _ := os.ReadDir(h.BaseDir); len(entries) > 0 {
			t.Fatalf("%s: a refused restore left %v in %s", h.Name, entries, h.BaseDir)
		}
	}

	begin := time.Now()
	st, err := c.Restore(ctx, src)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	t.Logf("restore on 3 nodes: %s", time.Since(begin).Round(time.Millisecond))
	checkMembers(t, st, "n1", "n2", "n3")
	cli := etcdClient(t, s)
	got, err := cli.Get(ctx, "/before/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Kvs) != len(revs) {
		t.Fatalf("%d keys restored, want %d", len(got.Kvs), len(revs))
	}
	for _, kv := range got.Kvs {
		if revs[string(kv.Key)] != kv.ModRevision {
			t.Fatalf("%s: mod revision %d, want %d", kv.Key, kv.ModRevision, revs[string(kv.Key)])
		}
	}
	if after, err := cli.Get(ctx, "/after/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || after.Count != 0 {
		t.Fatalf("keys written after the snapshot: %v %v", after, err)
	}

	// A second restore onto the same nodes: their data dirs hold data.
	c2 := New(s)
	defer c2.Close()
	_, err = c2.Restore(ctx, src)
	if !errors.As(err, &fe) || fe.Attr != "restore" || !strings.Contains(err.Error(), "holds data") && !strings.Contains(err.Error(), "running member") || !NothingChanged(err) {
		t.Fatalf("restore onto nodes with data: %v", err)
	}
}

// stopAndWipe stops n's member and deletes its data dir.
func stopAndWipe(t *testing.T, c *Cluster, n Node) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := c.probe(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := node.RemoveDir(ctx, st.cl, c.spec.layout(n).DataDir); err != nil {
		t.Fatal(err)
	}
}

func TestClusterDisasterRecovery(t *testing.T) {
	if testing.Short() {
		t.Skip("starts clusters over SSH")
	}
	hosts := sshhost.Start(t, 3)
	providerBinary(t)
	s := withTLS(t, testSpec(hosts, 3, "dr", 16379))
	t.Cleanup(func() { destroy(t, s, true) })
	applyOK(t, s, ApplyOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cli := etcdClient(t, s)
	for i := range 20 {
		if _, err := cli.Put(ctx, fmt.Sprintf("/dr/%d", i), fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
	}
	c := New(s, logProgress(t))
	defer c.Close()
	stopAndWipe(t, c, s.Nodes[1])
	stopAndWipe(t, c, s.Nodes[2])

	loss, err := c.CheckQuorum(ctx, Recovery{}, true)
	if err != nil || loss == nil || fmt.Sprint(loss.Dead) != "[n2 n3]" || fmt.Sprint(loss.Survivors) != "[n1]" {
		t.Fatalf("check quorum: %v %v", loss, err)
	}
	var fe *FieldError
	if _, err := c.CheckQuorum(ctx, Recovery{FromNode: "n3"}, true); !errors.As(err, &fe) || fe.Field != "from_node" {
		t.Fatalf("check quorum from a wiped node: %v", err)
	}
	if _, err := c.CheckQuorum(ctx, Recovery{FromNode: "nx"}, true); !errors.As(err, &fe) || fe.Field != "from_node" {
		t.Fatalf("check quorum from no node: %v", err)
	}
	var qe *QuorumLostError
	if _, err := c.Apply(ctx, ApplyOptions{}); !errors.As(err, &qe) || !NothingChanged(err) {
		t.Fatalf("apply without recovery: %v", err)
	}
	if _, err := c.Apply(ctx, ApplyOptions{RecoverFrom: "n2"}); !errors.As(err, &fe) || !NothingChanged(err) {
		t.Fatalf("apply with recovery from a wiped node: %v", err)
	}
	begin := time.Now()
	st, err := c.Apply(ctx, ApplyOptions{RecoverFrom: "n1"})
	if err != nil {
		t.Fatalf("recovery: %v", err)
	}
	t.Logf("disaster recovery from one survivor to 3 healthy members: %s", time.Since(begin).Round(time.Millisecond))
	checkMembers(t, st, "n1", "n2", "n3")
	got, err := cli.Get(ctx, "/dr/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || got.Count != 20 {
		t.Fatalf("after recovery: %v %v", got, err)
	}
	// Converged: applying again changes nothing, and the quorum is fine.
	if loss, err := c.CheckQuorum(ctx, Recovery{}, true); loss != nil || err != nil {
		t.Fatalf("check quorum after recovery: %v %v", loss, err)
	}
	applyOK(t, s, ApplyOptions{RecoverFrom: "n1"})
}

// BenchmarkRestore measures a restore of a snapshot onto 3 fresh nodes (as
// Restore does it for a create: check the file, upload the binary and the
// snapshot to every node, etcd's restore on each, start, wait until
// healthy) against the floor: etcd's restore alone, of the same file, into
// one local data dir. The snapshot holds RESTORE_BENCH_MB (default 64) MiB
// of random 1 KiB values.
//
//	go test -run '^$' -bench BenchmarkRestore -benchtime 2x ./internal/cluster
func BenchmarkRestore(b *testing.B) {
	mb := 64
	if v := os.Getenv("RESTORE_BENCH_MB"); v != "" {
		if _, err := fmt.Sscan(v, &mb); err != nil {
			b.Fatal(err)
		}
	}
	hosts := sshhost.Start(b, 3)
	providerBinary(b)
	s := testSpec(hosts, 3, "benchrs", 17379)
	b.Cleanup(func() { destroy(b, s, true) })
	src, _ := sourceSnapshotParallel(b, b.TempDir(), mb*1024, 1024)
	var total, floor time.Duration
	for b.Loop() {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "floor")
		begin := time.Now()
		if err := snapshot.Restore(nil, snapshot.RestoreConfig{SnapshotPath: src.Path, Name: "n1", OutputDataDir: dir,
			PeerURLs: []string{"http://127.0.0.1:2380"}, InitialCluster: "n1=http://127.0.0.1:2380", InitialClusterToken: "floor"},
			mustVersion(b, snapshot.BundledVersion)); err != nil {
			b.Fatal(err)
		}
		floor += time.Since(begin)
		b.StartTimer()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		begin = time.Now()
		c := New(s, logProgress(b))
		if _, err := c.Restore(ctx, src); err != nil {
			cancel()
			b.Fatal(err)
		}
		total += time.Since(begin)
		c.Close()
		cancel()
		b.StopTimer()
		destroy(b, s, true)
		b.StartTimer()
	}
	fi, _ := os.Stat(src.Path)
	b.ReportMetric(float64(fi.Size())/(1<<20), "MiB")
	b.ReportMetric(total.Seconds()/float64(b.N), "s/restore-3-nodes")
	b.ReportMetric(floor.Seconds()/float64(b.N), "s/etcdutl-restore-1-dir")
	b.ReportMetric(total.Seconds()/floor.Seconds(), "x-floor")
}
