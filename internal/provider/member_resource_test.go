package provider

import (
	"context"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/membership"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/membership/membertest"
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
				ResourceName:      "etcd_member.test",
				ImportState:       true,
				ImportStateIdFunc: func(s *terraform.State) (string, error) { return s.RootModule().Resources["etcd_member.test"].Primary.ID, nil },
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
