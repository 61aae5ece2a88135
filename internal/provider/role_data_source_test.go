package provider

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The data source shows a role made with clientv3 (as etcdctl would) in the
// canonical form: prefix = true for a prefix, range_end for another range.
func TestAccRoleDataSource(t *testing.T) {
	accCluster(t)
	name := rbacName(t, "r")
	ctx := etcdCtx(t)
	cli := sharedEtcd()
	if _, err := cli.RoleAdd(ctx, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = sharedEtcd().RoleDelete(etcdCtx(t), name) })
	for _, p := range []struct {
		key, end string
		typ      clientv3.PermissionType
	}{
		{"/app/", clientv3.GetPrefixRangeEnd("/app/"), clientv3.PermissionType(clientv3.PermRead)},
		{"/a", "/c", clientv3.PermissionType(clientv3.PermWrite)},
		{"/one", "", clientv3.PermissionType(clientv3.PermReadWrite)},
		{"/from", "\x00", clientv3.PermissionType(clientv3.PermRead)},
	} {
		if _, err := cli.RoleGrantPermission(ctx, name, p.key, p.end, p.typ); err != nil {
			t.Fatal(err)
		}
	}
	const addr = "data.etcd_role.test"
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: providerConfig() + fmt.Sprintf("data \"etcd_role\" \"test\" {\n  name = %s\n}\n", hclString(name)),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("id"), knownvalue.StringExact(name)),
					statecheck.ExpectKnownValue(addr, tfjsonpath.New("permissions"), knownvalue.SetExact([]knownvalue.Check{
						permCheck("/app/", nil, ptr(true), "read"),
						permCheck("/a", ptr("/c"), nil, "write"),
						permCheck("/one", nil, nil, "readwrite"),
						permCheck("/from", ptr("\x00"), nil, "read"),
					})),
				},
			},
			{
				Config:      providerConfig() + "data \"etcd_role\" \"test\" {\n  name = \"no-such-role\"\n}\n",
				ExpectError: errorText(`etcd has no role "no-such-role"`),
			},
		},
	})
}

// The data source examples of etcd_role, etcd_user and etcd_auth_status.
func TestAccRBACDataSourceExamples(t *testing.T) {
	c := startCluster(t)
	raw := rawClient(t, c, "", "")
	ctx := etcdCtx(t)
	for _, err := range []error{
		second(raw.RoleAdd(ctx, "app")),
		second(raw.RoleGrantPermission(ctx, "app", "/app/", "/app0", clientv3.PermissionType(clientv3.PermReadWrite))),
		second(raw.RoleGrantPermission(ctx, "app", "/shared", "", clientv3.PermissionType(clientv3.PermRead))),
		second(raw.UserAdd(ctx, "ci", "pw")),
		second(raw.UserGrantRole(ctx, "ci", "app")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("ETCDCTL_ENDPOINTS", strings.Join(c.Endpoints(), ","))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				ConfigDirectory: config.StaticDirectory("../../examples/data-sources/etcd_role"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("app_writable_prefixes", knownvalue.ListExact([]knownvalue.Check{knownvalue.StringExact("/app/")})),
				},
			},
			{
				ConfigDirectory: config.StaticDirectory("../../examples/data-sources/etcd_user"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("ci_is_admin", knownvalue.Bool(false)),
				},
			},
			{
				ConfigDirectory: config.StaticDirectory("../../examples/data-sources/etcd_auth_status"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownOutputValue("auth_enabled", knownvalue.Bool(false)),
				},
			},
		},
	})
}
