package provider

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

var (
	_ ephemeral.EphemeralResource              = (*keyEphemeralResource)(nil)
	_ ephemeral.EphemeralResourceWithConfigure = (*keyEphemeralResource)(nil)
)

// keyEphemeralResource is the ephemeral etcd_key: one key's value, read for
// one Terraform run and never stored in the plan or state.
type keyEphemeralResource struct {
	provider *providerData
}

func newKeyEphemeralResource() ephemeral.EphemeralResource { return &keyEphemeralResource{} }

type keyEphemeralModel struct {
	Key         types.String `tfsdk:"key"`
	Value       types.String `tfsdk:"value"`
	ValueBase64 types.String `tfsdk:"value_base64"`
	ModRevision types.Int64  `tfsdk:"mod_revision"`
}

func (r *keyEphemeralResource) Metadata(_ context.Context, req ephemeral.MetadataRequest, resp *ephemeral.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_key"
}

func (r *keyEphemeralResource) Schema(_ context.Context, _ ephemeral.SchemaRequest, resp *ephemeral.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads one key's value for one Terraform run (Terraform 1.10+, OpenTofu 1.11+), without it " +
			"ever touching the plan or state: for a secret kept in etcd, such as a password another provider " +
			"needs. The `etcd_key` data source reads the same key into the state.\n\n" +
			"Ephemeral values can be passed to provider blocks, other ephemeral resources, write-only arguments " +
			"(such as `etcd_user.password_wo` or `etcd_key.value_wo`) and locals, not to ordinary resource " +
			"arguments. A key that does not exist is an error.",
		Attributes: map[string]schema.Attribute{
			"key": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "The key to read, e.g. `/secrets/db-password`.",
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"value": schema.StringAttribute{
				Computed:  true,
				Sensitive: true,
				MarkdownDescription: "The value as text; null when it is not valid UTF-8 (then use `value_base64`). " +
					"Marked sensitive.",
			},
			"value_base64": schema.StringAttribute{
				Computed:            true,
				Sensitive:           true,
				MarkdownDescription: "The value as standard base64, for binary data. Marked sensitive.",
			},
			"mod_revision": schema.Int64Attribute{
				Computed:            true,
				MarkdownDescription: "Revision of the cluster at which the key was last written.",
			},
		},
	}
}

func (r *keyEphemeralResource) Configure(_ context.Context, req ephemeral.ConfigureRequest, resp *ephemeral.ConfigureResponse) {
	r.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *keyEphemeralResource) Open(ctx context.Context, req ephemeral.OpenRequest, resp *ephemeral.OpenResponse) {
	var m keyEphemeralModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	key := m.Key.ValueString()
	kv, err := cl.GetKey(ctx, key)
	switch {
	case errors.Is(err, client.ErrKeyNotFound):
		resp.Diagnostics.AddAttributeError(path.Root("key"), "Key not found",
			fmt.Sprintf("The key %q does not exist in etcd. Write it first (e.g. with etcd_key.value_wo), or check the key.", key))
		return
	case err != nil:
		resp.Diagnostics.AddAttributeError(path.Root("key"), "Cannot read key", err.Error())
		return
	}
	m.ValueBase64 = types.StringValue(base64.StdEncoding.EncodeToString(kv.Value))
	m.Value = types.StringNull()
	if utf8.Valid(kv.Value) {
		m.Value = types.StringValue(string(kv.Value))
	}
	m.ModRevision = types.Int64Value(kv.ModRevision)
	tflog.Debug(ctx, "read etcd key for this run", map[string]any{"key": key, "mod_revision": kv.ModRevision})
	resp.Diagnostics.Append(resp.Result.Set(ctx, m)...)
}
