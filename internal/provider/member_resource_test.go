package provider

import (
	"context"
	"crypto/tls"
	"fmt"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/etcdconf"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/membership"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/membership/membertest"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/pki"
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
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ml, err := c.Client().MemberList(ctx)
			if err != nil {
				return err
			}
			if len(ml.Members) != 3 {
				return fmt.Errorf("%d members after destroy, want 3", len(ml.Members))
			}
			return nil
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
		CheckDestroy: func(*terraform.State) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ml, err := c.Client().MemberList(ctx)
			if err != nil {
				return err
			}
			if len(ml.Members) != 3 {
				return fmt.Errorf("%d members after destroy, want 3", len(ml.Members))
			}
			return nil
		},
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
		CheckDestroy: func(*terraform.State) error {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			ml, err := c.Client().MemberList(ctx)
			if err != nil {
				return err
			}
			if len(ml.Members) != 3 {
				return fmt.Errorf("the cluster was changed: %d members", len(ml.Members))
			}
			return nil
		},
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
				Config:        providerConfig() + memberConfig("ghost", []string{free}, ""),
				ResourceName:  "etcd_member.test",
				ImportState:   true,
				ImportStateId: "ghost",
				ExpectError:   errorText(`No member has ID or name "ghost"`),
			},
		},
	})
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

// memberNodeConfig is an etcd_member with node on host h.
func (c *sshTestCluster) memberNodeConfig(resName, name string, h *sshhost.Host, bin, snapshotCount, extra string) string {
	sans := "[]"
	if h.Mode == sshhost.ModeLoopback {
		sans = `["127.0.0.1"]`
	}
	return fmt.Sprintf(`resource "etcd_member" %q {
  name      = %q
  peer_urls = ["https://%s:2380"]
  node = {
    host = %q
    ssh = {
      user        = %q
      port        = %d
      private_key = %s
      host_key    = %q
    }
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
}
`, resName, name, h.Addr, h.Addr, h.User, h.Port, hclString(string(h.PrivateKeyPEM)), h.HostKey, bin,
		path.Join(h.BaseDir, "opt", "etcd-member"), path.Join(h.BaseDir, "var", "lib", "etcd-member"), snapshotCount,
		hclString(string(c.ca.CertPEM)), hclString(string(c.ca.KeyPEM)), sans, extra)
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
	addCfg := c.providerBlock() + c.memberNodeConfig("m4", "m4", h3, bin, "10000", "") +
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
				Config: c.providerBlock() + c.memberNodeConfig("m4", "m4", h3, bin, "20000", "") +
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
