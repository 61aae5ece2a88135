package provider

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/cluster"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver/sshhost"
)

// The etcd_cluster acceptance tests run clusters on real sshd test hosts
// (testserver/sshhost). The provider runs inside this test binary, whose
// own executable cannot serve as an etcd member, so every configuration
// sets binary_path to a provider built once per test process; only
// TestAccClusterDefaultBinary runs the real binary through the CLI and
// uploads the default (its own executable).

var (
	clusterBinOnce sync.Once
	clusterBinDir  string
	clusterBinErr  error
)

// clusterBinary builds the provider into a temporary directory, once.
func clusterBinary(t *testing.T) string {
	t.Helper()
	clusterBinOnce.Do(func() {
		// One directory per test process, named by its pid; those of
		// processes that are gone are removed here (there is no TestMain
		// hook to remove it at exit).
		old, _ := filepath.Glob(filepath.Join(os.TempDir(), "etcd-cluster-acc-*"))
		for _, d := range old {
			var pid int
			if _, err := fmt.Sscanf(filepath.Base(d), "etcd-cluster-acc-%d", &pid); err == nil {
				if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
					os.RemoveAll(d)
				}
			}
		}
		clusterBinDir = filepath.Join(os.TempDir(), fmt.Sprintf("etcd-cluster-acc-%d", os.Getpid()))
		if clusterBinErr = os.MkdirAll(clusterBinDir, 0o755); clusterBinErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(clusterBinDir, "terraform-provider-etcd"), ".")
		cmd.Dir = filepath.Join("..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			clusterBinErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if clusterBinErr != nil {
		t.Fatal(clusterBinErr)
	}
	return filepath.Join(clusterBinDir, "terraform-provider-etcd")
}

// clusterHosts starts n SSH test hosts (acceptance tests only).
func clusterHosts(t *testing.T, n int) []*sshhost.Host {
	t.Helper()
	accCluster(t)
	return sshhost.Start(t, n)
}

// clusterHCL is an etcd_cluster named name on the first n hosts. extra is
// added inside the resource block.
func clusterHCL(name string, hosts []*sshhost.Host, n int, extra string) string {
	var keys []string
	for _, h := range hosts {
		keys = append(keys, h.HostKey)
	}
	var nodes []string
	for i := range n {
		h := hosts[i]
		nodes = append(nodes, fmt.Sprintf(`    {
      name        = "n%d"
      host        = %s
      install_dir = %s
      data_dir    = %s
    },`, i+1, hclString(hostOf(h)), hclString(path.Join(h.BaseDir, name, "opt")), hclString(path.Join(h.BaseDir, name, "data"))))
	}
	return fmt.Sprintf(`resource "etcd_cluster" "c" {
  name = %s
  ssh = {
    user            = %s
    private_key     = %s
    host_key        = %s
    connect_timeout = "5s"
  }
  nodes = [
%s
  ]
  wipe_data_on_destroy = true
%s
}
`, hclString(name), hclString(hosts[0].User), hclString(string(hosts[0].PrivateKeyPEM)), hclString(strings.Join(keys, "\n")), strings.Join(nodes, "\n"), extra)
}

// hostOf is the node's host attribute: the address, with the SSH port
// when it is not 22 (loopback mode).
func hostOf(h *sshhost.Host) string {
	if h.Port == 22 {
		return h.Addr
	}
	return h.HostPort()
}

func binaryLine(t *testing.T) string {
	return "  binary_path = " + hclString(clusterBinary(t)) + "\n"
}

// stateEndpoints are etcd_cluster.c's endpoints in the state.
func stateEndpoints(s *terraform.State) ([]string, error) {
	rs, ok := s.RootModule().Resources["etcd_cluster.c"]
	if !ok {
		return nil, errors.New("etcd_cluster.c not in state")
	}
	var eps []string
	for i := 0; ; i++ {
		ep, ok := rs.Primary.Attributes[fmt.Sprintf("endpoints.%d", i)]
		if !ok {
			return eps, nil
		}
		eps = append(eps, ep)
	}
}

// clusterClient is a plain clientv3 client for the cluster in the state.
func clusterClient(s *terraform.State) (*clientv3.Client, error) {
	rs, ok := s.RootModule().Resources["etcd_cluster.c"]
	if !ok {
		return nil, fmt.Errorf("etcd_cluster.c not in state")
	}
	a := rs.Primary.Attributes
	eps, err := stateEndpoints(s)
	if err != nil {
		return nil, err
	}
	cfg := clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if ca := a["ca_cert_pem"]; ca != "" {
		pair, err := tls.X509KeyPair([]byte(a["client_cert_pem"]), []byte(a["client_key_pem"]))
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(ca)) {
			return nil, fmt.Errorf("ca_cert_pem holds no certificate")
		}
		cfg.TLS = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	}
	return clientv3.New(cfg)
}

// withClusterClient calls f with a plain client of the cluster in the
// state and a context that ends after limit.
func withClusterClient(s *terraform.State, limit time.Duration, f func(context.Context, *clientv3.Client) error) error {
	cli, err := clusterClient(s)
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	return f(ctx, cli)
}

// checkClusterMembers checks the member list through a plain client.
func checkClusterMembers(names ...string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		return withClusterClient(s, 10*time.Second, func(ctx context.Context, cli *clientv3.Client) error {
			ml, err := cli.MemberList(ctx)
			if err != nil {
				return err
			}
			var got []string
			for _, m := range ml.Members {
				if m.IsLearner {
					return fmt.Errorf("member %s is a learner", m.Name)
				}
				got = append(got, m.Name)
			}
			if strings.Join(sortedStrings(got), ",") != strings.Join(names, ",") {
				return fmt.Errorf("members %v, want %v", got, names)
			}
			if _, err := cli.Put(ctx, "/acc/cluster-check", "ok"); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			return nil
		})
	}
}

// clusterIdentity checks etcd_cluster.c's resource identity.
func clusterIdentity(name string, endpoints []string) statecheck.StateCheck {
	var eps []knownvalue.Check
	for _, e := range endpoints {
		eps = append(eps, knownvalue.StringExact(e))
	}
	return statecheck.ExpectIdentity("etcd_cluster.c", map[string]knownvalue.Check{
		"name": knownvalue.StringExact(name), "endpoints": knownvalue.ListExact(eps),
	})
}

// accCLIBelow is a step's SkipFunc for a feature of CLI major.minor and
// later: it skips on the acceptance tests' CLI (TF_ACC_TERRAFORM_PATH, or
// terraform on PATH) when that is older, and says so.
func accCLIBelow(t *testing.T, major, minor int) func() (bool, error) {
	return func() (bool, error) {
		cli := os.Getenv("TF_ACC_TERRAFORM_PATH")
		if cli == "" {
			cli = "terraform"
		}
		out, err := exec.Command(cli, "version").Output()
		if err != nil {
			return false, fmt.Errorf("%s version: %w", cli, err)
		}
		if cliAtLeast(string(out), major, minor) {
			return false, nil
		}
		t.Logf("step skipped: it needs a CLI %d.%d or later, this is %s", major, minor, strings.SplitN(string(out), "\n", 2)[0])
		return true, nil
	}
}

func sortedStrings(s []string) []string {
	out := append([]string(nil), s...)
	for i := range out {
		for j := i + 1; j < len(out); j++ {
			if out[j] < out[i] {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out
}

func memberNames(names ...string) statecheck.StateCheck {
	var checks []knownvalue.Check
	for _, n := range names {
		checks = append(checks, knownvalue.ObjectPartial(map[string]knownvalue.Check{"name": knownvalue.StringExact(n), "is_learner": knownvalue.Bool(false)}))
	}
	return statecheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("members"), knownvalue.ListExact(checks))
}

// checkHostsEmpty asserts that nothing was written under the hosts' base
// dirs.
func checkHostsEmpty(t *testing.T, hosts []*sshhost.Host) {
	t.Helper()
	for _, h := range hosts {
		entries, err := os.ReadDir(h.BaseDir)
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) > 0 {
			t.Errorf("%s: something was written to %s: %v", h.Name, h.BaseDir, entries)
		}
	}
}

// Scenarios 1 (plain) and 3: bootstrap three members, import, scale
// 3 → 4 → 3.
func TestAccClusterPlainScale(t *testing.T) {
	hosts := clusterHosts(t, 4)
	bin := binaryLine(t)
	var eps []string
	for _, h := range hosts[:3] {
		eps = append(eps, "http://"+h.Addr+":2379")
	}
	ignore := []string{"ssh", "binary_path", "binary_sha256", "remote_binary", "service_manager", "install_dir", "data_dir",
		"wipe_data_on_destroy", "timeouts", "settings", "tls", "auto_compaction_mode", "auto_compaction_retention",
		"nodes.0.install_dir", "nodes.1.install_dir", "nodes.2.install_dir", "nodes.0.data_dir", "nodes.1.data_dir", "nodes.2.data_dir"}
	if hosts[0].Port != 22 {
		// Loopback mode: the configured hosts carry the SSH port, which
		// the cluster cannot know.
		ignore = append(ignore, "nodes.0.host", "nodes.1.host", "nodes.2.host")
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: clusterHCL("plain", hosts, 3, bin),
				Check:  checkClusterMembers("n1", "n2", "n3"),
				ConfigStateChecks: []statecheck.StateCheck{
					memberNames("n1", "n2", "n3"),
					statecheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("endpoints"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.StringExact(eps[0]), knownvalue.StringExact(eps[1]), knownvalue.StringExact(eps[2])})),
					statecheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("cluster_id"), knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f]+$`))),
					statecheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("ca_cert_pem"), knownvalue.Null()),
				},
			},
			{
				ResourceName:            "etcd_cluster.c",
				ImportState:             true,
				ImportStateId:           "plain@" + strings.Join(eps, ","),
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: ignore,
			},
			{
				// Resource identity (CLIs 1.12+): the name and client URLs,
				// and an import block by identity finds the same cluster.
				SkipFunc:          accCLIBelow(t, 1, 12),
				Config:            clusterHCL("plain", hosts, 3, bin),
				ConfigStateChecks: []statecheck.StateCheck{clusterIdentity("plain", eps)},
			},
			{
				SkipFunc:           accCLIBelow(t, 1, 12),
				Config:             clusterHCL("plain", hosts, 3, bin),
				ResourceName:       "etcd_cluster.c",
				ImportState:        true,
				ImportStateKind:    resource.ImportBlockWithResourceIdentity,
				ExpectNonEmptyPlan: true, // the SSH settings and directories come from the configuration
			},
			{
				Config:            clusterHCL("plain", hosts, 4, bin),
				Check:             checkClusterMembers("n1", "n2", "n3", "n4"),
				ConfigStateChecks: []statecheck.StateCheck{memberNames("n1", "n2", "n3", "n4")},
			},
			{
				// The identity follows the nodes.
				SkipFunc:          accCLIBelow(t, 1, 12),
				Config:            clusterHCL("plain", hosts, 4, bin),
				ConfigStateChecks: []statecheck.StateCheck{clusterIdentity("plain", append(eps, "http://"+hosts[3].Addr+":2379"))},
			},
			{
				Config:            clusterHCL("plain", hosts, 3, bin),
				Check:             checkClusterMembers("n1", "n2", "n3"),
				ConfigStateChecks: []statecheck.StateCheck{memberNames("n1", "n2", "n3")},
			},
			{
				// n2's member is removed outside Terraform: the refresh
				// shows it missing, and the apply joins it again (its old
				// data dir moved aside), without touching the others.
				PreConfig: func() {
					cli, err := clientv3.New(clientv3.Config{Endpoints: eps[:1], DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
					if err != nil {
						t.Fatal(err)
					}
					defer cli.Close()
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					ml, err := cli.MemberList(ctx)
					if err != nil {
						t.Fatal(err)
					}
					for _, m := range ml.Members {
						if m.Name == "n2" {
							if _, err := cli.MemberRemove(ctx, m.ID); err != nil {
								t.Fatal(err)
							}
						}
					}
				},
				Config: clusterHCL("plain", hosts, 3, bin),
				Check: resource.ComposeTestCheckFunc(checkClusterMembers("n1", "n2", "n3"), func(*terraform.State) error {
					matches, _ := filepath.Glob(path.Join(hosts[1].BaseDir, "plain", "data.removed-*"))
					if len(matches) != 1 {
						return fmt.Errorf("the removed member's data dir was not kept aside: %v", matches)
					}
					return nil
				}),
				ConfigStateChecks: []statecheck.StateCheck{memberNames("n1", "n2", "n3")},
			},
		},
	})
}

// wiredProviderHCL is a provider block, etcdwired, configured from the
// outputs of etcd_cluster.c: the pattern the TLS guide documents.
const wiredProviderHCL = `
provider "etcdwired" {
  endpoints = etcd_cluster.c.endpoints
  ca_cert   = etcd_cluster.c.ca_cert_pem
  cert      = etcd_cluster.c.client_cert_pem
  key       = etcd_cluster.c.client_key_pem
}
`

// Scenarios 1 (TLS) and 2: a TLS cluster, and in the same configuration a
// provider wired to its outputs writes a key, checked with a plain client.
// The cluster uses the implicit default provider (no endpoints); the key uses
// the only provider block, the one wired to the cluster.
//
// Terraform runs one provider process per provider configuration, but the
// in-process server of plugin-testing is one per provider name, shared by
// every configuration of that name: with an alias, whichever configuration
// was configured last would serve both. So the wired configuration is the
// same provider under a second name (as google-beta serves google_*
// resources), with a server of its own.
func TestAccClusterTLSWiredProvider(t *testing.T) {
	hosts := clusterHosts(t, 3)
	config := clusterHCL("secure", hosts, 3, binaryLine(t)+"  tls = { auto = true }\n") + wiredProviderHCL + `
resource "etcd_key" "wired" {
  provider = etcdwired
  key      = "/wired/hello"
  value    = "from the same apply"
}
`
	var caPEM string
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: map[string]func() (tfprotov6.ProviderServer, error){
			"etcd":      NewProtocol6Server("test"),
			"etcdwired": NewProtocol6Server("test"),
		},
		Steps: []resource.TestStep{
			{
				Config: config,
				Check: resource.ComposeTestCheckFunc(
					checkClusterMembers("n1", "n2", "n3"),
					func(s *terraform.State) error {
						caPEM = s.RootModule().Resources["etcd_cluster.c"].Primary.Attributes["ca_cert_pem"]
						cli, err := clusterClient(s)
						if err != nil {
							return err
						}
						defer cli.Close()
						ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
						defer cancel()
						r, err := cli.Get(ctx, "/wired/hello")
						if err != nil {
							return err
						}
						if len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "from the same apply" {
							return fmt.Errorf("/wired/hello: %v", r.Kvs)
						}
						return nil
					},
				),
				ConfigStateChecks: []statecheck.StateCheck{
					memberNames("n1", "n2", "n3"),
					statecheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("endpoints").AtSliceIndex(0), knownvalue.StringRegexp(regexp.MustCompile(`^https://`))),
					statecheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("client_key_pem"), knownvalue.StringRegexp(regexp.MustCompile(`PRIVATE KEY`))),
				},
			},
			{
				// Plan again after a refresh: the TLS material is stable.
				Config:   config,
				PlanOnly: true,
				Check: func(s *terraform.State) error {
					if got := s.RootModule().Resources["etcd_cluster.c"].Primary.Attributes["ca_cert_pem"]; got != caPEM {
						return fmt.Errorf("ca_cert_pem changed")
					}
					return nil
				},
			},
		},
	})
}

// Scenario 4: a settings change restarts the members one at a time while a
// writer keeps writing; every acknowledged write is there afterwards.
func TestAccClusterRollingSettings(t *testing.T) {
	hosts := clusterHosts(t, 3)
	bin := binaryLine(t)
	var (
		w *ackWriter
		// ackedBefore is how many writes were acknowledged before the
		// step that restarts the members.
		ackedBefore int
	)
	startWriter := func(s *terraform.State) error {
		var err error
		// The rolling restart starts once writes are going through.
		w, err = startAckWriter(s, "/rolling/")
		if err == nil {
			ackedBefore = w.acks()
		}
		return err
	}
	verify := func(s *terraform.State) error { return w.verifyState(s, t, ackedBefore) }
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: clusterHCL("rolling", hosts, 3, bin),
				Check:  resource.ComposeTestCheckFunc(checkClusterMembers("n1", "n2", "n3"), startWriter),
			},
			{
				Config: clusterHCL("rolling", hosts, 3, bin+`  settings = { "snapshot-count" = "2000" }`+"\n"+`  auto_compaction_retention = "2h"`+"\n"),
				Check: resource.ComposeTestCheckFunc(verify, func(*terraform.State) error {
					out, err := hosts[0].Run(context.Background(), "cat "+path.Join(hosts[0].BaseDir, "rolling", "opt", "etc", "etcd.yaml"))
					if err != nil || !strings.Contains(out, "snapshot-count: 2000") ||
						!regexp.MustCompile(`(?m)^auto-compaction-retention: "?2h"?$`).MatchString(out) ||
						!regexp.MustCompile(`(?m)^auto-compaction-mode: "?periodic"?$`).MatchString(out) {
						return fmt.Errorf("config of n1 after the rolling restart: %v\n%s", err, out)
					}
					return nil
				}),
			},
		},
	})
}

// Scenario 5: a node goes down while its binary is being uploaded. The error
// names it; applying again after it is back converges.
func TestAccClusterNodeDownDuringApply(t *testing.T) {
	hosts := clusterHosts(t, 3)
	config := clusterHCL("down", hosts, 3, binaryLine(t))
	victim := hosts[2]
	watchDone := make(chan struct{})
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				PreConfig: func() {
					// Take the host down as soon as the upload to it starts.
					go func() {
						defer close(watchDone)
						dir := path.Join(victim.BaseDir, "down", "opt", "bin")
						deadline := time.Now().Add(2 * time.Minute)
						for time.Now().Before(deadline) {
							if entries, _ := os.ReadDir(dir); len(entries) > 0 {
								if err := victim.Down(); err != nil {
									t.Errorf("down: %v", err)
								}
								return
							}
							time.Sleep(20 * time.Millisecond)
						}
						t.Errorf("the upload to %s never started", victim.Name)
					}()
				},
				Config:      config,
				ExpectError: regexp.MustCompile(`node\s+"n3"\s+\(` + regexp.QuoteMeta(hostOf(victim))),
			},
			{
				PreConfig: func() {
					<-watchDone
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					if err := victim.Up(ctx); err != nil {
						t.Fatalf("up: %v", err)
					}
				},
				Config: config,
				Check:  checkClusterMembers("n1", "n2", "n3"),
			},
		},
	})
}

// Scenario 7: Debian's stock etcd (3.4) runs the same config files.
func TestAccClusterStockEtcd(t *testing.T) {
	const stock = "/usr/bin/etcd"
	if _, err := os.Stat(stock); err != nil {
		accCluster(t)
		t.Skipf("%s is not installed (apt-get install etcd-server): %v", stock, err)
	}
	hosts := clusterHosts(t, 3)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{{
			Config: clusterHCL("stock", hosts, 3, `  remote_binary = "`+stock+`"`+"\n"+`  settings = { "snapshot-count" = "5000" }`+"\n"),
			Check: resource.ComposeTestCheckFunc(checkClusterMembers("n1", "n2", "n3"), func(*terraform.State) error {
				out, err := hosts[0].Run(context.Background(), "ps -eo args | grep -F '"+stock+" --config-file' | grep -v grep")
				if err != nil || !strings.Contains(out, stock) {
					return fmt.Errorf("no stock etcd process on %s: %v %s", hosts[0].Name, err, out)
				}
				return nil
			}),
		}},
	})
}

// TestAccClusterThroughBastion bootstraps a cluster on a machine that the
// provider reaches over SSH only through a bastion (ssh.bastion), as on a
// private network: a wrong bastion host key fails, naming the bastion,
// before anything is written; the cluster comes up through the bastion;
// and destroy wipes the node through it too.
func TestAccClusterThroughBastion(t *testing.T) {
	hosts := clusterHosts(t, 2)
	bastion, target := hosts[0], hosts[1]
	ctx := stepsContext(t)
	sshOnlyThroughBastion(t, ctx, target)
	bin := binaryLine(t)
	// Both machines' host keys are in ssh.host_key, which the bastion
	// inherits unless it sets its own.
	withBastion := func(extra string) string {
		cfg := clusterHCL("viabastion", []*sshhost.Host{target, bastion}, 1, bin)
		old := "    connect_timeout = \"5s\"\n  }"
		if strings.Count(cfg, old) != 1 {
			t.Fatalf("unexpected etcd_cluster config:\n%s", cfg)
		}
		return strings.Replace(cfg, old, fmt.Sprintf("    connect_timeout = \"5s\"\n    bastion = {\n      host = %q\n      port = %d\n      %s\n    }\n  }",
			bastion.Addr, bastion.Port, extra), 1)
	}
	dataDir := path.Join(target.BaseDir, "viabastion", "data")
	// The clock starts with the first step: ParallelTest first waits for
	// a free slot.
	var begin time.Time
	logTime := func(what string) { t.Logf("%s after %s", what, time.Since(begin)) }
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: func(*terraform.State) error {
			logTime("destroyed")
			// wipe_data_on_destroy ran on the node, so through the
			// bastion. (The hosts' files are this machine's files.)
			if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
				return fmt.Errorf("the node's data dir %s is still there after destroy (%v)", dataDir, err)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				PreConfig:   func() { begin = time.Now() },
				Config:      withBastion("host_key = " + hclString(target.HostKey)),
				ExpectError: regexp.MustCompile(`via\s+bastion[\s\S]*host\s+key\s+mismatch`),
			},
			{
				PreConfig: func() { logTime("refused the wrong bastion key"); checkHostsEmpty(t, hosts) },
				Config:    withBastion(""),
				Check:     resource.ComposeTestCheckFunc(func(*terraform.State) error { logTime("bootstrapped"); return nil }, checkClusterMembers("n1")),
				ConfigStateChecks: []statecheck.StateCheck{
					memberNames("n1"),
					statecheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("ssh").AtMapKey("bastion").AtMapKey("host"),
						knownvalue.StringExact(bastion.Addr)),
				},
			},
			{
				Config:   withBastion(""),
				PlanOnly: true,
			},
		},
	})
}

// Scenario 8: bad input fails with a clear error, and nothing is written to
// any node.
func TestAccClusterBadInput(t *testing.T) {
	hosts := clusterHosts(t, 3)
	bin := binaryLine(t)
	dup := strings.Replace(clusterHCL("bad", hosts, 3, bin), `name        = "n2"`, `name        = "n1"`, 1)
	unreachable := strings.Replace(clusterHCL("bad", hosts, 3, bin), hclString(hostOf(hosts[2])), `"192.0.2.1"`, 1)
	if hosts[0].Mode == sshhost.ModeLoopback {
		unreachable = strings.Replace(clusterHCL("bad", hosts, 3, bin), hclString(hostOf(hosts[2])), `"127.0.0.1:1"`, 1)
	}
	other := otherSSHKey(t)
	wrongKey := strings.Replace(clusterHCL("bad", hosts, 3, bin), hclString(string(hosts[0].PrivateKeyPEM)), hclString(other), 1)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config:      clusterHCL("bad", hosts, 3, bin+`  settings = { "snapshot-cuont" = "1" }`+"\n"),
				ExpectError: errorText(`did you mean "snapshot-count"`),
			},
			{
				Config:      dup,
				ExpectError: errorText(`nodes[0] and nodes[1] are both named "n1"`),
			},
			{
				Config:      unreachable,
				ExpectError: regexp.MustCompile(`node\s+"n3"[\s\S]*(timed\s+out|unreachable|refused)`),
			},
			{
				Config:      wrongKey,
				ExpectError: regexp.MustCompile(`node\s+"n1"[\s\S]*authentication\s+failed`),
			},
		},
	})
	checkHostsEmpty(t, hosts)
}

func otherSSHKey(t *testing.T) string {
	dir := t.TempDir()
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "k")).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "k"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The default binary is the provider's own executable: the real provider
// binary, run by the CLI through dev_overrides, uploads itself and the nodes
// run it in server mode.
func TestAccClusterDefaultBinary(t *testing.T) {
	cli := os.Getenv("TF_ACC_TERRAFORM_PATH")
	hosts := clusterHosts(t, 3)
	if cli == "" {
		t.Skip("TF_ACC_TERRAFORM_PATH is not set: this test runs the CLI itself")
	}
	bin := clusterBinary(t)
	cliConfig := writeTempFile(t, "dev.tfrc", fmt.Appendf(nil, `provider_installation {
  dev_overrides {
    "registry.terraform.io/terraform-etcd/etcd"  = %q
    "registry.opentofu.org/terraform-etcd/etcd" = %q
  }
  direct {}
}
`, filepath.Dir(bin), filepath.Dir(bin)))
	work := t.TempDir()
	config := `terraform {
  required_providers {
    etcd = { source = "terraform-etcd/etcd" }
  }
}
` + clusterHCL("self", hosts, 3, "") + `
output "endpoints" { value = etcd_cluster.c.endpoints }
`
	if err := os.WriteFile(filepath.Join(work, "main.tf"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(cli, args...)
		cmd.Dir = work
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TF_CLI_CONFIG_FILE=" + cliConfig,
			"CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1", "TF_INPUT=0"}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(cli), args[0], err, tail(out.String(), 4000))
		}
		return out.String()
	}
	destroyed := false
	t.Cleanup(func() {
		if !destroyed {
			run("destroy", "-auto-approve", "-no-color")
		}
	})
	run("apply", "-auto-approve", "-no-color")
	remote := path.Join(hosts[0].BaseDir, "self", "opt", "bin", "terraform-provider-etcd")
	want, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(remote)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("the node does not run the provider's own executable (%s): %v", remote, err)
	}
	out, err := hosts[0].Run(context.Background(), "ps -eo args | grep -F 'terraform-provider-etcd server --config-file' | grep -v grep")
	if err != nil || !strings.Contains(out, remote) {
		t.Fatalf("no bundled server process on %s: %v %s", hosts[0].Name, err, out)
	}
	if plan := run("plan", "-detailed-exitcode", "-no-color"); !strings.Contains(plan, "No changes") {
		t.Fatalf("plan after apply is not empty:\n%s", plan)
	}
	run("destroy", "-auto-approve", "-no-color")
	destroyed = true
	if _, err := os.Stat(remote); !os.IsNotExist(err) {
		t.Fatalf("binary left after destroy: %v", err)
	}
}

// The documentation example is a valid configuration. Its nodes do not
// exist here, so it is planned only.
func TestAccClusterExample(t *testing.T) {
	accCluster(t)
	key := otherSSHKey(t)
	pub := hostKeyOf(t, key)
	resource.ParallelTest(t, resource.TestCase{
		Steps: []resource.TestStep{{
			ProtoV6ProviderFactories: testAccProviders,
			ConfigDirectory:          config.StaticDirectory("../../examples/resources/etcd_cluster"),
			ConfigVariables: config.Variables{
				"ssh_private_key": config.StringVariable(key),
				"ssh_host_keys":   config.StringVariable(pub),
			},
			PlanOnly:           true,
			ExpectNonEmptyPlan: true,
		}},
	})
}

// hostKeyOf returns the public key of a private key in authorized_keys
// form, to stand in for a host key.
func hostKeyOf(t *testing.T, privateKey string) string {
	p := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(p, []byte(privateKey), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("ssh-keygen", "-y", "-f", p).Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}

// ValidateConfig leaves out the spec errors that an attribute validator
// reports already (duplicate node names, settings), by type, and keeps the
// others.
func TestWithoutValidatorErrors(t *testing.T) {
	s := cluster.Spec{
		Name:     "c",
		Nodes:    []cluster.Node{{Name: "n1", Host: "10.0.0.1"}, {Name: "n1", Host: "not-an-ip"}},
		Settings: map[string]string{"snapshot-cuont": "1"},
		Binary:   cluster.Binary{RemotePath: "/usr/bin/etcd"},
	}
	err := s.Validate()
	var fe *cluster.FieldError
	if !errors.Is(err, cluster.ErrDuplicateNodeName) || !errors.As(err, &fe) {
		t.Fatalf("Validate() = %v; want a duplicate name among field errors", err)
	}
	rest := withoutValidatorErrors(err)
	var kept []string
	for _, e := range unjoinErr(rest) {
		if e == nil {
			continue
		}
		kept = append(kept, e.Error())
		if errors.Is(e, cluster.ErrDuplicateNodeName) {
			t.Errorf("duplicate name kept: %v", e)
		}
		if errors.As(e, &fe) && fe.Attr == "settings" {
			t.Errorf("settings error kept: %v", e)
		}
	}
	if !slices.ContainsFunc(kept, func(s string) bool { return strings.Contains(s, `nodes[1].host: "not-an-ip" is not an IP address`) }) {
		t.Errorf("kept %q; want the host error among them", kept)
	}
	if withoutValidatorErrors(nil) != nil {
		t.Error("withoutValidatorErrors(nil) != nil")
	}
}
