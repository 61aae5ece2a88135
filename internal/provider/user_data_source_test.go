package provider

import (
	"fmt"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
)

// The data source reads a user's roles, and nothing else: its schema has no
// attribute a password or hash could go in, and the state holds exactly id,
// name and roles.
func TestAccUserDataSource(t *testing.T) {
	accCluster(t)
	user, role := rbacName(t, "u"), rbacName(t, "r")
	ctx := etcdCtx(t)
	cli := sharedEtcd()
	if _, err := cli.RoleAdd(ctx, role); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.UserAdd(ctx, user, "data-source-pw"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = sharedEtcd().UserDelete(etcdCtx(t), user)
		_, _ = sharedEtcd().RoleDelete(etcdCtx(t), role)
	})
	for _, r := range []string{role, "root"} {
		if _, err := cli.UserGrantRole(ctx, user, r); err != nil {
			t.Fatal(err)
		}
	}
	const addr = "data.etcd_user.test"
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: providerConfig() + fmt.Sprintf("data \"etcd_user\" \"test\" {\n  name = %s\n}\n", hclString(user)),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact(user)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("roles"), knownvalue.SetExact([]knownvalue.Check{
						knownvalue.StringExact(role), knownvalue.StringExact("root"),
					})),
				},
				Check: resource.TestCheckResourceAttr(addr, "%", "3"), // id, name, roles
			},
			{
				Config:      providerConfig() + "data \"etcd_user\" \"test\" {\n  name = \"no-such-user\"\n}\n",
				ExpectError: errorText(`etcd has no user "no-such-user"`),
			},
		},
	})
}
