package provider

import (
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

func TestAccEndpointStatusDataSource(t *testing.T) {
	c := accCluster(t)
	const addr = "data.etcd_endpoint_status.test"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()

	members := map[string]bool{}
	for _, m := range c.Members() {
		members[client.FormatMemberID(m.ID)] = true
	}
	hex := knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f]+$`))
	status := func(i int, attr string) tfjsonpath.Path {
		return tfjsonpath.New("statuses").AtSliceIndex(i).AtMapKey(attr)
	}
	var checks []statecheck.StateCheck
	for i := range c.Endpoints() {
		checks = append(checks,
			statecheck.ExpectKnownValue(addr, status(i, "endpoint"), knownvalue.StringExact(c.Endpoints()[i])),
			statecheck.ExpectKnownValue(addr, status(i, "member_id"), hex),
			statecheck.ExpectKnownValue(addr, status(i, "leader"), hex),
			statecheck.ExpectKnownValue(addr, status(i, "version"), knownvalue.StringRegexp(regexp.MustCompile(`^3\.\d+\.\d+`))),
			statecheck.ExpectKnownValue(addr, status(i, "raft_term"), knownvalue.NotNull()),
			statecheck.ExpectKnownValue(addr, status(i, "errors"), knownvalue.ListSizeExact(0)),
			statecheck.ExpectKnownValue(addr, status(i, "alarms"), knownvalue.ListSizeExact(0)),
			statecheck.ExpectKnownValue(addr, status(i, "fragmentation"), knownvalue.NotNull()),
			statecheck.ExpectKnownValue(addr, status(i, "error"), knownvalue.Null()),
		)
	}
	// One leader, the same for everyone, and every member answered.
	oneLeader := func(s *terraform.State) error {
		a := s.RootModule().Resources[addr].Primary.Attributes
		leaders, seen := 0, map[string]bool{}
		for i := range c.Endpoints() {
			p := fmt.Sprintf("statuses.%d.", i)
			if a[p+"is_leader"] == "true" {
				leaders++
			}
			if a[p+"leader"] != a["statuses.0.leader"] || !members[a[p+"member_id"]] {
				return fmt.Errorf("status %d: %v", i, a)
			}
			seen[a[p+"member_id"]] = true
		}
		if leaders != 1 || len(seen) != len(members) {
			return fmt.Errorf("%d leaders, %d members: %v", leaders, len(seen), a)
		}
		return nil
	}

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config:      providerConfig() + "data \"etcd_endpoint_status\" \"test\" {\n  endpoints = [\"ftp://x:1\"]\n}\n",
				ExpectError: errorText(`has scheme "ftp"`),
			},
			{
				Config:      providerConfig() + "data \"etcd_endpoint_status\" \"test\" {\n  endpoints = []\n}\n",
				ExpectError: errorText("list must contain at least 1 elements"),
			},
			{
				Config:            providerConfig() + "data \"etcd_endpoint_status\" \"test\" {}\n",
				ConfigStateChecks: checks,
				Check:             oneLeader,
			},
			// An endpoint that does not answer has its error, the rest answer.
			{
				Config: providerConfig(`request_timeout = "1s"`) + fmt.Sprintf("data \"etcd_endpoint_status\" \"test\" {\n  endpoints = %s\n}\n", hclList([]string{c.Endpoints()[0], dead})),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, status(0, "error"), knownvalue.Null()),
					statecheck.ExpectKnownValue(addr, status(0, "member_id"), hex),
					statecheck.ExpectKnownValue(addr, status(1, "endpoint"), knownvalue.StringExact(dead)),
					statecheck.ExpectKnownValue(addr, status(1, "error"), knownvalue.StringRegexp(regexp.MustCompile("etcd cluster unreachable"))),
					statecheck.ExpectKnownValue(addr, status(1, "member_id"), knownvalue.Null()),
				},
			},
		},
	})
}

// The documentation example finds the leader, and its check passes.
func TestAccEndpointStatusDataSourceExample(t *testing.T) {
	c := accCluster(t)
	// Not parallel: the example has no provider block.
	t.Setenv("ETCDCTL_ENDPOINTS", strings.Join(c.Endpoints(), ","))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{{
			ConfigDirectory: config.StaticDirectory("../../examples/data-sources/etcd_endpoint_status"),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownOutputValue("leader", knownvalue.StringRegexp(regexp.MustCompile(`^[0-9a-f]+$`))),
			},
		}},
	})
}

// raiseNoSpace fills a cluster started with a small quota until etcd
// raises the NOSPACE alarm (fillToNoSpace).
func raiseNoSpace(t *testing.T, c *testserver.Cluster) {
	t.Helper()
	if err := fillToNoSpace(etcdCtx(t), c.Client()); err != nil {
		t.Fatal(err)
	}
}

// noSpaceMembers returns the IDs of the members with a NOSPACE alarm.
func noSpaceMembers(t *testing.T, c *testserver.Cluster) map[uint64]bool {
	t.Helper()
	ids, err := noSpaceAlarms(etcdCtx(t), c.Client())
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// A member whose database exceeded its quota reports a NOSPACE alarm, and
// only such a member does; every member's fragmentation is a ratio.
func TestAccEndpointStatusAlarms(t *testing.T) {
	accCluster(t)
	c := testserver.Start(t, testserver.WithMembers(3), testserver.WithQuotaBackendBytes(1<<20))
	raiseNoSpace(t, c)
	// Each member that exceeds the quota raises its own alarm, some later
	// than others, and none is cleared without a disarm: the members with
	// an alarm before the read must have it in the data source, and those
	// with one there must have it in the list read after.
	var before map[uint64]bool
	const addr = "data.etcd_endpoint_status.test"
	cfg := fmt.Sprintf("provider \"etcd\" {\n  endpoints = %s\n}\ndata \"etcd_endpoint_status\" \"test\" {}\n", hclList(c.Endpoints()))
	check := func(s *terraform.State) error {
		after := noSpaceMembers(t, c)
		a := s.RootModule().Resources[addr].Primary.Attributes
		for i := range c.Endpoints() {
			p := fmt.Sprintf("statuses.%d.", i)
			id, err := strconv.ParseUint(a[p+"member_id"], 16, 64)
			if err != nil {
				return fmt.Errorf("status %d: member_id %q", i, a[p+"member_id"])
			}
			alarmed := a[p+"alarms.#"] == "1" && a[p+"alarms.0"] == "NOSPACE"
			if !alarmed && a[p+"alarms.#"] != "0" {
				return fmt.Errorf("member %x: alarms %s, want [] or [NOSPACE]: %v", id, a[p+"alarms.#"], a)
			}
			if before[id] && !alarmed || alarmed && !after[id] {
				return fmt.Errorf("member %x: NOSPACE in the data source %t, in the alarm list before %t and after %t",
					id, alarmed, before[id], after[id])
			}
			f, err := strconv.ParseFloat(a[p+"fragmentation"], 64)
			if err != nil || f < 0 || f >= 1 {
				return fmt.Errorf("member %x: fragmentation %q, want a ratio in [0, 1)", id, a[p+"fragmentation"])
			}
		}
		return nil
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{{
			PreConfig: func() { before = noSpaceMembers(t, c) },
			Config:    cfg,
			Check:     check,
		}},
	})
}
