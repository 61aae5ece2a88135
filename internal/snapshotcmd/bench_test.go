package snapshotcmd

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver/stocketcd"
)

// mainEnv makes the test binary run Main (the `snapshot` subcommand) in a
// process of its own, so that the benchmark starts our save the way it
// starts etcdctl's.
const mainEnv = "SNAPSHOTCMD_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// benchBinaryEnv names a built provider binary for BenchmarkSnapshotSave
// to run (`make bench-snapshot` sets it); without it the test binary runs
// Main, which starts a little slower than the provider does.
const benchBinaryEnv = "SNAPSHOT_BENCH_BINARY"

// benchBytesEnv sets the amount of data BenchmarkSnapshotSave writes
// before it saves (default 64 MiB; 1073741824 for the 1 GiB of issue 12).
const benchBytesEnv = "SNAPSHOT_BENCH_BYTES"

// BenchmarkSnapshotSave takes snapshots of the same member of a 3-member
// cluster holding random 1 KiB values with our `snapshot save` and with
// Debian's `etcdctl snapshot save`, alternately, each in a process of its
// own, and reports both throughputs and their ratio (x-etcdctl > 1: ours
// is faster).
func BenchmarkSnapshotSave(b *testing.B) {
	size := int64(64 << 20)
	if v := os.Getenv(benchBytesEnv); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want a positive byte count", benchBytesEnv, v)
		}
		size = n
	}
	deb := stocketcd.Require(b, stocketcd.V34Debian)
	c := testserver.Start(b, testserver.WithMembers(3), testserver.WithQuotaBackendBytes(2*size+(256<<20)))
	if _, err := c.Fill(context.Background(), "/bench/", size); err != nil {
		b.Fatal(err)
	}
	ep := c.Endpoints()[0]
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	ourArgs := []string{"save"}
	if bin := os.Getenv(benchBinaryEnv); bin != "" {
		self, ourArgs = bin, []string{"snapshot", "save"}
	}
	dir := b.TempDir()
	// CPU time (user+system) of each tool's process, summed over the
	// timed rounds: where the wall-clock ratio alone cannot tell whether a
	// tool waits on the server, the disk or itself.
	var oursCPU, theirsCPU time.Duration
	save := func(ours bool) (time.Duration, int64) {
		file := filepath.Join(dir, "bench.db")
		var cmd *exec.Cmd
		if ours {
			cmd = exec.Command(self, append(ourArgs, file, "--endpoints", ep)...)
			cmd.Env = append(os.Environ(), mainEnv+"=1")
		} else {
			cmd = exec.Command(deb.Etcdctl, "--endpoints", ep, "snapshot", "save", file)
			cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
		}
		start := time.Now()
		out, err := cmd.CombinedOutput()
		d := time.Since(start)
		if err != nil {
			b.Fatalf("%v: %v\n%s", cmd.Args, err, out)
		}
		cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		if ours {
			oursCPU += cpu
		} else {
			theirsCPU += cpu
		}
		fi, err := os.Stat(file)
		if err != nil {
			b.Fatal(err)
		}
		if err := os.Remove(file); err != nil {
			b.Fatal(err)
		}
		return d, fi.Size()
	}
	save(true) // warm the page cache and the member's snapshot path once
	oursCPU = 0
	var oursT, theirsT time.Duration
	var bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// Alternate the order, so that neither always goes first.
		first := i%2 == 0
		d1, n := save(first)
		d2, _ := save(!first)
		if !first {
			d1, d2 = d2, d1
		}
		oursT += d1
		theirsT += d2
		bytes += n
	}
	b.StopTimer()
	mbps := func(d time.Duration) float64 { return float64(bytes) / (1 << 20) / d.Seconds() }
	b.ReportMetric(mbps(oursT), "MiB/s-ours")
	b.ReportMetric(mbps(theirsT), "MiB/s-etcdctl")
	b.ReportMetric(theirsT.Seconds()/oursT.Seconds(), "x-etcdctl")
	b.ReportMetric(float64(bytes)/float64(b.N)/(1<<20), "MiB/snapshot")
	b.ReportMetric(oursCPU.Seconds()/float64(b.N), "cpu-s/op-ours")
	b.ReportMetric(theirsCPU.Seconds()/float64(b.N), "cpu-s/op-etcdctl")
	b.ReportMetric(0, "ns/op")
}
