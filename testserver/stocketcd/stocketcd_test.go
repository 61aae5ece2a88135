package stocketcd

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// semver parses "3.5.23" into comparable parts.
func semver(t *testing.T, v string) [3]int {
	t.Helper()
	var p [3]int
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		t.Fatalf("version %q: want MAJOR.MINOR.PATCH", v)
	}
	for i, s := range parts {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("version %q: %v", v, err)
		}
		p[i] = n
	}
	return p
}

func less(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// The constants name lines of versions.txt, which the script builds, and
// keep the roles their names promise.
func TestVersionRoles(t *testing.T) {
	built := map[string]bool{}
	for _, v := range Versions() {
		semver(t, v)
		if built[v] {
			t.Errorf("versions.txt lists %s twice", v)
		}
		built[v] = true
	}
	for _, v := range []string{V35, V35BelowUpgradeMinimum, V36, V37} {
		if !built[v] {
			t.Errorf("%s is not in versions.txt %v: scripts/install-etcd.sh would not build it", v, Versions())
		}
	}
	min := semver(t, UpgradeMinimum35)
	if below := semver(t, V35BelowUpgradeMinimum); !less(below, min) || below[1] != 5 {
		t.Errorf("V35BelowUpgradeMinimum %s is not a 3.5 release below %s", V35BelowUpgradeMinimum, UpgradeMinimum35)
	}
	if v := semver(t, V35); less(v, min) || v[1] != 5 {
		t.Errorf("V35 %s is not a 3.5 release at or above %s", V35, UpgradeMinimum35)
	}
	if v := semver(t, V36); v[1] != 6 {
		t.Errorf("V36 %s is not a 3.6 release", V36)
	}
}

// A version that is not built is reported as such, naming the script.
func TestFindMissing(t *testing.T) {
	t.Setenv("ETCD_STOCK_CACHE", t.TempDir())
	_, err := Find(V35)
	if err == nil || !strings.Contains(err.Error(), "scripts/install-etcd.sh "+V35) {
		t.Fatalf("Find in an empty cache: %v, want ErrNotBuilt naming the script", err)
	}
	if !errors.Is(err, ErrNotBuilt) {
		t.Fatalf("Find in an empty cache: %v does not wrap ErrNotBuilt", err)
	}
}

// A binary that reports another version is refused, not used in its place.
func TestFindWrongVersion(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("ETCD_STOCK_CACHE", cache)
	dir := filepath.Join(cache, "etcd-"+V36)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho 'etcd Version: 3.6.1'\n"
	if err := os.WriteFile(filepath.Join(dir, "etcd"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Find(V36)
	if err == nil || !strings.Contains(err.Error(), `reports "etcd Version: 3.6.1"`) {
		t.Fatalf("Find with a 3.6.1 binary for %s: %v, want a version mismatch", V36, err)
	}
}

// Every version the tests rely on starts a member that reports its version
// over the API, and its own etcdctl and etcdutl work against it.
func TestMembersStart(t *testing.T) {
	versions := append([]string{V34Debian}, Versions()...)
	for _, v := range versions {
		t.Run(v, func(t *testing.T) {
			t.Parallel()
			bins := Require(t, v)
			if v == V34Debian && bins.Version != V34Debian {
				t.Fatalf("Debian's etcd is %s, want %s: update V34Debian", bins.Version, V34Debian)
			}
			ep := startMember(t, bins)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()

			c, err := clientv3.New(clientv3.Config{Endpoints: []string{ep}, DialTimeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			st := waitStatus(ctx, t, c, ep)
			if st.Version != bins.Version {
				t.Fatalf("member of %s reports version %s over the API", bins.Etcd, st.Version)
			}

			ctl := func(args ...string) string {
				t.Helper()
				// v3 is every one's default API (3.6 warns about ETCDCTL_API).
				cmd := exec.CommandContext(ctx, bins.Etcdctl, append([]string{"--endpoints", ep}, args...)...)
				var stderr strings.Builder
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					t.Fatalf("etcdctl %v: %v: %s%s", args, err, out, stderr.String())
				}
				return string(out)
			}
			if bins.Etcdctl == "" {
				return
			}
			ctl("put", "/stock/"+v, "value-"+v)
			if got := ctl("get", "--print-value-only", "/stock/"+v); strings.TrimSpace(got) != "value-"+v {
				t.Fatalf("etcdctl get: %q, want %q", got, "value-"+v)
			}
			if bins.Etcdutl == "" {
				return
			}
			snap := filepath.Join(t.TempDir(), "snap.db")
			ctl("snapshot", "save", snap)
			out, err := exec.CommandContext(ctx, bins.Etcdutl, "snapshot", "status", snap, "-w", "json").CombinedOutput()
			if err != nil {
				t.Fatalf("etcdutl snapshot status: %v: %s", err, out)
			}
			var status struct {
				TotalKey int `json:"totalKey"`
			}
			if err := json.Unmarshal(out, &status); err != nil {
				t.Fatalf("etcdutl snapshot status: %v: %s", err, out)
			}
			if status.TotalKey < 1 {
				t.Fatalf("etcdutl snapshot status: %d keys, want at least the one put", status.TotalKey)
			}
		})
	}
}

// startMember runs a one-member cluster of bins.Etcd on a loopback address of
// its own and returns its client URL; the test's cleanup kills it.
func startMember(t *testing.T, bins Binaries) string {
	t.Helper()
	addr, clientPort, peerPort := freeAddr(t)
	client := fmt.Sprintf("http://%s", net.JoinHostPort(addr, strconv.Itoa(clientPort)))
	peer := fmt.Sprintf("http://%s", net.JoinHostPort(addr, strconv.Itoa(peerPort)))
	dir := t.TempDir()
	logPath := filepath.Join(dir, "etcd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bins.Etcd,
		"--name", "stock",
		"--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "stock="+peer, "--initial-cluster-state", "new",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			if len(lines) > 20 {
				lines = lines[len(lines)-20:]
			}
			t.Logf("%s log:\n%s", bins.Etcd, strings.Join(lines, "\n"))
		}
	})
	return client
}

// freeAddr picks a random 127.x.y.z address (all of 127/8 is loopback) and
// two ports free on it, so that parallel members do not collide.
func freeAddr(t *testing.T) (string, int, int) {
	t.Helper()
	var b [3]byte
	_, _ = rand.Read(b[:])
	addr := net.IPv4(127, 50+b[0]%50, b[1], 1+b[2]%250).String()
	var ports []int
	for range 2 {
		l, err := net.Listen("tcp", net.JoinHostPort(addr, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return addr, ports[0], ports[1]
}

func waitStatus(ctx context.Context, t *testing.T, c *clientv3.Client, ep string) *clientv3.StatusResponse {
	t.Helper()
	var lastErr error
	for {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		st, err := c.Status(sctx, ep)
		cancel()
		if err == nil {
			return st
		}
		lastErr = err
		select {
		case <-ctx.Done():
			t.Fatalf("member at %s did not answer: %v", ep, lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
