package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
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
