package maintenance

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver/stocketcd"
)

// benchBytesEnv sets the database size BenchmarkDefragment works on
// (default 256 MiB; 1073741824 for the 1 GiB of issue 13): half of it live
// data, half freed before each defragmentation.
const benchBytesEnv = "DEFRAG_BENCH_BYTES"

// BenchmarkDefragment defragments the same member of a 3-member cluster,
// whose database is about half free each time, alternately with Run (our
// code, in process, including its measurements before and after) and with
// Debian's `etcdctl defrag` (a process of its own), and reports both times
// and their ratio (x-etcdctl < 1: ours is faster). Between two
// defragmentations it writes, deletes and compacts away half the database
// again; that is not timed.
func BenchmarkDefragment(b *testing.B) {
	size := int64(256 << 20)
	if v := os.Getenv(benchBytesEnv); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive byte count", benchBytesEnv, v)
		}
		size = n
	}
	deb := stocketcd.Require(b, stocketcd.V34Debian)
	c := testserver.Start(b, testserver.WithMembers(3), testserver.WithQuotaBackendBytes(2*size+(256<<20)))
	cli := c.Client()
	if _, err := c.Fill(context.Background(), "/bench/", size/2); err != nil {
		b.Fatal(err)
	}
	cl := openClient(b, c)
	target := c.Members()[0]
	ep := target.ClientURLs[0]
	var eps []string
	for _, m := range c.Members() {
		eps = append(eps, m.ClientURLs[0])
	}

	fragment := func() {
		if _, err := c.Fill(context.Background(), "/churn/", size/2); err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		// One delete of all would outlast etcd's request timeout.
		const chunk = 8192
		var rev int64
		for k := int64(0); k < size/2/1024; k += chunk {
			var err error
			for range 20 {
				var resp *clientv3.DeleteResponse
				resp, err = cli.Delete(ctx, fmt.Sprintf("/churn/%09d", k), clientv3.WithRange(fmt.Sprintf("/churn/%09d", k+chunk)))
				if err == nil {
					rev = resp.Header.Revision
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		if _, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
			b.Fatal(err)
		}
		// db_size_in_use counts freed pages from the second commit after
		// the compaction: write until the members report them. All three,
		// not only the target: the members share this process's two cores
		// and one disk, and a member still compacting would slow down
		// whichever defragmentation is timed next.
		for i := 0; ; i++ {
			settled := true
			var st client.EndpointStatus
			for _, s := range cl.Status(ctx, eps) {
				if s.Err != nil || s.Fragmentation() <= 0.4 {
					settled, st = false, s
				}
			}
			if settled {
				return
			}
			if _, err := cli.Put(ctx, "/tick", strconv.Itoa(i)); err != nil {
				b.Fatal(err)
			}
			select {
			case <-ctx.Done():
				b.Fatalf("the members did not all become 40%% free: %+v", st)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	defrag := func(ours bool) time.Duration {
		fragment()
		// Both tools start from the same state: the fragmenting writes
		// flushed to disk, and this process's heap just collected. The
		// three members live in this process (a heap of about 2.5 GiB at
		// 1 GiB of data), so one garbage collection more or less during a
		// defragmentation moved either tool's time by a second or more.
		syscall.Sync()
		runtime.GC()
		var gc0, gc1 runtime.MemStats
		runtime.ReadMemStats(&gc0)
		before := cl.Status(context.Background(), []string{ep})[0].DBSize
		start := time.Now()
		if ours {
			res, err := Run(context.Background(), cl, Policy{FreeRatio: 0.3}, map[uint64]bool{target.ID: true})
			if err != nil || len(res.Done) != 1 {
				b.Fatalf("run: %v, done %v, skipped %v", err, res.Done, res.Skipped)
			}
		} else {
			cmd := exec.Command(deb.Etcdctl, "--endpoints", ep, "--command-timeout", "10m", "defrag")
			cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("%v: %v\n%s", cmd.Args, err, out)
			}
		}
		d := time.Since(start)
		runtime.ReadMemStats(&gc1)
		after := cl.Status(context.Background(), []string{ep})[0].DBSize
		b.Logf("ours=%t: %s → %s in %s (%d garbage collections during it)", ours, FormatBytes(before), FormatBytes(after), d, gc1.NumGC-gc0.NumGC)
		return d
	}
	var oursT, theirsT time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Alternate the order, so that neither always goes first.
		first := i%2 == 0
		d1 := defrag(first)
		d2 := defrag(!first)
		if !first {
			d1, d2 = d2, d1
		}
		oursT += d1
		theirsT += d2
	}
	b.StopTimer()
	b.ReportMetric(oursT.Seconds()/float64(b.N), "s/defrag-ours")
	b.ReportMetric(theirsT.Seconds()/float64(b.N), "s/defrag-etcdctl")
	b.ReportMetric(oursT.Seconds()/theirsT.Seconds(), "x-etcdctl")
	b.ReportMetric(float64(size)/(1<<20), "MiB-db")
	b.ReportMetric(0, "ns/op")
}
