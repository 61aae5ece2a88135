package etcdconf

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/pki"
)

// stockEtcd is Debian's etcd-server binary (3.4), the upstream etcd the
// config file must also work with.
const stockEtcd = "/usr/bin/etcd"

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestStockEtcdStartsWithRenderedConfig starts Debian's etcd with a rendered
// config (client and peer TLS with client-cert auth, plus settings 3.4
// knows) and writes through it with a client certificate.
func TestStockEtcdStartsWithRenderedConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	if _, err := os.Stat(stockEtcd); err != nil {
		t.Skipf("%s not installed (apt-get install etcd-server): %v", stockEtcd, err)
	}
	ver, _ := exec.Command(stockEtcd, "--version").Output()
	t.Logf("%s", bytes.SplitN(ver, []byte("\n"), 2)[0])

	dir := t.TempDir()
	ca, err := pki.NewCA(pki.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mc, err := ca.IssueMember(pki.MemberRequest{Name: "stock", Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := ca.IssueClient("root", pki.Window{})
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	caFile := write("ca.pem", ca.CertPEM)
	cu := fmt.Sprintf("https://127.0.0.1:%d", freePort(t))
	pu := fmt.Sprintf("https://127.0.0.1:%d", freePort(t))
	c := Config{
		Name: "stock", DataDir: filepath.Join(dir, "data"),
		ListenPeerURLs: []string{pu}, AdvertisePeerURLs: []string{pu},
		ListenClientURLs: []string{cu}, AdvertiseClientURLs: []string{cu},
		InitialCluster:      []Member{{Name: "stock", PeerURLs: []string{pu}}},
		InitialClusterState: StateNew, InitialClusterToken: "stock-test",
		ClientTLS: &TLS{CertFile: write("server.pem", mc.Server.CertPEM), KeyFile: write("server-key.pem", mc.Server.KeyPEM), TrustedCAFile: caFile, ClientCertAuth: true},
		PeerTLS:   &TLS{CertFile: write("peer.pem", mc.Peer.CertPEM), KeyFile: write("peer-key.pem", mc.Peer.KeyPEM), TrustedCAFile: caFile, ClientCertAuth: true},
		Settings: map[string]string{
			"snapshot-count":            "2000",
			"heartbeat-interval":        "100",
			"election-timeout":          "1000",
			"auto-compaction-retention": "1",
			"quota-backend-bytes":       "1073741824",
			"logger":                    "zap",
		},
	}
	data, err := Render(c)
	if err != nil {
		t.Fatal(err)
	}
	cfgFile := write("etcd.yaml", data)

	logFile := filepath.Join(dir, "etcd.log")
	logW, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	defer logW.Close()
	logText := func() string { b, _ := os.ReadFile(logFile); return string(b) }
	cmd := exec.Command(stockEtcd, "--config-file", cfgFile)
	cmd.Stdout, cmd.Stderr = logW, logW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	tlsCfg, err := transport.TLSInfo{CertFile: write("client.pem", cl.CertPEM), KeyFile: write("client-key.pem", cl.KeyPEM), TrustedCAFile: caFile}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{cu}, TLS: tlsCfg, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		select {
		case <-exited:
			t.Fatalf("etcd exited: %v\n%s", waitErr, logText())
		default:
		}
		st, err := cli.Status(ctx, cu)
		if err == nil && st.Leader != 0 {
			t.Logf("stock etcd %s up, leader %x", st.Version, st.Leader)
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("etcd not ready: %v\n%s", err, logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := cli.Put(ctx, "rendered", "ok"); err != nil {
		t.Fatal(err)
	}
	// The settings reached the server.
	if !strings.Contains(logText(), `"snapshot-count":2000`) {
		t.Errorf("snapshot-count not in the server's startup log:\n%s", logText())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		t.Fatal("etcd did not stop on SIGTERM")
	}
}
