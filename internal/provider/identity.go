package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/identityschema"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

// Resource identity (Terraform 1.12+, OpenTofu 1.12+): what names a managed
// object outside Terraform, so that `import { to = ..., identity = {...} }`
// can find it and the CLI can tell when a resource starts pointing at
// another object. etcd_key's identity is its key, etcd_key_prefix's its
// prefix, etcd_role's and etcd_user's their name, etcd_lease's its ID: each
// is one string attribute, the same as the resource's plain import ID, which
// stays.

// stringIdentitySchema is an identity of one string attribute.
func stringIdentitySchema(attr, description string) identityschema.Schema {
	return identityschema.Schema{
		Attributes: map[string]identityschema.Attribute{
			attr: identityschema.StringAttribute{
				RequiredForImport: true,
				Description:       description,
			},
		},
	}
}

// setIdentity records value as the identity attribute attr; id is nil when
// the resource is served without identity support.
func setIdentity(ctx context.Context, id *tfsdk.ResourceIdentity, attr, value string) diag.Diagnostics {
	if id == nil {
		return nil
	}
	return id.SetAttribute(ctx, path.Root(attr), value)
}

// importTarget is what an import names: the plain import ID (`terraform
// import`, or an import block's `id`), or else the identity attribute attr
// of an import block's `identity`. An empty one is an error naming the
// identity attribute or the ID, and what to give instead.
func importTarget(ctx context.Context, req resource.ImportStateRequest, attr, example string) (string, diag.Diagnostics) {
	var diags diag.Diagnostics
	if req.ID != "" || req.Identity == nil {
		return req.ID, diags
	}
	var v types.String
	diags.Append(req.Identity.GetAttribute(ctx, path.Root(attr), &v)...)
	if diags.HasError() {
		return "", diags
	}
	if v.IsNull() || v.IsUnknown() || v.ValueString() == "" {
		diags.AddAttributeError(path.Root(attr), "Missing identity attribute",
			fmt.Sprintf("The import block's identity has no %s; give it, e.g. identity = { %s = %q }.", attr, attr, example))
		return "", diags
	}
	return v.ValueString(), diags
}
