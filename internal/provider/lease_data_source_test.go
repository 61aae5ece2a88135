package provider

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
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
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("ttl"), knownvalue.Int64Func(func(v int64) error {
						if v < 590 || v > 600 {
							return fmt.Errorf("ttl %d", v)
						}
						return nil
					})),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("keys"), knownvalue.ListExact([]knownvalue.Check{
						knownvalue.StringExact(prefix + "k0"), knownvalue.StringExact(prefix + "k1"),
					})),
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
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{{
			ConfigDirectory: config.StaticDirectory("../../examples/data-sources/etcd_lease"),
			ConfigVariables: config.Variables{"lease_id": config.StringVariable(client.FormatLeaseID(int64(lease.ID)))},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownOutputValue("session", knownvalue.ObjectPartial(map[string]knownvalue.Check{
					"granted_ttl": knownvalue.Int64Exact(300),
					"keys":        knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact(key)}),
				})),
			},
		}},
	})
}
