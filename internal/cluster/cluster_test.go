package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/etcdconf"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/memberhost"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/pki"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver/sshhost"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// providerBinary builds the provider once per test process: the binary the
// nodes run in `server` mode.
func providerBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "cluster-test-bin-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, memberhost.BinaryName)
		cmd := exec.Command("go", "build", "-trimpath", "-o", buildPath, ".")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return buildPath
}

// testSpec is a spec for the first n hosts, with directories under each
// host's base dir (hosts share the file system) and the given ports.
func testSpec(hosts []*sshhost.Host, n int, name string, port int) Spec {
	var keys []string
	for _, h := range hosts {
		keys = append(keys, h.HostKey)
	}
	s := Spec{
		Name:       name,
		SSH:        node.SSHConfig{User: hosts[0].User, PrivateKey: string(hosts[0].PrivateKeyPEM), HostKey: strings.Join(keys, "\n")},
		ClientPort: port,
		PeerPort:   port + 1,
		Binary:     Binary{LocalPath: buildPath},
		Settings:   map[string]string{"heartbeat-interval": "100", "election-timeout": "1000"},
	}
	for i := range n {
		s.Nodes = append(s.Nodes, testNode(hosts[i], i, name))
	}
	return s
}

func testNode(h *sshhost.Host, i int, name string) Node {
	return Node{
		Name:       fmt.Sprintf("n%d", i+1),
		Host:       h.HostPort(),
		InstallDir: path.Join(h.BaseDir, name, "opt"),
		DataDir:    path.Join(h.BaseDir, name, "data"),
	}
}

func withTLS(t testing.TB, s Spec) Spec {
	ca, err := pki.NewCA(pki.CAOptions{CommonName: s.Name + "-ca"})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := ca.IssueClient("root", pki.Window{})
	if err != nil {
		t.Fatal(err)
	}
	s.TLS = &TLS{CA: ca, Client: cl}
	return s
}

func logProgress(tb testing.TB) Option {
	return WithProgress(func(msg string, f map[string]any) { tb.Logf("%s %v", msg, f) })
}

func applyOK(t *testing.T, s Spec, opts ApplyOptions) *Status {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := New(s, logProgress(t))
	defer c.Close()
	st, err := c.Apply(ctx, opts)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	return st
}

func destroy(t testing.TB, s Spec, wipe bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := New(s)
	defer c.Close()
	if err := c.Destroy(ctx, wipe); err != nil {
		t.Errorf("destroy: %v", err)
	}
}

func etcdClient(t testing.TB, s Spec) *clientv3.Client {
	t.Helper()
	c := New(s)
	cli, err := c.client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func memberPIDs(t *testing.T, s Spec) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := New(s)
	defer c.Close()
	out := map[string]int{}
	for _, n := range s.Nodes {
		st, err := c.probe(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		ss, err := st.svc.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out[n.Name] = ss.PID
	}
	return out
}

func checkMembers(t *testing.T, st *Status, names ...string) {
	t.Helper()
	var got []string
	for _, m := range st.Members {
		if m.IsLearner || !m.Healthy {
			t.Errorf("member %+v: learner or unhealthy", m)
		}
		got = append(got, m.Name)
	}
	if fmt.Sprint(sortedCopy(got)) != fmt.Sprint(sortedCopy(names)) {
		t.Fatalf("members %v, want %v", got, names)
	}
	if st.Leader == "" || st.ClusterID == "" {
		t.Fatalf("status %+v", st)
	}
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}

// TestClusterLifecycle: bootstrap 3 members with TLS, re-apply without
// restarting anything, scale 3 → 4 → 3, a rolling settings change, and
// destroy that keeps the data dirs.
func TestClusterLifecycle(t *testing.T) {
	if testing.Short() {
		t.Skip("starts clusters over SSH")
	}
	hosts := sshhost.Start(t, 4)
	providerBinary(t)
	s := withTLS(t, testSpec(hosts, 3, "life", 12379))
	t.Cleanup(func() {
		all := s
		all.Nodes = append(append([]Node{}, s.Nodes...), testNode(hosts[3], 3, "life"))
		destroy(t, all, true)
	})

	begin := time.Now()
	st := applyOK(t, s, ApplyOptions{})
	t.Logf("3-node TLS bootstrap: %s", time.Since(begin))
	checkMembers(t, st, "n1", "n2", "n3")

	cli := etcdClient(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := cli.Put(ctx, "/life/k", "v"); err != nil {
		t.Fatal(err)
	}

	// Idempotent: the same spec again restarts nothing.
	pids := memberPIDs(t, s)
	st2 := applyOK(t, s, ApplyOptions{})
	if st2.ClusterID != st.ClusterID {
		t.Fatalf("cluster id changed: %s -> %s", st.ClusterID, st2.ClusterID)
	}
	if after := memberPIDs(t, s); fmt.Sprint(after) != fmt.Sprint(pids) {
		t.Fatalf("re-apply restarted members: %v -> %v", pids, after)
	}

	// Scale out to 4, then back to 3 by removing n1 (the first, often the
	// leader).
	s4 := s
	s4.Nodes = append(append([]Node{}, s.Nodes...), testNode(hosts[3], 3, "life"))
	st = applyOK(t, s4, ApplyOptions{})
	checkMembers(t, st, "n1", "n2", "n3", "n4")
	s3 := s4
	s3.Nodes = s4.Nodes[1:]
	st = applyOK(t, s3, ApplyOptions{Remove: s4.Nodes[:1]})
	checkMembers(t, st, "n2", "n3", "n4")
	if out, _ := hosts[0].Run(ctx, "ls "+s4.Layout(s4.Nodes[0]).InstallDir+" 2>&1; ls -d "+s4.Layout(s4.Nodes[0]).DataDir); !strings.Contains(out, "No such file") || !strings.Contains(out, "/data") {
		t.Errorf("removed node: install dir should be gone and data dir kept: %s", out)
	}
	r, err := etcdClient(t, s3).Get(ctx, "/life/k")
	if err != nil || len(r.Kvs) != 1 {
		t.Fatalf("data after scaling: %v %v", r, err)
	}

	// A settings change restarts every member, one at a time.
	pids = memberPIDs(t, s3)
	s3.Settings = map[string]string{"heartbeat-interval": "100", "election-timeout": "1000", "snapshot-count": "5000"}
	applyOK(t, s3, ApplyOptions{})
	after := memberPIDs(t, s3)
	for name, pid := range pids {
		if after[name] == pid || after[name] == 0 {
			t.Errorf("%s not restarted: pid %d -> %d", name, pid, after[name])
		}
	}
	out, err := hosts[1].Run(ctx, "cat "+s3.Layout(s3.Nodes[0]).Config)
	if err != nil || !strings.Contains(out, "snapshot-count: 5000") {
		t.Fatalf("config after the rolling restart: %v\n%s", err, out)
	}
	if _, err := os.Stat(s3.Layout(s3.Nodes[0]).Config + stagedSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("staged config left behind: %v", err)
	}

	destroy(t, s3, false)
	for i, n := range s3.Nodes {
		out, _ := hosts[i+1].Run(ctx, fmt.Sprintf("ls %s 2>&1; ls %s", s3.Layout(n).InstallDir, s3.Layout(n).DataDir))
		if !strings.Contains(out, "No such file") || !strings.Contains(out, "member") {
			t.Errorf("%s after destroy: install dir should be gone, data kept: %s", n.Name, out)
		}
	}
}

// TestClusterReplaceDeadNode: a node loses power for good and is replaced
// by a new one in a single Apply: the dead member is removed, the new node
// joins, the other members are not restarted and no data is lost.
func TestClusterReplaceDeadNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts clusters over SSH")
	}
	hosts := sshhost.Start(t, 4)
	providerBinary(t)
	s := testSpec(hosts, 3, "dead", 13379)
	all := s
	all.Nodes = append(append([]Node{}, s.Nodes...), testNode(hosts[3], 3, "dead"))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := hosts[2].Up(ctx); err != nil {
			t.Errorf("bring the dead host back for cleanup: %v", err)
		}
		destroy(t, all, true)
	})
	applyOK(t, s, ApplyOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := etcdClient(t, s).Put(ctx, "/dead/k", "kept"); err != nil {
		t.Fatal(err)
	}
	live := s
	live.Nodes = s.Nodes[:2]
	pids := memberPIDs(t, live)

	if err := hosts[2].Down(); err != nil {
		t.Fatal(err)
	}
	replaced := s
	replaced.Nodes = []Node{s.Nodes[0], s.Nodes[1], all.Nodes[3]}
	var steps []string
	c := New(replaced, WithProgress(func(msg string, f map[string]any) {
		t.Logf("%s %v", msg, f)
		steps = append(steps, fmt.Sprintf("%s %v", msg, f["node"]))
	}))
	defer c.Close()
	st, err := c.Apply(ctx, ApplyOptions{Remove: s.Nodes[2:]})
	if err != nil {
		t.Fatalf("replacing the dead node: %v", err)
	}
	checkMembers(t, st, "n1", "n2", "n4")
	// The dead member goes before the new one is added: with it, the
	// cluster counts a voting member it cannot reach, which etcd's strict
	// reconfiguration check holds against adding members.
	removedAt, joinedAt := slices.Index(steps, "removing the member of a removed node that is down, before other changes n3"), slices.Index(steps, "joining node n4")
	if removedAt < 0 || joinedAt < 0 || removedAt > joinedAt {
		t.Errorf("the dead member was not removed before the new node joined: %q", steps)
	}
	warned := false
	for _, w := range st.Warnings {
		warned = warned || strings.Contains(w, `node "n3"`)
	}
	if !warned {
		t.Errorf("no warning that the dead node could not be cleaned up: %q", st.Warnings)
	}
	r, err := etcdClient(t, replaced).Get(ctx, "/dead/k")
	if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "kept" {
		t.Fatalf("data after the replacement: %v %v", r, err)
	}
	after := memberPIDs(t, live)
	if fmt.Sprint(after) != fmt.Sprint(pids) {
		t.Errorf("the healthy members were restarted: %v -> %v", pids, after)
	}
}

// TestClusterBadInput: nothing is touched when the spec is invalid or a
// node cannot be reached.
func TestClusterBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("uses SSH hosts")
	}
	hosts := sshhost.Start(t, 2)
	providerBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	s := testSpec(hosts, 2, "bad", 13379)
	s.Settings = map[string]string{"snapshot-cuont": "1"}
	s.Nodes[1].Name = s.Nodes[0].Name
	err := s.Validate()
	for _, want := range []string{`did you mean "snapshot-count"`, `nodes[1].name: "n1" is the name of nodes[0] too`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate: %v; want %q", err, want)
		}
	}
	if !errors.Is(err, ErrDuplicateNodeName) || !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("validate: %v; want it to wrap ErrDuplicateNodeName and ErrInvalidSpec", err)
	}

	s = testSpec(hosts, 2, "bad", 13379)
	s.SSH.PrivateKey = string(otherKey(t))
	_, err = New(s).Apply(ctx, ApplyOptions{})
	if !errors.Is(err, node.ErrAuthFailed) || !strings.Contains(err.Error(), `node "n1"`) {
		t.Errorf("wrong key: %v", err)
	}
	s = testSpec(hosts, 2, "bad", 13379)
	s.Nodes[1].Host = "10.213.255.254:22"
	if hosts[0].Mode == sshhost.ModeLoopback {
		s.Nodes[1].Host = "127.0.0.1:1"
	}
	s.SSH.Timeout = 3 * time.Second
	_, err = New(s).Apply(ctx, ApplyOptions{})
	if err == nil || !strings.Contains(err.Error(), `node "n2"`) {
		t.Errorf("unreachable: %v", err)
	}
	for _, h := range hosts {
		if out, _ := h.Run(ctx, "ls -A "+h.BaseDir); strings.TrimSpace(out) != "" {
			t.Errorf("%s: files were written: %s", h.Name, out)
		}
	}
}

func otherKey(t *testing.T) []byte {
	dir := t.TempDir()
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "k")).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "k"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRenderParsesBack: a rendered config parses back with the addresses
// the spec implies.
func TestRenderParsesBack(t *testing.T) {
	s := Spec{Name: "c", Nodes: []Node{{Name: "a", Host: "10.0.0.1"}, {Name: "b", Host: "10.0.0.2:2222", PeerAddress: "10.1.0.2"}}, Binary: Binary{RemotePath: "/usr/bin/etcd"},
		SSH: node.SSHConfig{PrivateKey: string(otherKey(t)), InsecureIgnoreHostKey: true}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := s.render(s.Nodes[1], s.bootstrapCluster(), etcdconf.StateNew)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := etcdconf.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AdvertisePeerURLs[0] != "http://10.1.0.2:2380" || cfg.AdvertiseClientURLs[0] != "http://10.0.0.2:2379" {
		t.Fatalf("%+v", cfg)
	}
	if got := s.sshConfig(s.Nodes[1]); got.Host != "10.0.0.2" || got.Port != 2222 {
		t.Fatalf("ssh %+v", got)
	}
	if got := s.serviceSpec(s.Nodes[0]).Command; strings.Join(got, " ") != "/usr/bin/etcd --config-file /opt/etcd/etc/etcd.yaml" {
		t.Fatalf("command %v", got)
	}
}
