package provider

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/membership"
)

// identityCase is one importable type: a configuration that creates it, and
// its identity attribute with the value it must have (nil: read from the
// state's attribute of the same name after create, as for a lease ID).
type identityCase struct {
	addr, attr string
	config     string
	want       *string
	// changes: the plan after an import block is not empty (etcd never
	// reveals a password, so the configured one is set again).
	changes bool
}

func identityCases(t *testing.T) map[string]identityCase {
	prefix := keyPrefix(t)
	key, role, user := prefix+"k", rbacName(t, "r"), rbacName(t, "u")
	return map[string]identityCase{
		"etcd_key": {"etcd_key.test", "key", providerConfig() + keyConfig(key, "v"), &key, false},
		"etcd_key_prefix": {prefixAddr, "prefix",
			prefixConfig(prefix+"p/", map[string]string{"a": "1"}, nil), ptr(prefix + "p/"), false},
		"etcd_role":  {"etcd_role.test", "name", providerConfig() + roleConfig(role), &role, false},
		"etcd_user":  {"etcd_user.test", "name", providerConfig() + userConfig(user, `password = "identity-test-pw"`), &user, true},
		"etcd_lease": {"etcd_lease.test", "id", providerConfig() + "resource \"etcd_lease\" \"test\" {\n  ttl = 600\n}\n", nil, false},
	}
}

// Every importable type carries a resource identity, and imports by it
// (`import { identity = {...} }`) and by its plain ID, in an import block
// and with the import command. Terraform and OpenTofu 1.12+.
func TestAccResourceIdentityImport(t *testing.T) {
	accCluster(t)
	for typ, tc := range identityCases(t) {
		t.Run(typ, func(t *testing.T) {
			var check knownvalue.Check = knownvalue.NotNull()
			if tc.want != nil {
				check = knownvalue.StringExact(*tc.want)
			}
			resource.ParallelTest(t, resource.TestCase{
				TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_12_0)},
				ProtoV6ProviderFactories: testAccProviders,
				Steps: []resource.TestStep{
					{
						Config: tc.config,
						ConfigStateChecks: []statecheck.StateCheck{
							statecheck.ExpectIdentity(tc.addr, map[string]knownvalue.Check{tc.attr: check}),
							statecheck.ExpectIdentityValueMatchesState(tc.addr, tfjsonpath.New(tc.attr)),
						},
					},
					{
						Config:             tc.config,
						ResourceName:       tc.addr,
						ImportState:        true,
						ImportStateKind:    resource.ImportBlockWithResourceIdentity,
						ExpectNonEmptyPlan: tc.changes,
					},
					{
						Config:             tc.config,
						ResourceName:       tc.addr,
						ImportState:        true,
						ImportStateKind:    resource.ImportBlockWithID,
						ExpectNonEmptyPlan: tc.changes,
					},
					{
						Config:            tc.config,
						ResourceName:      tc.addr,
						ImportState:       true,
						ImportStateKind:   resource.ImportCommandWithID,
						ImportStateVerify: true,
						ImportStateVerifyIgnore: []string{
							"password", // etcd never reveals a password
						},
					},
				},
			})
		})
	}
}

// Identities that do not match anything: an attribute of another type's
// identity is refused by the CLI, a key that does not exist by the import,
// and an empty one names the attribute.
func TestAccResourceIdentityImportInvalid(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	key := prefix + "k"
	withImport := func(identity string) string {
		return providerConfig() + keyConfig(key, "v") + "import {\n  to       = etcd_key.test\n  identity = " + identity + "\n}\n"
	}
	resource.ParallelTest(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_12_0)},
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkNoKeys(prefix),
		Steps: []resource.TestStep{
			{Config: withImport(fmt.Sprintf("{ prefix = %q }", prefix)), ExpectError: errorText(`Invalid expression value: attribute "key" is required`)},
			{Config: withImport(fmt.Sprintf("{ key = %q }", prefix+"missing")), ExpectError: regexp.MustCompile(`(?i)cannot import non-existent remote object`)},
			{Config: withImport(`{ key = "" }`), ExpectError: errorText("The import block's identity has no key")},
		},
	})
}

// Identity at the protocol level, the way any CLI that supports it (1.12+)
// sends it: ImportResourceState with only an identity, then ReadResource
// with the imported state and identity, for every type; and a refresh whose
// stored identity names another object is refused, not rewritten.
func TestResourceIdentityProtocol(t *testing.T) {
	c := accCluster(t)
	ctx := etcdCtx(t)
	srv, err := NewProtocol6Server("test")()
	if err != nil {
		t.Fatal(err)
	}
	configuredServer(t, srv, c.Endpoints(), nil)
	schemas, err := srv.GetResourceIdentitySchemas(ctx, &tfprotov6.GetResourceIdentitySchemasRequest{})
	if err != nil {
		t.Fatal(err)
	}
	resSchemas, err := srv.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}

	prefix := keyPrefix(t)
	mustPut(t, prefix+"k", "v")
	mustPut(t, prefix+"p/a", "1")
	role, user := rbacName(t, "r"), rbacName(t, "u")
	if _, err := c.Client().RoleAdd(ctx, role); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client().UserAdd(ctx, user, "pw-identity-proto"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = c.Client().RoleDelete(context.Background(), role)
		_, _ = c.Client().UserDelete(context.Background(), user)
	})
	lease, err := c.Client().Grant(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.Client().Revoke(context.Background(), lease.ID) })
	leaseHex := client.FormatLeaseID(int64(lease.ID))
	members, err := c.Client().MemberList(ctx)
	if err != nil {
		t.Fatal(err)
	}
	memberHex := membership.FormatID(members.Members[0].ID)

	for _, tc := range []struct{ typ, attr, value string }{
		{"etcd_key", "key", prefix + "k"},
		{"etcd_key_prefix", "prefix", prefix + "p/"},
		{"etcd_role", "name", role},
		{"etcd_user", "name", user},
		{"etcd_lease", "id", leaseHex},
		{"etcd_member", "id", memberHex},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			idSchema, ok := schemas.IdentitySchemas[tc.typ]
			if !ok {
				t.Fatalf("%s has no identity schema", tc.typ)
			}
			idType := idSchema.ValueType().(tftypes.Object)
			if at, ok := idType.AttributeTypes[tc.attr]; len(idType.AttributeTypes) != 1 || !ok || !at.Is(tftypes.String) {
				t.Fatalf("%s identity is %s, want one string %q", tc.typ, idType, tc.attr)
			}
			identity := func(v string) *tfprotov6.ResourceIdentityData {
				dv, err := tfprotov6.NewDynamicValue(idType, tftypes.NewValue(idType, map[string]tftypes.Value{tc.attr: tftypes.NewValue(tftypes.String, v)}))
				if err != nil {
					t.Fatal(err)
				}
				return &tfprotov6.ResourceIdentityData{IdentityData: &dv}
			}
			imp, err := srv.ImportResourceState(ctx, &tfprotov6.ImportResourceStateRequest{TypeName: tc.typ, Identity: identity(tc.value)})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range imp.Diagnostics {
				t.Fatalf("import: %s: %s", d.Summary, d.Detail)
			}
			if len(imp.ImportedResources) != 1 {
				t.Fatalf("imported %d resources", len(imp.ImportedResources))
			}
			ir := imp.ImportedResources[0]
			read, err := srv.ReadResource(ctx, &tfprotov6.ReadResourceRequest{
				TypeName: tc.typ, CurrentState: ir.State, CurrentIdentity: ir.Identity, Private: ir.Private,
			})
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range read.Diagnostics {
				t.Fatalf("read after import: %s: %s", d.Summary, d.Detail)
			}
			stateType := resSchemas.ResourceSchemas[tc.typ].ValueType()
			state, err := read.NewState.Unmarshal(stateType)
			if err != nil {
				t.Fatal(err)
			}
			var attrs map[string]tftypes.Value
			if err := state.As(&attrs); err != nil || attrs == nil {
				t.Fatalf("read after import removed the %s (state %s, %v)", tc.typ, state, err)
			}
			var got string
			if err := attrs[tc.attr].As(&got); err != nil || got != tc.value {
				t.Fatalf("state %s = %q, want %q", tc.attr, got, tc.value)
			}
			gotID, err := read.NewIdentity.IdentityData.Unmarshal(idType)
			if err != nil {
				t.Fatal(err)
			}
			if want := tftypes.NewValue(idType, map[string]tftypes.Value{tc.attr: tftypes.NewValue(tftypes.String, tc.value)}); !gotID.Equal(want) {
				t.Fatalf("identity after read %s, want %s", gotID, want)
			}

			// A refresh whose stored identity names another object.
			other, err := srv.ReadResource(ctx, &tfprotov6.ReadResourceRequest{
				TypeName: tc.typ, CurrentState: read.NewState, CurrentIdentity: identity(tc.value + "-other"), Private: read.Private,
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(other.Diagnostics) == 0 || other.Diagnostics[0].Summary != "Unexpected Identity Change" {
				t.Fatalf("a refresh with another object's identity: diagnostics %v", other.Diagnostics)
			}
		})
	}
}

// configuredServer configures srv for endpoints (extra: other attributes of
// the provider block) and returns the etcd_key state type.
func configuredServer(t *testing.T, srv tfprotov6.ProviderServer, endpoints []string, extra map[string]tftypes.Value) tftypes.Object {
	t.Helper()
	ctx := context.Background()
	schemas, err := srv.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	providerType := schemas.Provider.ValueType().(tftypes.Object)
	attrs := map[string]tftypes.Value{}
	for name, typ := range providerType.AttributeTypes {
		attrs[name] = tftypes.NewValue(typ, nil)
	}
	eps := make([]tftypes.Value, len(endpoints))
	for i, e := range endpoints {
		eps[i] = tftypes.NewValue(tftypes.String, e)
	}
	attrs["endpoints"] = tftypes.NewValue(tftypes.List{ElementType: tftypes.String}, eps)
	for name, v := range extra {
		attrs[name] = v
	}
	cfg, err := tfprotov6.NewDynamicValue(providerType, tftypes.NewValue(providerType, attrs))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.ConfigureProvider(ctx, &tfprotov6.ConfigureProviderRequest{Config: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range resp.Diagnostics {
		t.Fatalf("configure: %s: %s", d.Summary, d.Detail)
	}
	return schemas.ResourceSchemas["etcd_key"].ValueType().(tftypes.Object)
}
