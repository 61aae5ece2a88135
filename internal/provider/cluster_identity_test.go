package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// An import block's identity becomes the cluster's import ID; a missing
// name or empty endpoints are errors naming the identity attribute.
func TestUnitClusterImportIdentity(t *testing.T) {
	ctx := context.Background()
	var schemaResp resource.IdentitySchemaResponse
	(&clusterResource{}).IdentitySchema(ctx, resource.IdentitySchemaRequest{}, &schemaResp)
	typ := schemaResp.IdentitySchema.Type().TerraformType(ctx).(tftypes.Object)
	identity := func(name any, eps []string) *tfsdk.ResourceIdentity {
		var list []tftypes.Value
		for _, e := range eps {
			list = append(list, tftypes.NewValue(tftypes.String, e))
		}
		return &tfsdk.ResourceIdentity{Schema: schemaResp.IdentitySchema, Raw: tftypes.NewValue(typ, map[string]tftypes.Value{
			"name":      tftypes.NewValue(tftypes.String, name),
			"endpoints": tftypes.NewValue(tftypes.List{ElementType: tftypes.String}, list),
		})}
	}
	for _, tc := range []struct {
		name      any
		endpoints []string
		want      string // the import ID, or the attribute an error names
	}{
		{"prod", []string{"http://10.0.0.1:2379", "http://10.0.0.2:2379"}, "prod@http://10.0.0.1:2379,http://10.0.0.2:2379"},
		{nil, []string{"http://10.0.0.1:2379"}, "error: name"},
		{"", []string{"http://10.0.0.1:2379"}, "error: name"},
		{"prod", nil, "error: endpoints"},
	} {
		id, diags := clusterImportID(ctx, resource.ImportStateRequest{Identity: identity(tc.name, tc.endpoints)})
		attr, isErr := strings.CutPrefix(tc.want, "error: ")
		switch {
		case !isErr && (diags.HasError() || id != tc.want):
			t.Errorf("identity %v %v: import ID %q (%v), want %q", tc.name, tc.endpoints, id, diags, tc.want)
		case isErr && !diags.HasError():
			t.Errorf("identity %v %v: import ID %q, want an error naming %s", tc.name, tc.endpoints, id, attr)
		case isErr && !strings.Contains(diags.Errors()[0].Detail(), "has no "+attr):
			t.Errorf("identity %v %v: error %q does not name %s", tc.name, tc.endpoints, diags.Errors()[0].Detail(), attr)
		}
	}
	// A refresh whose stored identity names another cluster is refused;
	// other endpoints are not (they follow the nodes).
	state := clusterModel{Name: types.StringValue("prod")}
	if diags := checkClusterIdentity(ctx, identity("prod", []string{"http://10.9.9.9:2379"}), state); diags.HasError() {
		t.Errorf("same name, other endpoints: %v", diags)
	}
	if diags := checkClusterIdentity(ctx, identity("staging", []string{"http://10.0.0.1:2379"}), state); !diags.HasError() ||
		diags.Errors()[0].Summary() != "Unexpected Identity Change" {
		t.Errorf("another cluster's identity: %v", diags)
	}
	// The plain import ID wins over an identity.
	if id, diags := clusterImportID(ctx, resource.ImportStateRequest{ID: "a@http://h:2379", Identity: identity("b", []string{"http://x:2379"})}); diags.HasError() || id != "a@http://h:2379" {
		t.Errorf("plain ID with an identity: %q %v", id, diags)
	}
}
