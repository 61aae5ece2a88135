package devcmd

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

// childEnv makes the test binary act as `terraform-provider-etcd dev`, so
// that the signal handling and exit code are tested in a real process.
const childEnv = "ETCD_PROVIDER_DEV_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(Main(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// waitFile waits for path to exist, failing early if the process exits.
func waitFile(t *testing.T, path string, exited <-chan error, out *bytes.Buffer) {
	t.Helper()
	deadline := time.After(2 * time.Minute)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case err := <-exited:
			t.Fatalf("dev exited before writing %s: %v\n%s", path, err, out)
		case <-deadline:
			t.Fatalf("no env file after 2 minutes\n%s", out)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// parseEnvFile reads the export lines the way a shell would for the
// values dev writes (optionally single-quoted).
func parseEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kv, ok := strings.CutPrefix(line, "export ")
		if !ok {
			t.Fatalf("unexpected line %q", line)
		}
		name, value, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(value, "'") {
			value = strings.ReplaceAll(strings.Trim(value, "'"), `'\''`, "'")
		}
		env[name] = value
	}
	return env
}

// putGet connects exactly as the provider does, from the ETCDCTL_* values.
func putGet(t *testing.T, env map[string]string) {
	t.Helper()
	settings, err := client.Config{LookupEnv: func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}}.Resolve()
	if err != nil {
		t.Fatalf("provider settings from the env file: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cli, err := client.Open(ctx, settings)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cli.Close() }()
	if _, err := cli.Put(ctx, "/dev-test", "hello"); err != nil {
		t.Fatalf("put: %v", err)
	}
	resp, err := cli.Get(ctx, "/dev-test")
	if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "hello" {
		t.Fatalf("get = %v, %v", resp, err)
	}

	// etcdctl reads the same variables; check it when it is installed.
	etcdctl, err := exec.LookPath("etcdctl")
	if err != nil {
		return
	}
	cmd := exec.CommandContext(ctx, etcdctl, "get", "--print-value-only", "/dev-test")
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	got, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(got)) != "hello" {
		t.Errorf("etcdctl get = %q, %v", got, err)
	}
}

func TestDevRunsUntilSignal(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), "etcd.env")
	cmd := exec.Command(os.Args[0], "--members", "1", "--env-file", envFile)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
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

	waitFile(t, envFile, exited, &out)
	env := parseEnvFile(t, envFile)
	if !strings.HasPrefix(env["ETCDCTL_ENDPOINTS"], "http://127.0.0.1:") {
		t.Fatalf("ETCDCTL_ENDPOINTS = %q", env["ETCDCTL_ENDPOINTS"])
	}
	if len(env) != 1 {
		t.Errorf("without --tls and --auth only ETCDCTL_ENDPOINTS is set, got %v", env)
	}
	putGet(t, env)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("dev exited with %v after SIGTERM, want 0\n%s", err, &out)
		}
	case <-time.After(time.Minute):
		t.Fatalf("dev did not stop within a minute\n%s", &out)
	}
	if _, err := os.Stat(envFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("env file still there after stop: %v", err)
	}
	for _, want := range []string{"1 member(s)", "m0", "export ETCDCTL_ENDPOINTS=http://127.0.0.1:", "stopping the cluster"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, &out)
		}
	}
}

func TestDevTLSAndAuth(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), "etcd.env")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- Run(ctx, Options{Members: 1, TLS: true, Auth: true, EnvFile: envFile}, &out) }()

	waitFile(t, envFile, done, &bytes.Buffer{})
	env := parseEnvFile(t, envFile)
	if !strings.HasPrefix(env["ETCDCTL_ENDPOINTS"], "https://") {
		t.Errorf("ETCDCTL_ENDPOINTS = %q, want https", env["ETCDCTL_ENDPOINTS"])
	}
	for _, k := range []string{"ETCDCTL_CACERT", "ETCDCTL_CERT", "ETCDCTL_KEY"} {
		if _, err := os.Stat(env[k]); err != nil {
			t.Errorf("%s: %v", k, err)
		}
	}
	if user, pass, _ := strings.Cut(env["ETCDCTL_USER"], ":"); user != "root" || pass == "" {
		t.Errorf("ETCDCTL_USER = %q, want root:<password>", env["ETCDCTL_USER"])
	}
	if info, err := os.Stat(envFile); err == nil && info.Mode().Perm() != 0o600 {
		t.Errorf("env file mode %v, want 0600 (it holds a password)", info.Mode().Perm())
	}
	putGet(t, env)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Run did not return within a minute of cancel")
	}
}

func TestMainRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--members", "0"}, {"--members", "99"}, {"extra"}, {"--nope"}} {
		var stdout, stderr bytes.Buffer
		if code := Main(args, &stdout, &stderr); code != 2 {
			t.Errorf("Main(%q) = %d, want 2; stderr %s", args, code, &stderr)
		}
	}
}
