package cluster

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver/sshhost"
)

// BenchmarkCertRotation measures a certificate rotation of 3 members (new
// certificates staged, then one member at a time: quorum check, leader
// moved away, files swapped, restart, caught up) against the reference of
// the same run, a rolling restart for a settings change, both under a
// client that keeps writing and retries. Reported per operation: seconds,
// and the longest time between two acknowledged writes (p50 and max over
// the iterations).
//
//	go test -run '^$' -bench BenchmarkCertRotation -benchtime 3x ./internal/cluster
func BenchmarkCertRotation(b *testing.B) {
	hosts := sshhost.Start(b, 3)
	providerBinary(b)
	s := withTLS(b, testSpec(hosts, 3, "rotbench", 15379))
	s.TLS.Validity, s.TLS.RenewBefore = time.Hour, 30*time.Minute
	b.Cleanup(func() { destroy(b, s, true) })
	ctx := context.Background()
	apply := func(s Spec) {
		actx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		c := New(s)
		defer c.Close()
		if _, err := c.Apply(actx, ApplyOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	apply(s)

	tc, err := s.tlsConfig()
	if err != nil {
		b.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: s.Endpoints(), TLS: tc, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	var mu sync.Mutex
	var acks []time.Time
	failed := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			wctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := cli.Put(wctx, fmt.Sprintf("/bench/%08d", i), "v")
			cancel()
			mu.Lock()
			if err == nil {
				acks = append(acks, time.Now())
			} else {
				failed++
			}
			mu.Unlock()
			if err != nil {
				time.Sleep(20 * time.Millisecond)
			}
		}
	}()
	// longestStall runs op and returns its duration and the longest gap
	// between acknowledged writes from its start to its end.
	longestStall := func(op func()) (took, stall time.Duration) {
		begin := time.Now()
		op()
		end := time.Now()
		mu.Lock()
		defer mu.Unlock()
		last := begin
		for _, a := range acks {
			if a.Before(begin) {
				continue
			}
			if a.Sub(last) > stall {
				stall = a.Sub(last)
			}
			last = a
			if a.After(end) {
				break
			}
		}
		if end.Sub(last) > stall {
			stall = end.Sub(last)
		}
		return end.Sub(begin), stall
	}
	rotate := s
	rt := *s.TLS
	rt.RenewBefore = time.Hour - time.Second // every certificate is due a second after it was issued
	rotate.TLS = &rt
	var rotTook, refTook time.Duration
	var rotStalls, refStalls []time.Duration
	i := 0
	for b.Loop() {
		took, stall := longestStall(func() { apply(rotate) })
		rotTook += took
		rotStalls = append(rotStalls, stall)

		b.StopTimer()
		ref := s
		ref.Settings = map[string]string{"heartbeat-interval": "100", "election-timeout": "1000", "snapshot-count": fmt.Sprint(10000 + i)}
		i++
		took, stall = longestStall(func() { apply(ref) })
		refTook += took
		refStalls = append(refStalls, stall)
		s = ref
		rotate.Settings = ref.Settings
		b.StartTimer()
	}
	close(stop)
	<-done
	n := float64(len(rotStalls))
	slices.Sort(rotStalls)
	slices.Sort(refStalls)
	b.ReportMetric(rotTook.Seconds()/n, "s/rotation")
	b.ReportMetric(refTook.Seconds()/n, "s/rolling-restart")
	b.ReportMetric(rotStalls[len(rotStalls)/2].Seconds(), "stall-p50-s")
	b.ReportMetric(rotStalls[len(rotStalls)-1].Seconds(), "stall-max-s")
	b.ReportMetric(refStalls[len(refStalls)/2].Seconds(), "ref-stall-p50-s")
	b.ReportMetric(refStalls[len(refStalls)-1].Seconds(), "ref-stall-max-s")
	mu.Lock()
	b.ReportMetric(float64(failed), "failed-writes")
	mu.Unlock()
}
