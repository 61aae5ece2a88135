package server

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver/stocketcd"
)

// runStock runs a stock etcd on the member config file until it serves,
// writes key (value: the binary) and stops it with SIGTERM, as a rolling
// upgrade does.
func runStock(t *testing.T, bin, file, clientURL, key string) {
	t.Helper()
	cmd := exec.Command(bin, "--config-file", file)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	putUntil(t, clientURL, key, bin, exited, &out)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		// etcd stops gracefully, then dies of the signal it caught.
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); err != nil && !(ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM) {
			t.Fatalf("%s after SIGTERM: %v\n%s", bin, err, out.String())
		}
	case <-time.After(time.Minute):
		t.Fatalf("%s did not stop within a minute of SIGTERM", bin)
	}
}

// putUntil writes key=value through clientURL, retrying until the member
// serves (or exited reports that it stopped; a minute at most).
func putUntil(t *testing.T, clientURL, key, value string, exited <-chan error, out interface{ String() string }) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{clientURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cli.Close() }()
	deadline := time.Now().Add(time.Minute)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		_, err := cli.Put(ctx, key, value)
		cancel()
		if err == nil {
			return
		}
		select {
		case werr := <-exited:
			t.Fatalf("the member exited (%v) before it served: %s", werr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("put %s: %v\n%s", key, err, out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestServerStartsOnWALOfEtcd35 follows a member born on etcd 3.5 through
// 3.6 onto the bundled server, as a rolling upgrade does, with far fewer
// writes than etcd's snapshot-count: the WAL still holds 3.5's bare v2
// entries after its last snapshot record. The bundled etcd cannot decode
// them (it panics replaying them), so the server records a snapshot at the
// applied index first; it then serves the keys written at 3.5 and 3.6.
func TestServerStartsOnWALOfEtcd35(t *testing.T) {
	v35 := stocketcd.Require(t, stocketcd.V35)
	v36 := stocketcd.Require(t, stocketcd.V36)
	file, clientURL := writeMemberConfig(t)
	runStock(t, v35.Etcd, file, clientURL, "/at/3.5")
	runStock(t, v36.Etcd, file, clientURL, "/at/3.6")

	dataDir := filepath.Join(filepath.Dir(file), "data")
	// A copy, to check the record on it without starting a member.
	copyDir := filepath.Join(t.TempDir(), "data")
	if out, err := exec.Command("cp", "-a", dataDir, copyDir).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	cp, err := checkpointLegacyWAL(zap.NewNop(), copyDir, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("WAL of a 3.5 -> 3.6 member: %+v", cp)
	if cp.Legacy == 0 || cp.Index == 0 || cp.Index < cp.Last {
		t.Fatalf("checkpoint %+v: want entries of etcd 3.5 found and a snapshot record at or past the last of them", cp)
	}
	again, err := checkpointLegacyWAL(zap.NewNop(), copyDir, "")
	if err != nil || again.Legacy != 0 || again.Index != 0 {
		t.Fatalf("second pass: %+v, %v; want nothing left to replay and nothing written", again, err)
	}
	// The same through `server --checkpoint-wal`, what a rolling upgrade
	// onto a stock etcd 3.7 runs between the stop and the start.
	conf, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	copyDir2 := filepath.Join(t.TempDir(), "data")
	if out, err := exec.Command("cp", "-a", dataDir, copyDir2).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v: %s", err, out)
	}
	copyFile := filepath.Join(t.TempDir(), "etcd.yaml")
	if err := os.WriteFile(copyFile, []byte(strings.Replace(string(conf), dataDir, copyDir2, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"recorded a raft snapshot at the backend's applied index", "no entries of etcd 3.5 or older to skip"} {
		cmd, out := serverCmd(t, "--checkpoint-wal", "--config-file", copyFile)
		if err := cmd.Run(); err != nil || !strings.Contains(out.String(), want) {
			t.Fatalf("server --checkpoint-wal, run %d: %v, output %q; want it to say %q", i+1, err, out.String(), want)
		}
	}

	// The member itself, on the bundled server.
	cmd, out := serverCmd(t, "--config-file", file)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Logf("the bundled server after SIGTERM: %v", err)
			}
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
		}
	})
	putUntil(t, clientURL, "/at/bundled", "bundled", exited, out)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{clientURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cli.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for key, want := range map[string]string{"/at/3.5": v35.Etcd, "/at/3.6": v36.Etcd} {
		r, err := cli.Get(ctx, key)
		if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != want {
			t.Fatalf("get %s after the upgrade: %v %v, want %q", key, r, err, want)
		}
	}
	if !strings.Contains(out.String(), "recorded a raft snapshot at the backend's applied index") {
		t.Errorf("the server did not say that it recorded a snapshot:\n%s", out.String())
	}
}

// BenchmarkLegacyWALCheck measures what checkpointLegacyWAL adds to every
// start of the bundled server when there is nothing to do: a member whose
// WAL holds 10,000 writes of 1 KiB after its last snapshot record (no
// snapshot: snapshot-count is 1,000,000). The reference, in the same
// iteration, is the start of the member itself until it serves (etcd
// reads the same WAL).
//
//	go test ./internal/server -run '^$' -bench LegacyWALCheck -benchtime 5x
func BenchmarkLegacyWALCheck(b *testing.B) {
	file, clientURL := writeMemberConfig(b)
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := f.WriteString("snapshot-count: 1000000\n"); err != nil {
		b.Fatal(err)
	}
	_ = f.Close()
	start := func() func() {
		cfg, err := LoadConfig(file)
		if err != nil {
			b.Fatal(err)
		}
		cfg.Logger, cfg.LogLevel = "zap", "error"
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			b.Fatal(err)
		}
		select {
		case <-e.Server.ReadyNotify():
		case <-time.After(time.Minute):
			b.Fatal("the member did not become ready within a minute")
		}
		return e.Close
	}
	stop := start()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{clientURL}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	value := strings.Repeat("v", 1024)
	for i := range 10000 {
		if _, err := cli.Put(context.Background(), fmt.Sprintf("/bench/%05d", i), value); err != nil {
			b.Fatal(err)
		}
	}
	_ = cli.Close()
	stop()
	dataDir := filepath.Join(filepath.Dir(file), "data")
	var check, serve time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		cp, err := checkpointLegacyWAL(zap.NewNop(), dataDir, "")
		if err != nil || cp.Legacy != 0 {
			b.Fatalf("%+v %v", cp, err)
		}
		t1 := time.Now()
		start()()
		check += t1.Sub(t0)
		serve += time.Since(t1)
	}
	b.ReportMetric(float64(check.Milliseconds())/float64(b.N), "check-ms/op")
	b.ReportMetric(float64(serve.Milliseconds())/float64(b.N), "start-ms/op")
	b.ReportMetric(float64(check)/float64(serve), "check/start")
}
