package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver/sshhost"
)

// BenchmarkBootstrap measures a 3-node bootstrap with TLS, from nothing on
// the nodes to every member healthy with a leader: connect, inspect, upload
// the provider binary (~40 MB), certificates and configs to all nodes in
// parallel, start, wait. Each iteration starts from clean nodes (the
// previous cluster is destroyed with its data, untimed).
//
//	go test -run '^$' -bench BenchmarkBootstrap -benchtime 3x ./internal/cluster
func BenchmarkBootstrap(b *testing.B) {
	hosts := sshhost.Start(b, 3)
	providerBinary(b)
	s := withTLS(b, testSpec(hosts, 3, "bench", 14379))
	b.Cleanup(func() { destroy(b, s, true) })
	var total time.Duration
	for b.Loop() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		begin := time.Now()
		c := New(s)
		if _, err := c.Apply(ctx, ApplyOptions{}); err != nil {
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
	b.ReportMetric(total.Seconds()/float64(b.N), "s/bootstrap")
}
