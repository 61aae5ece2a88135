package provider

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

const roleAddr = "etcd_role.test"

// roleConfig is an etcd_role "test" with the given permission objects
// (HCL object bodies such as `key = "/a", access = "read"`).
func roleConfig(name string, perms ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "resource \"etcd_role\" \"test\" {\n  name = %s\n  permissions = [\n", hclString(name))
	for _, p := range perms {
		fmt.Fprintf(&b, "    { %s },\n", p)
	}
	b.WriteString("  ]\n}\n")
	return b.String()
}

// permCheck matches one element of permissions in state or plan; a nil
// rangeEnd or prefix means null.
func permCheck(key string, rangeEnd *string, prefix *bool, access string) knownvalue.Check {
	m := map[string]knownvalue.Check{
		"key":       knownvalue.StringExact(key),
		"access":    knownvalue.StringExact(access),
		"range_end": knownvalue.Null(),
		"prefix":    knownvalue.Null(),
	}
	if rangeEnd != nil {
		m["range_end"] = knownvalue.StringExact(*rangeEnd)
	}
	if prefix != nil {
		m["prefix"] = knownvalue.Bool(*prefix)
	}
	return knownvalue.ObjectExact(m)
}

func ptr[T any](v T) *T { return &v }

func TestAccRoleResourceLifecycle(t *testing.T) {
	accCluster(t)
	name := rbacName(t, "app")
	config := func(perms ...string) string { return providerConfig() + roleConfig(name, perms...) }
	permissions := tfjsonpath.New("permissions")

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkGone(sharedEtcd, []string{name}, nil),
		Steps: []resource.TestStep{
			// 1. Create with the three ways of writing a range.
			{
				Config: config(`key = "/app/", prefix = true, access = "read"`, `key = "/cfg", access = "readwrite"`,
					`key = "/a", range_end = "/c", access = "write"`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(roleAddr, tfjsonpath.New("id"), knownvalue.StringExact(name)),
					statecheck.ExpectKnownValue(roleAddr, permissions, knownvalue.SetExact([]knownvalue.Check{
						permCheck("/app/", nil, ptr(true), "read"),
						permCheck("/cfg", nil, nil, "readwrite"),
						permCheck("/a", ptr("/c"), nil, "write"),
					})),
				},
				Check: checkRole(sharedEtcd, name,
					permStr("read", "/app/", "/app0"), permStr("readwrite", "/cfg", ""), permStr("write", "/a", "/c")),
			},
			// 2. Import by name reads the same, in canonical form.
			{
				ResourceName:      roleAddr,
				ImportState:       true,
				ImportStateId:     name,
				ImportStateVerify: true,
			},
			// 3. Update: change an access, drop one, add a prefix written as
			// its range end. Only the difference is applied, in place.
			{
				Config: config(`key = "/app/", prefix = true, access = "readwrite"`,
					`key = "/a", range_end = "/c", access = "write"`, `key = "/x/", range_end = "/x0", access = "read"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(roleAddr, plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(roleAddr, permissions, knownvalue.SetExact([]knownvalue.Check{
						permCheck("/app/", nil, ptr(true), "readwrite"),
						permCheck("/a", ptr("/c"), nil, "write"),
						permCheck("/x/", ptr("/x0"), nil, "read"),
					})),
				},
				Check: checkRole(sharedEtcd, name,
					permStr("readwrite", "/app/", "/app0"), permStr("write", "/a", "/c"), permStr("read", "/x/", "/x0")),
			},
			// 4. Nothing changed: empty plan (the explicit range end of a
			// prefix does not flap to prefix = true).
			{
				Config: config(`key = "/app/", prefix = true, access = "readwrite"`,
					`key = "/a", range_end = "/c", access = "write"`, `key = "/x/", range_end = "/x0", access = "read"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			// 5. Rewriting prefix = true as the equivalent range_end (and
			// back) changes the notation only: etcd is left as it is and
			// the next plan is empty.
			{
				Config: config(`key = "/app/", range_end = "/app0", access = "readwrite"`,
					`key = "/a", range_end = "/c", access = "write"`, `key = "/x/", prefix = true, access = "read"`),
				Check: checkRole(sharedEtcd, name,
					permStr("readwrite", "/app/", "/app0"), permStr("write", "/a", "/c"), permStr("read", "/x/", "/x0")),
			},
			{
				Config: config(`key = "/app/", range_end = "/app0", access = "readwrite"`,
					`key = "/a", range_end = "/c", access = "write"`, `key = "/x/", prefix = true, access = "read"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			// 6. Drift: a grant and a revoke made with clientv3 (as etcdctl
			// does) show up as an update, and apply restores the role.
			{
				PreConfig: func() {
					ctx := etcdCtx(t)
					cli := sharedEtcd()
					if _, err := cli.RoleGrantPermission(ctx, name, "/oob", "", clientv3.PermissionType(clientv3.PermRead)); err != nil {
						t.Fatal(err)
					}
					if _, err := cli.RoleRevokePermission(ctx, name, "/a", "/c"); err != nil {
						t.Fatal(err)
					}
				},
				Config: config(`key = "/app/", range_end = "/app0", access = "readwrite"`,
					`key = "/a", range_end = "/c", access = "write"`, `key = "/x/", prefix = true, access = "read"`),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction(roleAddr, plancheck.ResourceActionUpdate),
				}},
				Check: checkRole(sharedEtcd, name,
					permStr("readwrite", "/app/", "/app0"), permStr("write", "/a", "/c"), permStr("read", "/x/", "/x0")),
			},
			// 7. Destroy: CheckDestroy asks etcd.
		},
	})
}

func TestAccRoleResourceInvalid(t *testing.T) {
	accCluster(t)
	name := rbacName(t, "r")
	taken := rbacName(t, "taken")
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config:      providerConfig() + roleConfig(name, `key = "/a/", prefix = true, range_end = "/b", access = "read"`),
				ExpectError: errorText(`sets both prefix = true and range_end; use one`),
			},
			{
				Config:      providerConfig() + roleConfig(name, `key = "/a", access = "admin"`),
				ExpectError: errorText(`value must be one of`),
			},
			{
				Config:      providerConfig() + roleConfig(name, `key = "/app/", prefix = true, access = "read"`, `key = "/app/", range_end = "/app0", access = "write"`),
				ExpectError: errorText(`Two permissions cover the same prefix "/app/"`),
			},
			{
				Config:      providerConfig() + roleConfig(name, `key = "/b", range_end = "/a", access = "read"`),
				ExpectError: errorText(`range_end "/a" is not after key "/b"`),
			},
			{
				Config:      providerConfig() + roleConfig("root", `key = "/a", access = "read"`),
				ExpectError: errorText(`The root role always grants read-write access to every key`),
			},
			{
				Config:      providerConfig() + roleConfig(" x"),
				ExpectError: errorText(`has leading or trailing spaces`),
			},
			{
				// A role that exists already is not taken over.
				PreConfig: func() {
					if _, err := sharedEtcd().RoleAdd(etcdCtx(t), taken); err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _, _ = sharedEtcd().RoleDelete(etcdCtx(t), taken) })
				},
				Config:      providerConfig() + roleConfig(taken),
				ExpectError: errorText(fmt.Sprintf(`The role %q already exists in etcd`, taken)),
			},
		},
	})
}

// The root role can be created and imported, but not deleted.
func TestAccRoleResourceRoot(t *testing.T) {
	c := startCluster(t)
	raw := rawClient(t, c, "", "")
	etcd := func() *clientv3.Client { return raw }
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: clusterProvider(c) + roleConfig("root"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue(roleAddr, tfjsonpath.New("permissions"), knownvalue.SetSizeExact(0)),
				},
				// etcd reports the root role's implicit access to every key.
				Check: checkRole(etcd, "root", permStr("readwrite", "", "\x00")),
			},
			{
				ResourceName:      roleAddr,
				ImportState:       true,
				ImportStateId:     "root",
				ImportStateVerify: true,
			},
			{
				Config:           clusterProvider(c) + roleConfig("root"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}},
			},
			{
				// Removing it from the configuration plans a delete, which fails.
				Config:      clusterProvider(c),
				ExpectError: errorText("The provider does not delete etcd's root role"),
			},
			{
				// Deleted outside Terraform: it leaves the state quietly.
				PreConfig: func() {
					if _, err := raw.RoleDelete(etcdCtx(t), "root"); err != nil {
						t.Fatal(err)
					}
				},
				Config: clusterProvider(c),
			},
		},
	})
}

// The documentation example applies, and etcd holds what it says.
func TestAccRoleResourceExample(t *testing.T) {
	c := startCluster(t)
	raw := rawClient(t, c, "", "")
	etcd := func() *clientv3.Client { return raw }
	t.Setenv("ETCDCTL_ENDPOINTS", strings.Join(c.Endpoints(), ","))
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkGone(etcd, []string{"app", "auditor"}, nil),
		Steps: []resource.TestStep{{
			ConfigDirectory: config.StaticDirectory("../../examples/resources/etcd_role"),
			Check: resource.ComposeTestCheckFunc(
				checkRole(etcd, "app", permStr("readwrite", "/app/", "/app0"), permStr("read", "/config/shared", ""),
					permStr("read", "/logs/2024-01", "/logs/2024-07")),
				checkRole(etcd, "auditor"),
			),
		}},
	})
}

// Unit test of the notation rules: what etcd holds is shown in the form
// the configuration (or state) used for the same range, else canonically.
func TestPermissionsValueKeepsForm(t *testing.T) {
	str, null := types.StringValue, types.StringNull()
	prior := []permissionModel{
		{Key: str("/a/"), RangeEnd: str("/a0"), Prefix: types.BoolNull(), Access: str("read")},
		{Key: str("/b/"), RangeEnd: null, Prefix: types.BoolValue(true), Access: str("read")},
		{Key: str("/c"), RangeEnd: null, Prefix: types.BoolValue(false), Access: str("read")},
	}
	held := []client.Permission{
		{KeyRange: client.KeyRange{Key: "/a/", RangeEnd: "/a0"}, Access: client.AccessReadWrite}, // access changed
		{KeyRange: client.KeyRange{Key: "/b/", RangeEnd: "/b0"}, Access: client.AccessRead},
		{KeyRange: client.KeyRange{Key: "/c"}, Access: client.AccessRead},
		{KeyRange: client.KeyRange{Key: "/new/", RangeEnd: "/new0"}, Access: client.AccessWrite}, // out of band
		{KeyRange: client.KeyRange{Key: "/r", RangeEnd: "/s0"}, Access: client.AccessWrite},
	}
	set, diags := permissionsValue(held, prior)
	if diags.HasError() {
		t.Fatal(diags)
	}
	var got []permissionModel
	if d := set.ElementsAs(context.Background(), &got, false); d.HasError() {
		t.Fatal(d)
	}
	want := map[string]string{
		"/a/":   `range_end="/a0" prefix=<null> access="readwrite"`,
		"/b/":   `range_end=<null> prefix=true access="read"`,
		"/c":    `range_end=<null> prefix=false access="read"`,
		"/new/": `range_end=<null> prefix=true access="write"`,
		"/r":    `range_end="/s0" prefix=<null> access="write"`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d permissions, want %d", len(got), len(want))
	}
	for _, m := range got {
		s := fmt.Sprintf("range_end=%s prefix=%s access=%s", m.RangeEnd, m.Prefix, m.Access)
		if want[m.Key.ValueString()] != s {
			t.Errorf("%s: %s, want %s", m.Key, s, want[m.Key.ValueString()])
		}
	}

	// A range etcd holds that Terraform strings cannot carry is an error.
	_, diags = permissionsValue([]client.Permission{{KeyRange: client.KeyRange{Key: "/x", RangeEnd: "\xff\xfe"}, Access: client.AccessRead}}, nil)
	if !diags.HasError() {
		t.Error("invalid UTF-8 range end: no error")
	}

	// Validation of configured permissions.
	for _, tc := range []struct {
		perms []permissionModel
		err   string
	}{
		{[]permissionModel{{Key: str("/a/"), RangeEnd: str("/b"), Prefix: types.BoolValue(true), Access: str("read")}}, "sets both prefix = true and range_end"},
		{[]permissionModel{{Key: str("/a/"), RangeEnd: null, Prefix: types.BoolValue(true), Access: str("read")}, {Key: str("/a/"), RangeEnd: str("/a0"), Prefix: types.BoolNull(), Access: str("write")}}, "cover the same prefix"},
		{[]permissionModel{{Key: str("/z"), RangeEnd: str("/a"), Prefix: types.BoolNull(), Access: str("read")}}, "is not after key"},
		{[]permissionModel{{Key: str("/a"), RangeEnd: null, Prefix: types.BoolNull(), Access: str("all")}}, "is not one of read, write, readwrite"},
		{[]permissionModel{{Key: str("/a"), RangeEnd: str("\x00"), Prefix: types.BoolNull(), Access: str("read")}}, ""},
	} {
		_, diags := clientPermissions(tc.perms)
		switch {
		case tc.err == "" && diags.HasError():
			t.Errorf("%v: unexpected %v", tc.perms, diags)
		case tc.err != "" && (!diags.HasError() || !strings.Contains(fmt.Sprint(diags), tc.err)):
			t.Errorf("%v: %v, want %q", tc.perms, diags, tc.err)
		}
	}
}

// keep_on_destroy: destroy forgets the role and leaves it, with its
// permissions, in etcd; turning it on is an update that changes nothing.
func TestAccRoleResourceKeepOnDestroy(t *testing.T) {
	accCluster(t)
	name := rbacName(t, "kept")
	t.Cleanup(func() { _, _ = sharedEtcd().RoleDelete(context.Background(), name) })
	config := func(keep string) string {
		return providerConfig() + fmt.Sprintf(`resource "etcd_role" "test" {
  name        = %s
  permissions = [{ key = "/kept/", prefix = true, access = "read" }]
  %s
}
`, hclString(name), keep)
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkRole(sharedEtcd, name, permStr("read", "/kept/", "/kept0")),
		Steps: []resource.TestStep{
			{Config: config("")},
			{
				Config: config("keep_on_destroy = true"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("etcd_role.test", plancheck.ResourceActionUpdate),
				}},
				Check: checkRole(sharedEtcd, name, permStr("read", "/kept/", "/kept0")),
			},
		},
	})
}
