package snapshotcmd

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// cmd runs `terraform-provider-etcd snapshot ARGS...` in process with env
// as its whole environment (nil: none).
func cmd(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if len(args) > 0 && args[0] == "save" {
		code = save(t.Context(), args[1:], &out, &errb, lookup)
	} else {
		code = Main(args, &out, &errb)
	}
	return out.String(), errb.String(), code
}

// mustCmd is cmd that fails the test on a non-zero exit.
func mustCmd(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	out, errOut, code := cmd(t, env, args...)
	if code != 0 {
		t.Fatalf("snapshot %v: exit %d\nstdout: %s\nstderr: %s", args, code, out, errOut)
	}
	return out
}

// run runs an external program and returns its stdout, failing the test
// when it fails.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	c := exec.CommandContext(t.Context(), name, args...)
	c.Env = append(os.Environ(), "ETCDCTL_API=3")
	var stderr bytes.Buffer
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		t.Fatalf("%s %v: %v\nstdout: %s\nstderr: %s", name, args, err, out, stderr.String())
	}
	return string(out)
}

// peer is a member's addresses, picked before it starts so that a restore
// can name them.
type peer struct{ client, peer string }

// freePeer picks a random 127.x.y.z address and two free ports on it.
func freePeer(t *testing.T) peer {
	t.Helper()
	var b [3]byte
	_, _ = rand.Read(b[:])
	addr := net.IPv4(127, 100+b[0]%50, b[1], 1+b[2]%250).String()
	var ports []int
	for range 2 {
		l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return peer{
		client: "http://" + net.JoinHostPort(addr, strconv.Itoa(ports[0])),
		peer:   "http://" + net.JoinHostPort(addr, strconv.Itoa(ports[1])),
	}
}

// startStock runs etcdBin as the one member "name" of a cluster on dataDir
// (new, or restored for p) and waits until it answers; the test's cleanup
// stops it.
func startStock(t *testing.T, etcdBin, name, dataDir string, p peer) {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "etcd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	c := exec.Command(etcdBin,
		"--name", name, "--data-dir", dataDir,
		"--listen-client-urls", p.client, "--advertise-client-urls", p.client,
		"--listen-peer-urls", p.peer, "--initial-advertise-peer-urls", p.peer,
		"--initial-cluster", name+"="+p.peer, "--initial-cluster-state", "new",
	)
	c.Stdout, c.Stderr = logf, logf
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- c.Wait() }()
	t.Cleanup(func() {
		_ = c.Process.Kill()
		<-exited
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("%s log (tail):\n%s", etcdBin, tail(string(b), 25))
		}
	})
	waitServes(t, p.client, exited)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitServes waits until the member at endpoint answers a linearizable
// read, or fails the test when exited reports the process gone.
func waitServes(t *testing.T, endpoint string, exited <-chan error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	var last error
	for {
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := cli.Get(rctx, "health-probe")
		rcancel()
		if err == nil {
			return
		}
		last = err
		select {
		case err := <-exited:
			t.Fatalf("etcd at %s exited before serving: %v", endpoint, err)
		case <-ctx.Done():
			t.Fatalf("etcd at %s does not serve: %v", endpoint, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// startBundled runs the bundled etcd (embed, the code of the `server`
// subcommand) on dataDir as member name of a one-member cluster at p.
func startBundled(t *testing.T, name, dataDir string, p peer) {
	t.Helper()
	cfg := embed.NewConfig()
	cfg.Name = name
	cfg.Dir = dataDir
	cu, _ := url.Parse(p.client)
	pu, _ := url.Parse(p.peer)
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = name + "=" + p.peer
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.UnsafeNoFsync = true
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("bundled etcd on %s: %v", dataDir, err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		t.Fatalf("bundled etcd on %s: %v", dataDir, err)
	case <-time.After(2 * time.Minute):
		t.Fatalf("bundled etcd on %s not ready", dataDir)
	}
}

// putKeys writes n keys of binary values through endpoint and returns them.
func putKeys(t *testing.T, cli *clientv3.Client, prefix string, n int) map[string]string {
	t.Helper()
	kvs := map[string]string{}
	for i := range n {
		v := make([]byte, 64)
		_, _ = rand.Read(v)
		k := fmt.Sprintf("%s%03d", prefix, i)
		if _, err := cli.Put(t.Context(), k, string(v)); err != nil {
			t.Fatal(err)
		}
		kvs[k] = string(v)
	}
	return kvs
}

func dial(t *testing.T, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// checkKeys reads prefix through endpoint and compares it byte for byte
// with want.
func checkKeys(t *testing.T, endpoint, prefix string, want map[string]string) {
	t.Helper()
	cli := dial(t, endpoint)
	resp, err := cli.Get(t.Context(), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = string(kv.Value)
	}
	if len(got) != len(want) {
		t.Fatalf("%s serves %d keys under %q, want %d", endpoint, len(got), prefix, len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: key %q = %x, want %x", endpoint, k, got[k], v)
		}
	}
}
