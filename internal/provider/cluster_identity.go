package provider

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/identityschema"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// etcd_cluster's resource identity is what its import ID says: the cluster's
// name and its members' client URLs. The client URLs follow the nodes, so
// the identity may change on an update that adds or removes a node
// (MutableIdentity in Metadata); the name never does, and a refresh whose
// stored identity names another cluster is refused.

var _ resource.ResourceWithIdentity = (*clusterResource)(nil)

// clusterIdentityModel is the identity's object.
type clusterIdentityModel struct {
	Name      types.String `tfsdk:"name"`
	Endpoints types.List   `tfsdk:"endpoints"`
}

func (r *clusterResource) IdentitySchema(_ context.Context, _ resource.IdentitySchemaRequest, resp *resource.IdentitySchemaResponse) {
	resp.IdentitySchema = identityschema.Schema{
		Attributes: map[string]identityschema.Attribute{
			"name": identityschema.StringAttribute{
				RequiredForImport: true,
				Description:       "The cluster's name, as in the `name` argument.",
			},
			"endpoints": identityschema.ListAttribute{
				ElementType:       types.StringType,
				RequiredForImport: true,
				Description:       "The client URLs of the cluster's members, such as `http://10.0.0.1:2379`.",
			},
		},
	}
}

// setClusterIdentity records m's name and endpoints as the identity; id is
// nil when the CLI does not support identities.
func setClusterIdentity(ctx context.Context, id *tfsdk.ResourceIdentity, m clusterModel) diag.Diagnostics {
	if id == nil {
		return nil
	}
	eps := m.Endpoints
	if eps.IsNull() || eps.IsUnknown() {
		eps = types.ListValueMust(types.StringType, []attr.Value{})
	}
	return id.Set(ctx, clusterIdentityModel{Name: m.Name, Endpoints: eps})
}

// checkClusterIdentity refuses a refresh whose stored identity names another
// cluster than the state does.
func checkClusterIdentity(ctx context.Context, id *tfsdk.ResourceIdentity, m clusterModel) diag.Diagnostics {
	var diags diag.Diagnostics
	if id == nil || id.Raw.IsNull() {
		return diags
	}
	var got clusterIdentityModel
	diags.Append(id.Get(ctx, &got)...)
	if diags.HasError() || got.Name.IsNull() || got.Name.ValueString() == "" {
		return diags
	}
	if got.Name.ValueString() != m.Name.ValueString() {
		diags.AddError("Unexpected Identity Change",
			fmt.Sprintf("The stored identity names cluster %q, but the state is of cluster %q. A cluster's name never changes: "+
				"remove the resource from the state (terraform state rm) and import the cluster it should manage.",
				got.Name.ValueString(), m.Name.ValueString()))
	}
	return diags
}

// clusterImportID is the "<name>@<client URL>,..." that an import names:
// the plain import ID, or else the import block's identity, whose empty
// attributes are errors naming them.
func clusterImportID(ctx context.Context, req resource.ImportStateRequest) (string, diag.Diagnostics) {
	var diags diag.Diagnostics
	if req.ID != "" || req.Identity == nil {
		return req.ID, diags
	}
	var id clusterIdentityModel
	diags.Append(req.Identity.Get(ctx, &id)...)
	if diags.HasError() {
		return "", diags
	}
	if id.Name.IsNull() || id.Name.IsUnknown() || id.Name.ValueString() == "" {
		diags.AddAttributeError(path.Root("name"), "Missing identity attribute",
			`The import block's identity has no name; give it, e.g. identity = { name = "prod", endpoints = ["http://10.0.0.1:2379"] }.`)
	}
	var eps []string
	if !id.Endpoints.IsNull() && !id.Endpoints.IsUnknown() {
		diags.Append(id.Endpoints.ElementsAs(ctx, &eps, false)...)
	}
	if len(eps) == 0 {
		diags.AddAttributeError(path.Root("endpoints"), "Missing identity attribute",
			`The import block's identity has no endpoints; give the members' client URLs, e.g. endpoints = ["http://10.0.0.1:2379"].`)
	}
	if diags.HasError() {
		return "", diags
	}
	return id.Name.ValueString() + "@" + strings.Join(eps, ","), diags
}
