package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// childEnv makes the test binary act as `terraform-provider-etcd server`:
// the tests run the real Main in a separate process, so signals, exit codes
// and stderr are observed exactly as a service manager would see them.
const childEnv = "ETCD_PROVIDER_SERVER_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(Main(os.Args[1:], "test", os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// serverCmd returns a command that runs Main with args in a child process.
func serverCmd(t *testing.T, args ...string) (*exec.Cmd, *bytes.Buffer) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stdout = &stderr
	cmd.Stderr = &stderr
	return cmd, &stderr
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// writeMemberConfig writes a single-member configuration on free loopback
// ports and returns its path and client URL.
func writeMemberConfig(t testing.TB) (file, clientURL string) {
	t.Helper()
	dir := t.TempDir()
	clientURL = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	cfg := fmt.Sprintf(`# one member, as etcd_cluster renders it
name: solo
data-dir: %s
listen-client-urls: %s
advertise-client-urls: %s
listen-peer-urls: %s
initial-advertise-peer-urls: %s
initial-cluster: solo=%s
initial-cluster-state: new
initial-cluster-token: server-test
unsafe-no-fsync: true
log-level: warn
`, filepath.Join(dir, "data"), clientURL, clientURL, peerURL, peerURL, peerURL)
	file = filepath.Join(dir, "etcd.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return file, clientURL
}

// listenNotify listens like systemd does for a Type=notify service.
func listenNotify(t *testing.T) (string, *net.UnixConn) {
	t.Helper()
	// Keep the path short: unix socket paths are limited to ~108 bytes.
	dir, err := os.MkdirTemp("", "notify")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "s")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return path, conn
}

func readNotify(t *testing.T, conn *net.UnixConn, timeout time.Duration) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification within %s: %v", timeout, err)
	}
	return string(buf[:n])
}

func TestServerServesUntilSIGTERM(t *testing.T) {
	file, clientURL := writeMemberConfig(t)
	socket, notifyConn := listenNotify(t)

	cmd, out := serverCmd(t, "--config-file", file)
	cmd.Env = append(cmd.Env, "NOTIFY_SOCKET="+socket)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			t.Logf("killed the child: %v", <-exited)
		}
	})

	// READY=1 arrives only once the member serves clients.
	if msg := readNotify(t, notifyConn, 60*time.Second); !strings.Contains(msg, "READY=1") {
		t.Fatalf("first notification = %q, want READY=1\n%s", msg, out)
	}

	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   []string{clientURL},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cli.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, "/server-test/key", "value"); err != nil {
		t.Fatalf("put: %v\n%s", err, out)
	}
	resp, err := cli.Get(ctx, "/server-test/key")
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	if len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "value" {
		t.Fatalf("get returned %v, want value", resp.Kvs)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("server exited with %v after SIGTERM, want exit 0\n%s", err, out)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("server did not stop within 30s of SIGTERM\n%s", out)
	}
	if msg := readNotify(t, notifyConn, time.Second); !strings.Contains(msg, "STOPPING=1") {
		t.Errorf("notification after SIGTERM = %q, want STOPPING=1", msg)
	}
	for _, want := range []string{`member "solo"`, "is ready", "stopped"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestServerRejectsBadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name, file, want string
	}{
		{"missing file", filepath.Join(dir, "absent.yaml"), "does not exist"},
		{"invalid YAML", write("invalid.yaml", "name: [unclosed\n"), "not a valid YAML"},
		{"not a mapping", write("list.yaml", "- name: a\n"), "not a valid YAML"},
		{"empty", write("empty.yaml", "# nothing\n"), "is empty"},
		{"unknown key", write("typo.yaml", "name: a\ndata-dri: /tmp/x\n"), "unknown key(s) data-dri"},
		{"unknown TLS key", write("tls.yaml", "name: a\nclient-transport-security:\n  cert: x\n"), "client-transport-security.cert"},
		{"bad value", write("badurl.yaml", "name: a\nlisten-client-urls: \"::not a url\"\n"), "listen-client-urls"},
		{"invalid cluster state", write("state.yaml", "name: a\ndata-dir: "+filepath.Join(dir, "d")+"\ninitial-cluster-state: sideways\n"), "sideways"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, out := serverCmd(t, "--config-file", tt.file)
			err := cmd.Run()
			var exitErr *exec.ExitError
			if !errors.As(err, &exitErr) || exitErr.ExitCode() != 1 {
				t.Fatalf("exit = %v, want exit status 1\n%s", err, out)
			}
			if !strings.Contains(out.String(), tt.file) {
				t.Errorf("stderr does not name %s:\n%s", tt.file, out)
			}
			if !strings.Contains(out.String(), tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, out)
			}
		})
	}
}

func TestMainUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"--version"}, "v1.2.3", &stdout, &stderr); code != 0 {
		t.Fatalf("--version exit = %d, stderr %s", code, &stderr)
	}
	if !strings.Contains(stdout.String(), "terraform-provider-etcd v1.2.3 (etcd server 3.") {
		t.Errorf("--version printed %q", &stdout)
	}

	for _, args := range [][]string{{}, {"--config-file"}, {"--config-file", "x", "extra"}, {"--nope"}} {
		stdout.Reset()
		stderr.Reset()
		if code := Main(args, "dev", &stdout, &stderr); code != 2 {
			t.Errorf("Main(%q) = %d, want 2", args, code)
		}
		if !strings.Contains(stderr.String(), "Usage: terraform-provider-etcd server") {
			t.Errorf("Main(%q) printed no usage: %s", args, &stderr)
		}
	}
}
