package provider

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

func TestAccLeaseDataSource(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	config := leaseWithKey(600, prefix+"k1") + fmt.Sprintf(`resource "etcd_key" "second" {
  key   = %s
  value = "also attached"
  lease = etcd_lease.test.id
}

data "etcd_lease" "test" {
  id         = etcd_lease.test.id
  depends_on = [etcd_key.test, etcd_key.second]
}
`, hclString(prefix+"k0"))
	const addr = "data.etcd_lease.test"
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNoKeys(prefix),
		Steps: []resource.TestStep{
			{
				Config:      providerConfig() + "data \"etcd_lease\" \"test\" {\n  id = \"7ffffffffffffffd\"\n}\n",
				ExpectError: errorText("lease 7ffffffffffffffd: lease not found (it expired or was revoked)"),
			},
			{
				Config:      providerConfig() + "data \"etcd_lease\" \"test\" {\n  id = \"xyz\"\n}\n",
				ExpectError: regexp.MustCompile(`lease ID "xyz" is not hexadecimal`),
			},
			{
				Config: config,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.CompareValuePairs(addr, tfjsonpath.New("id"), leaseAddr, tfjsonpath.New("id"), compare.ValuesSame()),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("granted_ttl"), knownvalue.Int64Exact(600)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("keys"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.StringExact(prefix + "k0"), knownvalue.StringExact(prefix + "k1"),
					})),
				},
				// The remaining TTL was read between the grant and now: no
				// more than granted, no less than what etcd says now.
				Check: func(st *terraform.State) error {
					attrs := st.RootModule().Resources[addr].Primary.Attributes
					id, err := client.ParseLeaseID(attrs["id"])
					if err != nil {
						return err
					}
					read, err := strconv.ParseInt(attrs["ttl"], 10, 64)
					if err != nil {
						return fmt.Errorf("ttl %q: %w", attrs["ttl"], err)
					}
					now, _, err := leaseTTL(id)
					if err != nil {
						return err
					}
					if read > 600 || read < now {
						return fmt.Errorf("ttl %d: want at most the granted 600 and at least the %d etcd reports after the read", read, now)
					}
					return nil
				},
			},
		},
	})
}

// The documentation example reads a lease granted outside Terraform.
func TestAccLeaseDataSourceExample(t *testing.T) {
	c := accCluster(t)
	// Not parallel: the example has no provider block.
	t.Setenv("ETCDCTL_ENDPOINTS", strings.Join(c.Endpoints(), ","))
	lease, err := testCluster.Client().Grant(etcdCtx(t), 300)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = testCluster.Client().Revoke(context.Background(), lease.ID) })
	key := keyPrefix(t) + "session"
	mustPut(t, key, "v", clientv3.WithLease(lease.ID))
	dir := config.StaticDirectory("../../examples/data-sources/etcd_lease")
	vars := config.Variables{"lease_id": config.StringVariable(client.FormatLeaseID(int64(lease.ID)))}
	var ttlAfterApply int64
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				ConfigDirectory: dir,
				ConfigVariables: vars,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("session", knownvalue.ObjectExact(map[string]knownvalue.Check{
						"granted_ttl": knownvalue.Int64Exact(300),
						"keys":        knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact(key)}),
					})),
				},
				Check: func(*terraform.State) error {
					var err error
					ttlAfterApply, _, err = leaseTTL(int64(lease.ID))
					return err
				},
			},
			// The lease counts down; the outputs a user copies from the
			// example do not, so the next plan is empty.
			{
				PreConfig:       func() { waitLeaseTTLBelow(t, int64(lease.ID), ttlAfterApply) },
				ConfigDirectory: dir,
				ConfigVariables: vars,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectEmptyPlan(),
				}},
			},
		},
	})
}
