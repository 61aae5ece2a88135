package provider

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	fwpath "github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	fwresource "github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/etcdconf"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/memberhost"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/membership"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/membership/membertest"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/pki"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver/sshhost"
)

func memberConfig(name string, peerURLs []string, extra string) string {
	return fmt.Sprintf("resource \"etcd_member\" \"test\" {\n  name      = %s\n  peer_urls = %s\n  %s\n}\n",
		hclString(name), hclList(peerURLs), extra)
}

// checkMember compares the resource's state with a plain clientv3 member list.
func checkMember(addr string, wantLearner bool) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		rs, ok := s.RootModule().Resources[addr]
		if !ok {
			return fmt.Errorf("%s not in state", addr)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ml, err := testCluster.Client().MemberList(ctx)
		if err != nil {
			return err
		}
		for _, m := range ml.Members {
			if membership.FormatID(m.ID) != rs.Primary.ID {
				continue
			}
			if m.IsLearner != wantLearner {
				return fmt.Errorf("member %s: learner=%v, want %v", rs.Primary.ID, m.IsLearner, wantLearner)
			}
			if got := rs.Primary.Attributes["is_learner"]; got != fmt.Sprint(wantLearner) {
				return fmt.Errorf("is_learner = %s in state", got)
			}
			return nil
		}
		return fmt.Errorf("member %s not in the cluster", rs.Primary.ID)
	}
}

// checkMemberCount checks with a plain client that the shared cluster has
// want members.
func checkMemberCount(c *testserver.Cluster, want int) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ml, err := c.Client().MemberList(ctx)
		if err != nil {
			return err
		}
		if len(ml.Members) != want {
			return fmt.Errorf("the cluster has %d members, want %d", len(ml.Members), want)
		}
		return nil
	}
}

// TestAccMemberWithoutNode adds a learner to the shared cluster through
// etcd_member without node, starts its process the way an operator would
// (an embedded member with initial_cluster, existing state and an empty
// data dir), lets the next apply promote it, imports it by name and by ID,
// and removes it on destroy.
func TestAccMemberWithoutNode(t *testing.T) {
	c := accCluster(t)
	name := "joiner"
	peer, clientURL := membertest.FreeURL(t), membertest.FreeURL(t)
	cfg := providerConfig() + memberConfig(name, []string{peer}, "")
	var joiner *membertest.Joiner
	t.Cleanup(func() {
		if joiner != nil {
			joiner.Stop()
		}
	})
	begin := time.Now()
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: func(*terraform.State) error {
			// A removed in-process member panics on the next request it
			// serves: stop it first.
			if joiner != nil {
				joiner.Stop()
			}
			return checkMemberCount(c, 3)(nil)
		},
		Steps: []resource.TestStep{
			{
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("etcd_member.test", tfjsonpath.New("is_learner"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue("etcd_member.test", tfjsonpath.New("client_urls"), knownvalue.ListSizeExact(0)),
					statecheck.ExpectKnownValue("etcd_member.test", tfjsonpath.New("learner"), knownvalue.Bool(true)),
					statecheck.ExpectKnownValue("etcd_member.test", tfjsonpath.New("initial_cluster"),
						knownvalue.StringRegexp(regexp.MustCompile(regexp.QuoteMeta(name+"="+peer)))),
				},
				Check: checkMember("etcd_member.test", true),
			},
			{
				// The operator starts the process; the next plan promotes.
				PreConfig: func() {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					l, err := membership.MemberList(ctx, c.Client())
					if err != nil {
						t.Fatal(err)
					}
					m, ok := l.ByPeerURL(peer)
					if !ok {
						t.Fatalf("no member with %s", peer)
					}
					joiner = membertest.Join(t, name, peer, clientURL, l.InitialCluster(m.ID, name))
					if err := joiner.Ready(30 * time.Second); err != nil {
						t.Fatal(err)
					}
					// Let a refresh see its client URLs.
					if _, err := membership.WaitStarted(ctx, c.Client(), m.ID); err != nil {
						t.Fatal(err)
					}
				},
				Config: cfg,
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("etcd_member.test", plancheck.ResourceActionUpdate)},
				},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("etcd_member.test", tfjsonpath.New("is_learner"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue("etcd_member.test", tfjsonpath.New("client_urls"),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact(clientURL)})),
				},
				Check: checkMember("etcd_member.test", false),
			},
			{
				Config:   cfg,
				PlanOnly: true,
			},
			{
				ResourceName:      "etcd_member.test",
				ImportState:       true,
				ImportStateId:     name,
				ImportStateVerify: true,
			},
			{
				ResourceName: "etcd_member.test",
				ImportState:  true,
				ImportStateIdFunc: func(s *terraform.State) (string, error) {
					return s.RootModule().Resources["etcd_member.test"].Primary.ID, nil
				},
				ImportStateVerify: true,
			},
			{
				Config: cfg + "data \"etcd_members\" \"all\" {\n  depends_on = [etcd_member.test]\n}\n",
				Check: resource.ComposeAggregateTestCheckFunc(
					resource.TestCheckResourceAttr("data.etcd_members.all", "members.#", "4"),
					checkMembersDataSource("data.etcd_members.all"),
				),
			},
		},
	})
	t.Logf("add, join, promote, import and remove without node: %s", time.Since(begin))
}

// TestAccMemberVoter adds a voting member directly (learner = false); the
// cluster then counts it before its process runs, so it is removed at once.
func TestAccMemberVoter(t *testing.T) {
	c := accCluster(t)
	peer := membertest.FreeURL(t)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkMemberCount(c, 3),
		Steps: []resource.TestStep{{
			Config: providerConfig() + memberConfig("voter", []string{peer}, "learner = false"),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue("etcd_member.test", tfjsonpath.New("is_learner"), knownvalue.Bool(false)),
				statecheck.ExpectKnownValue("etcd_member.test", tfjsonpath.New("client_urls"), knownvalue.ListSizeExact(0)),
			},
			Check: checkMember("etcd_member.test", false),
		}},
	})
}

func TestAccMemberBadInput(t *testing.T) {
	c := accCluster(t)
	taken := c.Members()[0]
	free := membertest.FreeURL(t)
	node := func(attrs string) string {
		return "node = {\n    host = \"10.0.0.9\"\n    " + attrs + "\n  }"
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkMemberCount(c, 3),
		Steps: []resource.TestStep{
			{
				Config:      providerConfig() + memberConfig("x", []string{"10.0.0.9:2380"}, ""),
				ExpectError: errorText("is not a URL: write it as scheme://host:port"),
			},
			{
				Config:      providerConfig() + memberConfig("x", []string{"ftp://10.0.0.9:2380"}, ""),
				ExpectError: errorText("the scheme must be http or https"),
			},
			{
				Config:      providerConfig() + memberConfig("x", []string{"https://10.0.0.9:2380/path"}, ""),
				ExpectError: errorText("without path, query or user"),
			},
			{
				Config:      providerConfig() + memberConfig("bad name", []string{free}, ""),
				ExpectError: errorText("must start with a letter or digit"),
			},
			{
				Config:      providerConfig() + memberConfig(taken.Name, []string{free}, ""),
				ExpectError: errorText(fmt.Sprintf("already has a member named %q", taken.Name)),
			},
			{
				Config:      providerConfig() + memberConfig("newcomer", taken.PeerURLs, ""),
				ExpectError: errorText("already has peer URL " + taken.PeerURLs[0] + ". To manage that member, import it"),
			},
			{
				Config: providerConfig() + memberConfig("newcomer", []string{free},
					node(`ssh = { private_key = "k" }`)),
				ExpectError: errorText("Missing host key"),
			},
			{
				Config: providerConfig() + memberConfig("newcomer", []string{free},
					node(`ssh = { insecure_ignore_host_key = true }
    binary_path = "/bin/true"
    remote_binary = "/usr/bin/etcd"`)),
				ExpectError: errorText("Set binary_path (a local binary to upload) or remote_binary"),
			},
			{
				Config: providerConfig() + memberConfig("newcomer", []string{free},
					node(`ssh = { insecure_ignore_host_key = true }
    data_dir = "relative/dir"`)),
				ExpectError: errorText("must be an absolute path on the machine"),
			},
			{
				Config: providerConfig() + memberConfig("newcomer", []string{free},
					node(`ssh = { insecure_ignore_host_key = true }
    settings = { "snapshot-cout" = "1" }`)),
				ExpectError: errorText("snapshot-cout"),
			},
			{
				// A timeout that is not a duration is refused at plan time,
				// on the attribute.
				Config:      providerConfig() + memberConfig("newcomer", []string{free}, `timeouts = { create = "ten minutes" }`),
				ExpectError: errorText(`timeouts.create: "ten minutes" is not a duration`),
			},
			{
				Config:      providerConfig() + memberConfig("newcomer", []string{free}, `timeouts = { delete = "-5m" }`),
				ExpectError: errorText(`timeouts.delete: "-5m" must be a positive duration`),
			},
			{
				// Known only at apply: refused there, before the cluster is
				// touched.
				PreConfig: requireMemberCount(t, c, 3),
				Config: providerConfig() + "resource \"terraform_data\" \"late\" {\n  input = \"ten minutes\"\n}\n" +
					memberConfig("newcomer", []string{free}, `timeouts = { create = terraform_data.late.output }`),
				ExpectError: regexp.MustCompile(`"ten\s+minutes"\s+is\s+not\s+a`),
			},
			{
				// The create's deadline is timeouts.create: with 1ns it
				// stops at the first step (reaching the machine) and says
				// which timeout it ran into.
				PreConfig: requireMemberCount(t, c, 3),
				Config: providerConfig() + memberConfig("newcomer", []string{free}, `timeouts = { create = "1ns" }
  `+node(`ssh = {
      private_key = `+hclString(otherSSHKey(t))+`
      insecure_ignore_host_key = true
    }`)),
				ExpectError: errorText(`The operation ran into its timeout (1ns); raise it with timeouts = { create = "..." }`),
			},
			{
				PreConfig:     requireMemberCount(t, c, 3),
				Config:        providerConfig() + memberConfig("ghost", []string{free}, ""),
				ResourceName:  "etcd_member.test",
				ImportState:   true,
				ImportStateId: "ghost",
				ExpectError:   errorText(`No member has ID or name "ghost"`),
			},
		},
	})
}

// requireMemberCount is a PreConfig that stops the test unless the shared
// cluster has want members: a failed step before it changed nothing.
func requireMemberCount(t *testing.T, c *testserver.Cluster, want int) func() {
	return func() {
		if err := checkMemberCount(c, want)(nil); err != nil {
			t.Fatal(err)
		}
	}
}

// memberTestBinary builds the provider (the bundled server the nodes run)
// into dir.
func memberTestBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "terraform-provider-etcd")
	begin := time.Now()
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = filepath.Join("..", "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	t.Logf("built the provider binary in %s", time.Since(begin))
	return bin
}

// sshTestCluster is a 3-member TLS cluster that the test bootstrapped on
// SSH hosts with internal/node, the way an operator bootstraps by hand.
type sshTestCluster struct {
	ca        *pki.CA
	client    *pki.KeyPair
	endpoints []string
	services  []node.Service
}

func memberSSHConfig(h *sshhost.Host) node.SSHConfig {
	return node.SSHConfig{Host: h.Addr, Port: h.Port, User: h.User, PrivateKey: string(h.PrivateKeyPEM), HostKey: h.HostKey}
}

func certHosts(h *sshhost.Host) []string {
	if h.Mode == sshhost.ModeLoopback {
		// Hosts share lo: peers connect from 127.0.0.1, and etcd checks a
		// peer's source address against its certificate.
		return []string{h.Addr, "127.0.0.1"}
	}
	return []string{h.Addr}
}

func bootstrapSSHCluster(t *testing.T, ctx context.Context, hosts []*sshhost.Host, bin string) *sshTestCluster {
	t.Helper()
	ca, err := pki.NewCA(pki.CAOptions{CommonName: "member-test-ca"})
	if err != nil {
		t.Fatal(err)
	}
	clientCert, err := ca.IssueClient("root", pki.Window{})
	if err != nil {
		t.Fatal(err)
	}
	c := &sshTestCluster{ca: ca, client: clientCert}
	var initial []etcdconf.Member
	for i, h := range hosts {
		initial = append(initial, etcdconf.Member{Name: fmt.Sprintf("m%d", i+1), PeerURLs: []string{"https://" + h.Addr + ":2380"}})
		c.endpoints = append(c.endpoints, "https://"+h.Addr+":2379")
	}
	t.Cleanup(func() {
		for _, s := range c.services {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_ = s.Stop(sctx)
			cancel()
		}
	})
	for i, h := range hosts {
		cl, err := node.Dial(ctx, memberSSHConfig(h))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		name := initial[i].Name
		certs, err := ca.IssueMember(pki.MemberRequest{Name: name, Hosts: certHosts(h)})
		if err != nil {
			t.Fatal(err)
		}
		install := path.Join(h.BaseDir, "opt", "etcd")
		remoteBin := path.Join(install, "bin", "terraform-provider-etcd")
		if _, err := cl.UploadFile(ctx, bin, remoteBin, 0o755); err != nil {
			t.Fatal(err)
		}
		pkiDir := path.Join(install, "pki")
		for f, data := range map[string][]byte{
			"ca.pem": ca.CertPEM, "server.pem": certs.Server.CertPEM, "server-key.pem": certs.Server.KeyPEM,
			"peer.pem": certs.Peer.CertPEM, "peer-key.pem": certs.Peer.KeyPEM,
		} {
			if _, err := cl.Upload(ctx, path.Join(pkiDir, f), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		tlsFor := func(cert, key string) *etcdconf.TLS {
			return &etcdconf.TLS{CertFile: path.Join(pkiDir, cert), KeyFile: path.Join(pkiDir, key), TrustedCAFile: path.Join(pkiDir, "ca.pem"), ClientCertAuth: true}
		}
		conf, err := etcdconf.Render(etcdconf.Config{
			Name:                name,
			DataDir:             path.Join(h.BaseDir, "var", "lib", "etcd"),
			ListenPeerURLs:      initial[i].PeerURLs,
			AdvertisePeerURLs:   initial[i].PeerURLs,
			ListenClientURLs:    []string{c.endpoints[i]},
			AdvertiseClientURLs: []string{c.endpoints[i]},
			InitialCluster:      initial,
			InitialClusterState: etcdconf.StateNew,
			InitialClusterToken: "member-test",
			ClientTLS:           tlsFor("server.pem", "server-key.pem"),
			PeerTLS:             tlsFor("peer.pem", "peer-key.pem"),
		})
		if err != nil {
			t.Fatal(err)
		}
		confPath := path.Join(install, "etc", "etcd.yaml")
		if _, err := cl.Upload(ctx, confPath, conf, 0o644); err != nil {
			t.Fatal(err)
		}
		svc, err := node.NewService(ctx, cl, node.ServiceProcess, node.ServiceSpec{
			Name:    "etcd-" + name,
			Command: []string{remoteBin, "server", "--config-file", confPath},
			WorkDir: install,
			RunDir:  path.Join(install, "run"),
			Notify:  true,
		})
		if err != nil {
			t.Fatal(err)
		}
		c.services = append(c.services, svc)
		if _, err := svc.Install(ctx); err != nil {
			t.Fatal(err)
		}
		if err := svc.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cli := c.newClient(t, c.endpoints...)
	for {
		h, err := membership.CheckQuorum(ctx, cli)
		if err == nil && h.HealthyVoters() == len(hosts) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("bootstrap: cluster not healthy: %v", err)
		}
		time.Sleep(300 * time.Millisecond)
	}
	return c
}

func (c *sshTestCluster) newClient(t *testing.T, endpoints ...string) *clientv3.Client {
	t.Helper()
	cert, err := c.client.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		TLS:         &tls.Config{RootCAs: c.ca.Pool(), Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

func (c *sshTestCluster) providerBlock() string {
	return fmt.Sprintf("provider \"etcd\" {\n  endpoints = %s\n  ca_cert = %s\n  cert = %s\n  key = %s\n}\n",
		hclList(c.endpoints), hclString(string(c.ca.CertPEM)), hclString(string(c.client.CertPEM)), hclString(string(c.client.KeyPEM)))
}

// memberNodeConfig is an etcd_member with node on host h, logging in
// directly.
func (c *sshTestCluster) memberNodeConfig(resName, name string, h *sshhost.Host, bin, snapshotCount, extra string) string {
	return c.memberNodeConfigSSH(resName, name, h, bin, snapshotCount, sshHCL(h, h.HostKey, ""), extra, "")
}

// sshHCL is a node.ssh block for h accepting hostKeys; extra goes inside.
func sshHCL(h *sshhost.Host, hostKeys, extra string) string {
	return fmt.Sprintf(`ssh = {
      user        = %q
      port        = %d
      private_key = %s
      host_key    = %s
      %s
    }`, h.User, h.Port, hclString(string(h.PrivateKeyPEM)), hclString(hostKeys), extra)
}

// memberNodeConfigSSH is an etcd_member with node on host h, reached with
// the node.ssh block ssh; extra goes into node, top into the resource.
func (c *sshTestCluster) memberNodeConfigSSH(resName, name string, h *sshhost.Host, bin, snapshotCount, ssh, extra, top string) string {
	sans := "[]"
	if h.Mode == sshhost.ModeLoopback {
		sans = `["127.0.0.1"]`
	}
	return fmt.Sprintf(`resource "etcd_member" %q {
  name      = %q
  peer_urls = ["https://%s:2380"]
  node = {
    host = %q
    %s
    binary_path     = %q
    install_dir     = %q
    data_dir        = %q
    service_manager = "process"
    settings        = { "snapshot-count" = %q }
    tls = {
      ca_cert_pem = %s
      ca_key_pem  = %s
      extra_sans  = %s
    }
    %s
  }
  %s
}
`, resName, name, h.Addr, h.Addr, ssh, bin,
		path.Join(h.BaseDir, "opt", "etcd-member"), path.Join(h.BaseDir, "var", "lib", "etcd-member"), snapshotCount,
		hclString(string(c.ca.CertPEM)), hclString(string(c.ca.KeyPEM)), sans, extra, top)
}

// checkVoters checks with a plain client that the cluster has exactly the
// named members, all voting and healthy, and that key reads want through
// every member.
func (c *sshTestCluster) checkVoters(t *testing.T, endpoints []string, key, want string, names ...string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cli := c.newClient(t, endpoints...)
		h, err := membership.CheckQuorum(ctx, cli)
		if err != nil {
			return err
		}
		var got []string
		for _, m := range h.Members {
			got = append(got, m.Name)
			if m.IsLearner || !m.Healthy {
				return fmt.Errorf("member %s: learner=%v healthy=%v (%v)", m.Name, m.IsLearner, m.Healthy, m.Err)
			}
			if key == "" {
				continue
			}
			one := c.newClient(t, m.ClientURLs...)
			r, err := one.Get(ctx, key)
			if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != want {
				return fmt.Errorf("read %s through %s: %v %v", key, m.Name, r, err)
			}
		}
		slices.Sort(got)
		slices.Sort(names)
		if !slices.Equal(got, names) {
			return fmt.Errorf("members %v, want %v", got, names)
		}
		return nil
	}
}

// TestAccMemberOnNodes bootstraps a 3-member TLS cluster on SSH hosts by
// hand, then with etcd_member: adds a 4th member on a 4th host (learner,
// promoted), imports it, removes it again (3 → 4 → 3), refuses to reuse its
// now stale data dir, and replaces a member whose host died (scenario 6:
// import the dead member, point the resource at the free host; one apply
// removes it and starts the replacement with a clean data dir and existing
// state).
func TestAccMemberOnNodes(t *testing.T) {
	accCluster(t)
	hosts := sshhost.Start(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin := memberTestBinary(t, t.TempDir())
	begin := time.Now()
	c := bootstrapSSHCluster(t, ctx, hosts[:3], bin)
	t.Logf("bootstrapped 3 members over SSH (%s mode) in %s", hosts[0].Mode, time.Since(begin))
	// Stop what etcd_member started if the test fails half-way.
	t.Cleanup(func() {
		for _, name := range []string{"m4", "m5"} {
			cl, err := node.Dial(context.Background(), memberSSHConfig(hosts[3]))
			if err != nil {
				return
			}
			svc, err := node.NewService(context.Background(), cl, node.ServiceProcess, node.ServiceSpec{
				Name: "etcd-member-" + name, Command: []string{"/bin/true"}, RunDir: path.Join(hosts[3].BaseDir, "opt", "etcd-member", "run")})
			if err == nil {
				sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
				_ = svc.Stop(sctx)
				scancel()
			}
			cl.Close()
		}
	})

	h3 := hosts[3]
	// m4's node.host carries the SSH port and ssh.port is wrong: the port
	// in the address wins, as in etcd_cluster's nodes.
	m4 := func(snapshotCount string) string {
		return c.memberNodeConfigSSH("m4", "m4", h3, bin, snapshotCount, sshHCL(h3, h3.HostKey, ""), "", "")
	}
	hostPortCfg := func(cfg string) string {
		addr := fmt.Sprintf("host = %q", h3.Addr)
		port := fmt.Sprintf("port        = %d", h3.Port)
		if strings.Count(cfg, addr) != 1 || strings.Count(cfg, port) != 1 {
			t.Fatalf("unexpected etcd_member config:\n%s", cfg)
		}
		cfg = strings.Replace(cfg, addr, fmt.Sprintf("host = %q", net.JoinHostPort(h3.Addr, strconv.Itoa(h3.Port))), 1)
		return strings.Replace(cfg, port, "port        = 1", 1)
	}
	addCfg := c.providerBlock() + hostPortCfg(m4("10000")) +
		"data \"etcd_members\" \"all\" {\n  depends_on = [etcd_member.m4]\n}\n"
	allFour := append(slices.Clone(c.endpoints), "https://"+h3.Addr+":2379")
	var stepStart time.Time
	timed := func(label string, f resource.TestCheckFunc) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			t.Logf("%s: %s", label, time.Since(stepStart))
			return f(s)
		}
	}
	start := func() { stepStart = time.Now() }
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: func(s *terraform.State) error {
			return c.checkVoters(t, c.endpoints[1:], "", "", "m2", "m3")(s)
		},
		Steps: []resource.TestStep{
			{
				// 3 → 4: learner on the 4th host, caught up, promoted.
				PreConfig: start,
				Config:    addCfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("etcd_member.m4", tfjsonpath.New("is_learner"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue("etcd_member.m4", tfjsonpath.New("client_urls"),
						knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("https://" + h3.Addr + ":2379")})),
					statecheck.ExpectKnownValue("data.etcd_members.all", tfjsonpath.New("members"), knownvalue.ListSizeExact(4)),
				},
				Check: timed("add a member on a node (apply)", c.checkVoters(t, allFour, "", "", "m1", "m2", "m3", "m4")),
			},
			{
				ResourceName:            "etcd_member.m4",
				ImportState:             true,
				ImportStateId:           "m4",
				ImportStateVerify:       true,
				ImportStateVerifyIgnore: []string{"node"},
			},
			{
				Config:   addCfg,
				PlanOnly: true,
			},
			{
				// A settings change rewrites the config file and restarts
				// the member in place, after a quorum check.
				PreConfig: start,
				Config: c.providerBlock() + hostPortCfg(m4("20000")) +
					"data \"etcd_members\" \"all\" {\n  depends_on = [etcd_member.m4]\n}\n",
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("etcd_member.m4", plancheck.ResourceActionUpdate)},
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					timed("change the member's settings (apply)", c.checkVoters(t, allFour, "", "", "m1", "m2", "m3", "m4")),
					func(*terraform.State) error {
						out, err := h3.Run(ctx, "cat "+path.Join(h3.BaseDir, "opt", "etcd-member", "etc", "etcd.yaml"))
						if err != nil || !strings.Contains(out, "snapshot-count: 20000") {
							return fmt.Errorf("config on the node: %v\n%s", err, out)
						}
						return nil
					},
				),
			},
			{
				// 4 → 3: the member is removed and its service stopped.
				PreConfig: start,
				Config:    c.providerBlock(),
				Check:     timed("remove the member (apply)", c.checkVoters(t, c.endpoints, "", "", "m1", "m2", "m3")),
			},
			{
				// Its data dir now holds a removed member: refused before
				// the cluster is touched.
				Config:      c.providerBlock() + c.memberNodeConfig("again", "m4b", h3, bin, "10000", ""),
				ExpectError: errorText("has a member/ directory from an earlier etcd start"),
			},
			{
				// Scenario 6: host0 dies. Import its member, point the
				// resource at the free host (with wipe_data for the stale
				// data dir): one apply removes m1 and adds m5.
				PreConfig: func() {
					cli := c.newClient(t, c.endpoints...)
					if _, err := cli.Put(ctx, "before-replace", "kept"); err != nil {
						t.Fatal(err)
					}
					if err := hosts[0].Down(); err != nil {
						t.Fatal(err)
					}
					start()
				},
				Config: c.providerBlock() + "import {\n  to = etcd_member.replaced\n  id = \"m1\"\n}\n" +
					c.memberNodeConfig("replaced", "m5", h3, bin, "10000", "wipe_data = true"),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("etcd_member.replaced", plancheck.ResourceActionDestroyBeforeCreate)},
				},
				Check: timed("replace the dead member (import + apply)",
					c.checkVoters(t, append(slices.Clone(c.endpoints[1:]), "https://"+h3.Addr+":2379"), "before-replace", "kept", "m2", "m3", "m5")),
			},
		},
	})
	t.Logf("total %s", time.Since(begin))
}

// A state written before node.ssh had connect_timeout and bastion, and
// before etcd_member had timeouts, still decodes: Terraform hands it to
// the provider as JSON through UpgradeResourceState, the new attributes
// come back null, and the member's login is what it was.
func TestMemberStateWithoutNewAttributes(t *testing.T) {
	ctx := context.Background()
	old := `{
  "id": "8e9e05c52164694d",
  "name": "m4",
  "peer_urls": ["https://10.0.0.4:2380"],
  "learner": true,
  "client_urls": ["https://10.0.0.4:2379"],
  "is_learner": false,
  "initial_cluster": "m1=https://10.0.0.1:2380,m4=https://10.0.0.4:2380",
  "node": {
    "host": "10.0.0.4",
    "ssh": {
      "user": "admin",
      "port": 2222,
      "private_key": "KEY",
      "passphrase": null,
      "agent": null,
      "host_key": "ssh-ed25519 AAAA",
      "insecure_ignore_host_key": null
    },
    "binary_path": null,
    "remote_binary": "/usr/bin/etcd",
    "install_dir": "/opt/etcd-member",
    "data_dir": null,
    "client_urls": null,
    "service_manager": "process",
    "settings": null,
    "tls": null,
    "wipe_data": null
  }
}`
	srv, err := providerserver.NewProtocol6WithError(New("test")())()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.UpgradeResourceState(ctx, &tfprotov6.UpgradeResourceStateRequest{
		TypeName: "etcd_member", Version: 0, RawState: &tfprotov6.RawState{JSON: []byte(old)},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range resp.Diagnostics {
		t.Errorf("%s: %s: %s", d.Severity, d.Summary, d.Detail)
	}
	if t.Failed() {
		return
	}
	sresp := &fwresource.SchemaResponse{}
	newMemberResource().Schema(ctx, fwresource.SchemaRequest{}, sresp)
	raw, err := resp.UpgradedState.Unmarshal(sresp.Schema.Type().TerraformType(ctx))
	if err != nil {
		t.Fatal(err)
	}
	var m memberModel
	if diags := (tfsdk.State{Schema: sresp.Schema, Raw: raw}).Get(ctx, &m); diags.HasError() {
		t.Fatalf("decode the upgraded state: %v", diags)
	}
	if m.Node == nil || m.Node.SSH == nil {
		t.Fatalf("node or node.ssh lost: %+v", m.Node)
	}
	if !m.Node.SSH.ConnectTimeout.IsNull() || !m.Node.SSH.Bastion.IsNull() || !m.Timeouts.IsNull() {
		t.Errorf("new attributes not null: connect_timeout %v, bastion %v, timeouts %v", m.Node.SSH.ConnectTimeout, m.Node.SSH.Bastion, m.Timeouts)
	}
	spec, diags := m.teardownSpec(ctx)
	if diags.HasError() {
		t.Fatal(diags)
	}
	want := node.SSHConfig{Host: "10.0.0.4", User: "admin", Port: 2222, PrivateKey: "KEY", HostKey: "ssh-ed25519 AAAA"}
	if spec.SSH != want || spec.Name != "m4" || spec.RemoteBinary != "/usr/bin/etcd" {
		t.Errorf("teardown spec %+v, ssh %+v; want ssh %+v", spec, spec.SSH, want)
	}
	if d, diags := memberTimeouts.get(ctx, m.Timeouts, "delete"); diags.HasError() || d != memberTimeouts.Delete {
		t.Errorf("delete timeout %s %v, want the default %s", d, diags, memberTimeouts.Delete)
	}
}

func TestOperationTimeouts(t *testing.T) {
	ctx := context.Background()
	resp := &fwresource.SchemaResponse{}
	newMemberResource().Schema(ctx, fwresource.SchemaRequest{}, resp)
	typ := resp.Schema.Attributes["timeouts"].GetType().(types.ObjectType)
	obj := func(create, update string) types.Object {
		v := func(s string) types.String {
			if s == "" {
				return types.StringNull()
			}
			return types.StringValue(s)
		}
		o, diags := types.ObjectValueFrom(ctx, typ.AttrTypes, timeoutsModel{Create: v(create), Update: v(update), Delete: types.StringNull()})
		if diags.HasError() {
			t.Fatal(diags)
		}
		return o
	}
	d := operationTimeouts{Create: time.Minute, Update: 2 * time.Minute, Delete: 3 * time.Minute}
	for _, tc := range []struct {
		name string
		obj  types.Object
		op   string
		want time.Duration
	}{
		{"no timeouts", types.ObjectNull(typ.AttrTypes), "create", time.Minute},
		{"unknown timeouts", types.ObjectUnknown(typ.AttrTypes), "update", 2 * time.Minute},
		{"set", obj("90s", ""), "create", 90 * time.Second},
		{"spaces", obj(" 5m ", ""), "create", 5 * time.Minute},
		{"other op unset", obj("90s", ""), "delete", 3 * time.Minute},
		{"update set", obj("", "1h"), "update", time.Hour},
	} {
		got, diags := d.get(ctx, tc.obj, tc.op)
		if diags.HasError() || got != tc.want {
			t.Errorf("%s: %s %v, want %s", tc.name, got, diags, tc.want)
		}
	}
	for _, bad := range []string{"ten minutes", "0s", "-5m"} {
		_, diags := d.get(ctx, obj("", bad), "update")
		wantAttrError(t, diags, fwpath.Root("timeouts").AtName("update"), fmt.Sprintf("%q is not a positive duration", bad))
	}
}

// sshOnlyThroughBastion makes target's sshd unreachable from the test
// process's network namespace, where the provider runs, while other hosts
// (a bastion) still reach it, and checks that a direct login now fails. In
// target's namespace, sshd's replies to the root-side address of its link
// are routed to nowhere; everything else (etcd's client and peer ports) is
// untouched. In loopback mode, where the hosts share one network stack, it
// only logs that the target still answers directly.
func sshOnlyThroughBastion(t *testing.T, ctx context.Context, target *sshhost.Host) {
	t.Helper()
	if target.Mode != sshhost.ModeNetns {
		t.Logf("%s mode: hosts share one network stack, so the target also answers directly; the bastion is still used", target.Mode)
		return
	}
	blockDirectSSH(t, ctx, target)
	direct := memberSSHConfig(target)
	direct.Timeout = 3 * time.Second
	if cl, err := node.Dial(ctx, direct); err == nil {
		cl.Close()
		t.Fatal("the target's sshd still answers the provider directly")
	} else {
		t.Logf("direct login refused as set up: %v", err)
	}
}

// blockDirectSSH routes target's SSH replies to the root namespace to
// nowhere (see sshOnlyThroughBastion).
func blockDirectSSH(t *testing.T, ctx context.Context, target *sshhost.Host) {
	t.Helper()
	ipIn := func(args ...string) string {
		out, err := exec.CommandContext(ctx, "ip", append([]string{"-n", target.Namespace}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip -n %s %s: %v\n%s", target.Namespace, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// "default via 10.213.0.1 dev ..."
	fields := strings.Fields(ipIn("-4", "route", "show", "default"))
	if len(fields) < 3 || fields[1] != "via" {
		t.Fatalf("no default route in %s: %v", target.Namespace, fields)
	}
	gw := fields[2] + "/32"
	ipIn("route", "add", "unreachable", gw, "table", "2213")
	ipIn("rule", "add", "to", gw, "ipproto", "tcp", "sport", "22", "lookup", "2213", "priority", "100")
}

// TestAccMemberThroughBastion adds a member on a machine that the provider
// reaches only through a bastion (node.ssh.bastion), as a machine on a
// private network: a wrong bastion host key fails before the cluster is
// touched, the member joins and is promoted through the bastion, and
// destroy stops its service through the bastion too.
func TestAccMemberThroughBastion(t *testing.T) {
	accCluster(t)
	hosts := sshhost.Start(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	bin := clusterBinary(t)
	begin := time.Now()
	c := bootstrapSSHCluster(t, ctx, hosts[:1], bin)
	t.Logf("bootstrapped 1 member over SSH (%s mode) in %s", hosts[0].Mode, time.Since(begin))
	bastion, target := hosts[1], hosts[2]

	viaBastion := memberSSHConfig(target)
	b := memberSSHConfig(bastion)
	viaBastion.Bastion = &b
	sshOnlyThroughBastion(t, ctx, target)
	cl, err := node.Dial(ctx, viaBastion)
	if err != nil {
		t.Fatalf("through the bastion: %v", err)
	}
	cl.Close()
	// The member's service as the resource installs it, looked at
	// through the bastion.
	m2 := memberhost.Spec{
		Name:           "m2",
		InstallDir:     path.Join(target.BaseDir, "opt", "etcd-member"),
		DataDir:        path.Join(target.BaseDir, "var", "lib", "etcd-member"),
		ServiceManager: node.ServiceProcess,
		SSH:            viaBastion,
	}
	serviceStatus := func() (node.ServiceStatus, error) {
		h, err := memberhost.ConnectForTeardown(ctx, m2)
		if err != nil {
			return node.ServiceStatus{}, err
		}
		defer h.Close()
		return h.Status(ctx)
	}
	// Stop what etcd_member started if the test fails half-way.
	t.Cleanup(func() {
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
		defer scancel()
		if h, err := memberhost.ConnectForTeardown(sctx, m2); err == nil {
			_ = h.Stop(sctx)
			h.Close()
		}
	})

	bastionBlock := func(extra string) string {
		return fmt.Sprintf("connect_timeout = \"10s\"\n      bastion = {\n        host = %q\n        port = %d\n        %s\n      }", bastion.Addr, bastion.Port, extra)
	}
	// The bastion takes the login and the host keys of node.ssh: one list
	// with the keys of both machines.
	bothKeys := target.HostKey + "\n" + bastion.HostKey
	cfg := c.providerBlock() + c.memberNodeConfigSSH("m2", "m2", target, bin, "10000",
		sshHCL(target, bothKeys, bastionBlock("")), "", `timeouts = { create = "5m", delete = "2m" }`)
	wrongBastionKey := c.providerBlock() + c.memberNodeConfigSSH("m2", "m2", target, bin, "10000",
		sshHCL(target, bothKeys, bastionBlock("host_key = "+hclString(target.HostKey))), "", "")
	both := append(slices.Clone(c.endpoints), "https://"+target.Addr+":2379")
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: func(s *terraform.State) error {
			if err := c.checkVoters(t, c.endpoints, "", "", "m1")(s); err != nil {
				return err
			}
			// Destroy reached the machine (through the bastion) and
			// uninstalled the member's service. (Checking only that it
			// stopped would not do: a removed member stops by itself.)
			st, err := serviceStatus()
			if err != nil {
				return err
			}
			if st.Installed || st.Running {
				return fmt.Errorf("the member's service is still on %s after destroy: %+v", target.Name, st)
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				// The bastion is dialed with its own settings: its host key
				// is checked, and a mismatch is named as the bastion's.
				Config:      wrongBastionKey,
				ExpectError: regexp.MustCompile(`via\s+bastion[\s\S]*host\s+key\s+mismatch`),
			},
			{
				PreConfig: func() {
					if err := c.checkVoters(t, c.endpoints, "", "", "m1")(nil); err != nil {
						t.Fatalf("the failed step changed the cluster: %v", err)
					}
				},
				Config: cfg,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("etcd_member.m2", tfjsonpath.New("is_learner"), knownvalue.Bool(false)),
					statecheck.ExpectKnownValue("etcd_member.m2", tfjsonpath.New("node").AtMapKey("ssh").AtMapKey("bastion").AtMapKey("host"),
						knownvalue.StringExact(bastion.Addr)),
					statecheck.ExpectKnownValue("etcd_member.m2", tfjsonpath.New("node").AtMapKey("ssh").AtMapKey("connect_timeout"),
						knownvalue.StringExact("10s")),
					statecheck.ExpectKnownValue("etcd_member.m2", tfjsonpath.New("timeouts").AtMapKey("create"), knownvalue.StringExact("5m")),
				},
				Check: resource.ComposeAggregateTestCheckFunc(
					c.checkVoters(t, both, "", "", "m1", "m2"),
					func(*terraform.State) error {
						st, err := serviceStatus()
						if err != nil || !st.Running {
							return fmt.Errorf("member's service on %s: %+v %v", target.Name, st, err)
						}
						return nil
					},
				),
			},
			{
				Config:   cfg,
				PlanOnly: true,
			},
		},
	})
	t.Logf("total %s", time.Since(begin))
}
