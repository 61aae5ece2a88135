package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/compare"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// Off on a cluster without auth; on, with an auth revision that grows with
// every change to users and roles, on a cluster with auth.
func TestAccAuthStatusDataSource(t *testing.T) {
	c := startCluster(t, testserver.WithAuth())
	_, rootPW := c.RootCredentials()
	root := rawClient(t, c, "root", rootPW)
	const addr = "data.etcd_auth_status.test"
	const ds = "data \"etcd_auth_status\" \"test\" {}\n"
	revision := statecheck.CompareValue(compare.ValuesDiffer())
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: providerConfig() + ds,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("enabled"), knownvalue.Bool(false)),
				},
			},
			{
				Config: rootProvider(c, rootPW) + ds,
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("enabled"), knownvalue.Bool(true)),
					revision.AddStateValue(addr, tfjsonpath.New("auth_revision")),
				},
			},
			{
				PreConfig: func() {
					if _, err := root.RoleAdd(etcdCtx(t), "bump"); err != nil {
						t.Fatal(err)
					}
				},
				Config: rootProvider(c, rootPW) + ds,
				ConfigStateChecks: []statecheck.StateCheck{
					revision.AddStateValue(addr, tfjsonpath.New("auth_revision")),
				},
			},
		},
	})
}
