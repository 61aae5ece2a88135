package cluster

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver/sshhost"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver/stocketcd"
)

// BenchmarkRollingUpgrade measures the rolling upgrade of 3 members from
// stock etcd 3.5 to 3.6 (remote_binary), gated as Apply gates it, while a
// client writes through a retry loop (each attempt bounded by 500 ms, the
// next one right away): the total time of the Apply, and per member
// restart the longest time between two acknowledged writes that overlaps
// the restart (from the gate before it to the member's being back, healthy
// and caught up). Each iteration starts from a fresh 3.5 cluster
// (untimed).
//
//	go test -run '^$' -bench BenchmarkRollingUpgrade -benchtime 3x ./internal/cluster
func BenchmarkRollingUpgrade(b *testing.B) {
	from := stocketcd.Require(b, stocketcd.V35)
	to := stocketcd.Require(b, stocketcd.V36)
	hosts := sshhost.Start(b, 3)
	base := testSpec(hosts, 3, "bupgrade", 15379)
	base.Binary = Binary{RemotePath: from.Etcd}
	target := base
	target.Binary = Binary{RemotePath: to.Etcd}
	b.Cleanup(func() { destroy(b, base, true) })
	var total time.Duration
	var stalls []time.Duration
	for b.Loop() {
		b.StopTimer()
		destroy(b, base, true)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		c := New(base)
		if _, err := c.Apply(ctx, ApplyOptions{}); err != nil {
			b.Fatal(err)
		}
		c.Close()
		cli := etcdClient(b, base)
		w := startStallWriter(cli)
		var mu sync.Mutex
		var windows [][2]time.Time
		c = New(target, WithProgress(func(msg string, f map[string]any) {
			mu.Lock()
			defer mu.Unlock()
			switch msg {
			case "upgrading member":
				windows = append(windows, [2]time.Time{time.Now()})
			case "member back after restart":
				if n := len(windows); n > 0 {
					windows[n-1][1] = time.Now()
				}
			}
		}))
		versions, err := c.BinaryVersions(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		begin := time.Now()
		if _, err := c.Apply(ctx, ApplyOptions{Versions: versions}); err != nil {
			b.Fatal(err)
		}
		total += time.Since(begin)
		b.StopTimer()
		c.Close()
		acks := w.stop()
		cancel()
		if len(windows) != 3 {
			b.Fatalf("%d member upgrades seen, want 3", len(windows))
		}
		for _, win := range windows {
			stalls = append(stalls, longestGap(acks, win[0], win[1]))
		}
		b.StartTimer()
	}
	sort.Slice(stalls, func(i, j int) bool { return stalls[i] < stalls[j] })
	b.ReportMetric(total.Seconds()/float64(b.N), "s/upgrade")
	b.ReportMetric(stalls[len(stalls)/2].Seconds(), "p50-stall-s")
	b.ReportMetric(stalls[len(stalls)-1].Seconds(), "max-stall-s")
	b.Logf("%s -> %s: longest write stall per member restart (sorted): %v", from.Version, to.Version, stalls)
}

type stallWriter struct {
	halt chan struct{}
	done chan struct{}
	acks []time.Time
}

// startStallWriter writes through cli until stopped, retrying each failed
// write at once, and records when each write was acknowledged.
func startStallWriter(cli *clientv3.Client) *stallWriter {
	w := &stallWriter{halt: make(chan struct{}), done: make(chan struct{}), acks: []time.Time{time.Now()}}
	go func() {
		defer close(w.done)
		for i := 0; ; {
			select {
			case <-w.halt:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			_, err := cli.Put(ctx, fmt.Sprintf("/bench/upgrade/%07d", i), "v")
			cancel()
			if err == nil {
				w.acks = append(w.acks, time.Now())
				i++
			}
		}
	}()
	return w
}

func (w *stallWriter) stop() []time.Time {
	close(w.halt)
	<-w.done
	return append(w.acks, time.Now())
}

// longestGap is the longest time between consecutive acknowledgements that
// overlaps [from, to].
func longestGap(acks []time.Time, from, to time.Time) time.Duration {
	var best time.Duration
	for i := 0; i+1 < len(acks); i++ {
		if acks[i+1].Before(from) || acks[i].After(to) {
			continue
		}
		if d := acks[i+1].Sub(acks[i]); d > best {
			best = d
		}
	}
	return best
}
