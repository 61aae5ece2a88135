package node

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver/sshhost"
)

// BenchmarkUploadThreeNodes sends one file (NODE_BENCH_MB MiB of random
// bytes, default 128) to 3 SSH test hosts at once, alternately with
// UploadFile (sha256 on both sides, as for a binary) and CopyFile (no
// hashing, as for a snapshot), and reports the throughput per node of
// each.
//
//	go test -run '^$' -bench BenchmarkUploadThreeNodes -benchtime 4x ./internal/node
func BenchmarkUploadThreeNodes(b *testing.B) {
	mb := 128
	if v := os.Getenv("NODE_BENCH_MB"); v != "" {
		if _, err := fmt.Sscan(v, &mb); err != nil || mb <= 0 {
			b.Fatalf("NODE_BENCH_MB=%q: want a positive number", v)
		}
	}
	hosts := sshhost.Start(b, 3)
	data := make([]byte, mb<<20)
	_, _ = rand.Read(data)
	local := filepath.Join(b.TempDir(), "file")
	if err := os.WriteFile(local, data, 0o600); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	clients := make([]*Client, len(hosts))
	for i, h := range hosts {
		c, err := Dial(ctx, SSHConfig{Host: h.Addr, Port: h.Port, User: h.User, PrivateKey: string(h.PrivateKeyPEM), HostKey: h.HostKey})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		clients[i] = c
	}
	send := func(copyFile bool) time.Duration {
		begin := time.Now()
		var wg sync.WaitGroup
		for i, c := range clients {
			wg.Go(func() {
				remote := filepath.Join(hosts[i].BaseDir, "bench", "file")
				var err error
				if copyFile {
					err = c.CopyFile(ctx, local, remote, 0o600)
				} else {
					_, err = c.UploadFile(ctx, local, remote, 0o600)
				}
				if err == nil {
					err = os.Remove(remote) // the hosts share our file system
				}
				if err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
		return time.Since(begin)
	}
	var upload, cp time.Duration
	for i := 0; b.Loop(); i++ {
		first := i%2 == 0
		d1, d2 := send(!first), send(first)
		if !first {
			d1, d2 = d2, d1
		}
		upload += d1
		cp += d2
	}
	rate := func(d time.Duration) float64 { return float64(mb) * float64(b.N) / d.Seconds() }
	b.ReportMetric(rate(upload), "MiB/s/node-UploadFile")
	b.ReportMetric(rate(cp), "MiB/s/node-CopyFile")
	b.ReportMetric(upload.Seconds()/cp.Seconds(), "x-UploadFile")
	b.ReportMetric(0, "ns/op")
}
