package provider

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/memberhost"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/snapshot"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver/sshhost"
)

// Debian's etcdctl checks what the restored and recovered clusters serve:
// a client that is not ours.
const debianEtcdctl = "/usr/bin/etcdctl"

func needEtcdctl(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(debianEtcdctl); err != nil {
		t.Skipf("Debian's etcdctl is not installed at %s (apt-get install etcd-client): %v", debianEtcdctl, err)
	}
}

// storedKV is a key as the source cluster stored it.
type storedKV struct {
	value  []byte
	modRev int64
}

// putKeys writes n keys under prefix with random binary values (every byte
// value, newlines and NULs included) and returns them.
func putKeys(t *testing.T, cli *clientv3.Client, prefix string, n int) map[string]storedKV {
	t.Helper()
	out := map[string]storedKV{}
	for i := range n {
		v := make([]byte, 64+i)
		if _, err := rand.Read(v); err != nil {
			t.Fatal(err)
		}
		v = append(v, 0, '\n', 0xff)
		k := fmt.Sprintf("%s%03d", prefix, i)
		resp, err := cli.Put(etcdCtx(t), k, string(v))
		if err != nil {
			t.Fatal(err)
		}
		out[k] = storedKV{value: v, modRev: resp.Header.Revision}
	}
	return out
}

type etcdctlKV struct {
	Key         []byte `json:"key"`
	Value       []byte `json:"value"`
	ModRevision int64  `json:"mod_revision"`
}

// etcdctlGet reads a prefix with Debian's etcdctl (JSON output carries the
// exact bytes, base64-encoded).
func etcdctlGet(eps []string, prefix string) (map[string]etcdctlKV, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, debianEtcdctl, "--endpoints="+strings.Join(eps, ","), "--command-timeout=30s",
		"get", prefix, "--prefix", "-w", "json")
	cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("etcdctl get %s: %v: %s", prefix, err, stderr.String())
	}
	var resp struct {
		Kvs []etcdctlKV `json:"kvs"`
	}
	if err := json.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("etcdctl output: %v: %s", err, out)
	}
	got := map[string]etcdctlKV{}
	for _, kv := range resp.Kvs {
		got[string(kv.Key)] = kv
	}
	return got, nil
}

// checkServes checks with Debian's etcdctl that the cluster in the state
// serves every key of present byte for byte at the revision it was written
// at, and nothing under absentPrefix.
func checkServes(prefix string, present map[string]storedKV, absentPrefix string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		eps, err := stateEndpoints(s)
		if err != nil {
			return err
		}
		got, err := etcdctlGet(eps, prefix)
		if err != nil {
			return err
		}
		for k, want := range present {
			kv, ok := got[k]
			if !ok {
				return fmt.Errorf("key %s is missing (%d keys under %s)", k, len(got), prefix)
			}
			if !bytes.Equal(kv.Value, want.value) {
				return fmt.Errorf("key %s: value %x, want %x", k, kv.Value, want.value)
			}
			if kv.ModRevision != want.modRev {
				return fmt.Errorf("key %s: mod_revision %d, want %d as in the snapshot", k, kv.ModRevision, want.modRev)
			}
		}
		if absentPrefix != "" {
			if extra, err := etcdctlGet(eps, absentPrefix); err != nil {
				return err
			} else if len(extra) > 0 {
				return fmt.Errorf("%d keys under %s, written after the snapshot, are in the restored cluster", len(extra), absentPrefix)
			}
		}
		return nil
	}
}

// saveSnapshot takes a snapshot of the one-member source cluster.
func saveSnapshot(t *testing.T, src *testserver.Cluster, p string) string {
	t.Helper()
	cli, err := src.NewClient(clientv3.Config{Endpoints: src.Endpoints()[:1]})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := snapshot.Save(etcdCtx(t), cli, p); err != nil {
		t.Fatal(err)
	}
	sum, err := snapshot.FileSHA256(p)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

func restoreLine(p, sum string) string {
	return fmt.Sprintf("  restore = {\n    snapshot = %s\n    sha256   = %s\n  }\n", hclString(p), hclString(sum))
}

// Restore at create on three nodes: keys written before the snapshot are
// served byte for byte at their revisions, keys written after it are not;
// a changed restore replaces the cluster (from a second snapshot); removing
// the block plans nothing.
func TestAccClusterRestore(t *testing.T) {
	hosts := clusterHosts(t, 3)
	needEtcdctl(t)
	bin := binaryLine(t)
	src := testserver.Start(t, testserver.WithMembers(1))
	dir := t.TempDir()
	before := putKeys(t, src.Client(), "/restore/before/", 40)
	snap1 := filepath.Join(dir, "one.db")
	sum1 := saveSnapshot(t, src, snap1)
	after := putKeys(t, src.Client(), "/restore/after/", 10)
	snap2 := filepath.Join(dir, "two.db")
	sum2 := saveSnapshot(t, src, snap2)
	var began time.Time
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				PreConfig: func() { began = time.Now() },
				Config:    clusterHCL("rs", hosts, 3, bin+restoreLine(snap1, sum1)),
				Check: resource.ComposeTestCheckFunc(
					func(*terraform.State) error {
						t.Logf("restore of a 3-node cluster, plan and apply through the CLI: %s", time.Since(began).Round(time.Millisecond))
						return nil
					},
					checkServes("/restore/", before, "/restore/after/"),
					checkClusterMembers("n1", "n2", "n3"),
				),
				ConfigStateChecks: nil,
			},
			{
				// Another snapshot: the plan replaces the cluster, and the
				// new one serves the keys of both writes.
				Config: clusterHCL("rs", hosts, 3, bin+restoreLine(snap2, sum2)),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("etcd_cluster.c", plancheck.ResourceActionDestroyBeforeCreate),
				}},
				Check: resource.ComposeTestCheckFunc(
					checkServes("/restore/before/", before, ""),
					checkServes("/restore/after/", after, ""),
				),
			},
			{
				// The restore only acts at create: without the block the
				// plan is empty.
				Config:   clusterHCL("rs", hosts, 3, bin),
				PlanOnly: true,
			},
		},
	})
}

// Bad restores fail before any node changes, naming the attribute.
func TestAccClusterRestoreBadInput(t *testing.T) {
	hosts := clusterHosts(t, 1)
	bin := binaryLine(t)
	src := testserver.Start(t, testserver.WithMembers(1))
	dir := t.TempDir()
	putKeys(t, src.Client(), "/bad/", 20)
	good := filepath.Join(dir, "good.db")
	sum := saveSnapshot(t, src, good)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.db")
	if err := os.WriteFile(truncated, data[:len(data)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	damaged := append([]byte(nil), data...)
	for i := len(damaged) / 3; i < len(damaged)/3+64; i++ {
		damaged[i] ^= 0x5a
	}
	corrupt := filepath.Join(dir, "corrupt.db")
	if err := os.WriteFile(corrupt, damaged, 0o600); err != nil {
		t.Fatal(err)
	}
	fileSum := func(p string) string {
		s, err := snapshot.FileSHA256(p)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	dataDir := path.Join(hosts[0].BaseDir, "badrs", "data")
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config:      clusterHCL("badrs", hosts, 1, bin+restoreLine(good, strings.Repeat("0", 64))),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`restore\.sha256:\s+the\s+sha256\s+of[\s\S]*is\s+` + sum),
			},
			{
				Config:      clusterHCL("badrs", hosts, 1, bin+restoreLine(truncated, fileSum(truncated))),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`restore\.snapshot:\s+the\s+file\s+is\s+not\s+an\s+intact\s+etcd\s+snapshot[\s\S]*truncated`),
			},
			{
				Config:      clusterHCL("badrs", hosts, 1, bin+restoreLine(corrupt, fileSum(corrupt))),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`restore\.snapshot:\s+the\s+file\s+is\s+not\s+an\s+intact\s+etcd\s+snapshot`),
			},
			{
				Config:      clusterHCL("badrs", hosts, 1, bin+restoreLine(filepath.Join(dir, "missing.db"), sum)),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`restore\.snapshot:\s+cannot\s+read\s+the\s+snapshot\s+file`),
			},
			{
				// The data dir holds something: the apply refuses before
				// anything is installed.
				PreConfig: func() {
					if err := os.MkdirAll(path.Join(dataDir, "member", "wal"), 0o700); err != nil {
						t.Fatal(err)
					}
				},
				Config:      clusterHCL("badrs", hosts, 1, bin+restoreLine(good, sum)),
				ExpectError: regexp.MustCompile(`restore:\s+node\s+"n1"[\s\S]*holds\s+data`),
			},
		},
	})
	if _, err := os.Stat(path.Join(hosts[0].BaseDir, "badrs", "opt")); !os.IsNotExist(err) {
		t.Errorf("a refused restore installed files on the node: %v", err)
	}
	if entries, _ := os.ReadDir(dataDir); len(entries) != 1 {
		t.Errorf("a refused restore changed the data dir: %v", entries)
	}
}

// hostRunner runs commands on a test host for node.Service.
type hostRunner struct{ h *sshhost.Host }

func (r hostRunner) Run(ctx context.Context, cmd string) (string, error) { return r.h.Run(ctx, cmd) }
func (r hostRunner) Upload(context.Context, string, []byte, os.FileMode) (bool, error) {
	return false, errors.New("not used")
}
func (r hostRunner) Target() string { return r.h.Name }

// loseMember stops the member of cluster name on h and deletes its data
// dir: a member gone for good.
func loseMember(t *testing.T, h *sshhost.Host, name string) {
	t.Helper()
	l := memberhost.NewLayout(path.Join(h.BaseDir, name, "opt"), path.Join(h.BaseDir, name, "data"), "")
	ctx := etcdCtx(t)
	svc, err := node.NewService(ctx, hostRunner{h}, node.ServiceProcess, l.Service("etcd-"+name, "lost member"))
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(l.DataDir); err != nil {
		t.Fatal(err)
	}
}

// Disaster recovery: two of three members are lost for good. Without the
// recovery block the plan fails naming them and showing the block; bad
// from_node values fail; with the block the apply rebuilds three members
// from the survivor's data, and without the block the plan is empty again.
func TestAccClusterDisasterRecovery(t *testing.T) {
	hosts := clusterHosts(t, 3)
	needEtcdctl(t)
	bin := binaryLine(t)
	var written map[string]storedKV
	var began time.Time
	recovery := func(from string) string {
		return bin + fmt.Sprintf("  recovery = {\n    from_node = %q\n  }\n", from)
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: clusterHCL("dr", hosts, 3, bin),
				Check: func(s *terraform.State) error {
					cli, err := clusterClient(s)
					if err != nil {
						return err
					}
					defer cli.Close()
					written = putKeys(t, cli, "/dr/", 30)
					return nil
				},
			},
			{
				PreConfig: func() {
					loseMember(t, hosts[1], "dr")
					loseMember(t, hosts[2], "dr")
				},
				Config:      clusterHCL("dr", hosts, 3, bin),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`lost\s+its\s+quorum[\s\S]*Lost\s+members:\s+n2,\s+n3[\s\S]*recovery\s+=\s+\{\s+from_node\s+=\s+"n1"\s+\}`),
			},
			{
				Config:      clusterHCL("dr", hosts, 3, recovery("n9")),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`recovery\.from_node\s+"n9"\s+is\s+not\s+one\s+of\s+the\s+nodes`),
			},
			{
				Config:      clusterHCL("dr", hosts, 3, recovery("n2")),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`recovery\.from_node:\s+node\s+"n2"\s+has\s+an\s+empty\s+data\s+dir`),
			},
			{
				PreConfig: func() { began = time.Now() },
				Config:    clusterHCL("dr", hosts, 3, recovery("n1")),
				Check: resource.ComposeTestCheckFunc(
					func(*terraform.State) error {
						t.Logf("disaster recovery from one survivor to 3 members, plan and apply through the CLI: %s", time.Since(began).Round(time.Millisecond))
						return nil
					},
					func(s *terraform.State) error { return checkServes("/dr/", written, "")(s) },
					checkClusterMembers("n1", "n2", "n3"),
					func(*terraform.State) error {
						conf, err := os.ReadFile(path.Join(hosts[0].BaseDir, "dr", "opt", "etc", "etcd.yaml"))
						if err != nil {
							return err
						}
						if bytes.Contains(conf, []byte("force-new-cluster")) {
							return fmt.Errorf("the survivor's config file still has force-new-cluster:\n%s", conf)
						}
						return nil
					},
				),
			},
			{
				Config:   clusterHCL("dr", hosts, 3, bin),
				PlanOnly: true,
			},
		},
	})
}

// startDebianEtcd runs Debian's etcd (stock) as a one-member cluster in a
// temporary dir on loopback and returns its client URL; it is killed at
// the end of the test.
func startDebianEtcd(t *testing.T, stock string) string {
	t.Helper()
	var urls [2]string
	for i := range urls {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		urls[i] = "http://" + l.Addr().String()
		l.Close()
	}
	client, peer := urls[0], urls[1]
	dir := t.TempDir()
	var log bytes.Buffer
	cmd := exec.Command(stock, "--name", "src", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", client, "--advertise-client-urls", client,
		"--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
		"--initial-cluster", "src="+peer, "--initial-cluster-state", "new")
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	err := waitFor("Debian's etcd serves", time.Minute, func() (bool, string) {
		select {
		case err := <-exited:
			exited <- err
			return false, fmt.Sprintf("exited: %v", err)
		default:
		}
		_, err := etcdctlGet([]string{client}, "/none")
		return err == nil, fmt.Sprint(err)
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	return client
}

// A cluster on Debian's etcd 3.4 (remote_binary) is created from a snapshot
// that Debian's etcdctl took of another 3.4 cluster: the provider's binary
// restores it on every node as a tool, for etcd 3.4, and Debian's etcdctl
// reads every key byte for byte at its revision; then a backup block makes
// the same tool take scheduled backups (a file and its sha256 sidecar);
// after two members are lost, recovery.snapshot rebuilds the cluster from
// the snapshot with the same tool; destroy removes the tool.
func TestAccClusterStockRestoreBackup(t *testing.T) {
	const stock = "/usr/bin/etcd"
	if _, err := os.Stat(stock); err != nil {
		accCluster(t)
		t.Skipf("%s is not installed (apt-get install etcd-server): %v", stock, err)
	}
	hosts := clusterHosts(t, 3)
	needEtcdctl(t)
	const name = "stockrs"
	srcURL := startDebianEtcd(t, stock)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{srcURL}, DialTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	before := putKeys(t, cli, "/stock/before/", 30)
	snap := filepath.Join(t.TempDir(), "debian.db")
	out, err := exec.Command(debianEtcdctl, "--endpoints="+srcURL, "snapshot", "save", snap).CombinedOutput()
	if err != nil {
		t.Fatalf("etcdctl snapshot save: %v: %s", err, out)
	}
	putKeys(t, cli, "/stock/after/", 5)
	sum, err := snapshot.FileSHA256(snap)
	if err != nil {
		t.Fatal(err)
	}
	remote := "  remote_binary = " + hclString(stock) + "\n" + binaryLine(t) + restoreLine(snap, sum)
	dir := path.Join(hosts[0].BaseDir, "backups") // plain hosts share the file system
	withBackup := remote + backupHCL(dir, "    interval = \"1m\"\n    keep = 2\n    node = \"leader\"\n")
	tool := func(h *sshhost.Host) string { return path.Join(h.BaseDir, name, "opt", "bin", memberhost.BinaryName) }
	var began time.Time
	var oldID string
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: func(*terraform.State) error {
			for _, h := range hosts {
				if _, err := os.Stat(tool(h)); !os.IsNotExist(err) {
					return fmt.Errorf("%s: the tool %s is still there after destroy (%v)", h.Name, tool(h), err)
				}
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				PreConfig: func() { began = time.Now() },
				Config:    clusterHCL(name, hosts, 3, remote),
				Check: resource.ComposeTestCheckFunc(
					func(*terraform.State) error {
						t.Logf("restore onto Debian's etcd on 3 nodes, plan and apply: %s", time.Since(began).Round(time.Millisecond))
						return nil
					},
					checkServes("/stock/", before, "/stock/after/"),
					checkClusterMembers("n1", "n2", "n3"),
					func(*terraform.State) error {
						out, err := hosts[0].Run(context.Background(), "ps -eo args | grep -F '"+stock+" --config-file' | grep -v grep")
						if err != nil || !strings.Contains(out, stock) {
							return fmt.Errorf("no stock etcd process on %s: %v %s", hosts[0].Name, err, out)
						}
						return nil
					},
				),
			},
			{
				// The apply waits for the first backup.
				Config: clusterHCL(name, hosts, 3, withBackup),
				Check: func(s *terraform.State) error {
					var names []string
					for _, n := range []string{"n1", "n2", "n3"} { // the leader's job takes them
						got, err := backupFiles(context.Background(), hosts[0], dir, name+"-"+n)
						if err != nil {
							return err
						}
						names = append(names, got...)
					}
					if len(names) == 0 {
						return fmt.Errorf("no backup in %s", dir)
					}
					b := filepath.Join(dir, names[len(names)-1])
					got, err := snapshot.FileSHA256(b)
					if err != nil {
						return err
					}
					side, err := os.ReadFile(b + ".sha256")
					if err != nil {
						return fmt.Errorf("the sidecar of %s: %v", b, err)
					}
					if f := strings.Fields(string(side)); len(f) == 0 || f[0] != got {
						return fmt.Errorf("sidecar %q, want the sha256 %s of %s", side, got, b)
					}
					oldID = stateClusterID(s)
					return nil
				},
			},
			{
				// Disaster recovery from the same snapshot, restored by the
				// tool for the stock server: two members are lost for good.
				PreConfig: func() {
					loseMember(t, hosts[1], name)
					loseMember(t, hosts[2], name)
				},
				Config: clusterHCL(name, hosts, 3, withBackup+recoverySnapshotLine(snap, sum)),
				Check: resource.ComposeTestCheckFunc(
					checkServes("/stock/", before, "/stock/after/"),
					checkClusterMembers("n1", "n2", "n3"),
					func(s *terraform.State) error {
						if id := stateClusterID(s); id == "" || id == oldID {
							return fmt.Errorf("cluster_id %q after the recovery, was %q: a restore makes a new cluster", id, oldID)
						}
						return nil
					},
				),
			},
			{
				Config:   clusterHCL(name, hosts, 3, withBackup),
				PlanOnly: true,
			},
		},
	})
}
