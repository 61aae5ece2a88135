package provider

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

var (
	_ datasource.DataSource              = (*keyDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*keyDataSource)(nil)
)

// keyDataSource is the etcd_key data source: reads one key.
type keyDataSource struct {
	provider *providerData
}

func newKeyDataSource() datasource.DataSource { return &keyDataSource{} }

type keyDataSourceModel struct {
	Key            types.String `tfsdk:"key"`
	AllowMissing   types.Bool   `tfsdk:"allow_missing"`
	Exists         types.Bool   `tfsdk:"exists"`
	Value          types.String `tfsdk:"value"`
	ValueBase64    types.String `tfsdk:"value_base64"`
	CreateRevision types.Int64  `tfsdk:"create_revision"`
	ModRevision    types.Int64  `tfsdk:"mod_revision"`
	Version        types.Int64  `tfsdk:"version"`
	Lease          types.String `tfsdk:"lease"`
}

func (d *keyDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_key"
}

func (d *keyDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads one key from etcd. A missing key is an error unless `allow_missing` is true.",
		Attributes: map[string]schema.Attribute{
			"key": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "The key to read, e.g. `/app/config`.",
				Validators:          []validator.String{stringvalidator.LengthAtLeast(1)},
			},
			"allow_missing": schema.BoolAttribute{
				Optional: true,
				MarkdownDescription: "When true, a missing key is not an error: `exists` is false and the other " +
					"attributes are null. Defaults to false.",
			},
			"exists": schema.BoolAttribute{
				Computed:            true,
				MarkdownDescription: "Whether the key exists.",
			},
			"value": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The value as text; null when it is not valid UTF-8 (then use `value_base64`).",
			},
			"value_base64": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The value as standard base64; always set when the key exists.",
			},
			"create_revision": schema.Int64Attribute{
				Computed:            true,
				MarkdownDescription: "Revision of the cluster at which the key was created.",
			},
			"mod_revision": schema.Int64Attribute{
				Computed:            true,
				MarkdownDescription: "Revision of the cluster at which the key was last written.",
			},
			"version": schema.Int64Attribute{
				Computed:            true,
				MarkdownDescription: "Number of writes to the key since it was created.",
			},
			"lease": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "ID of the lease the key is attached to, in hexadecimal as etcdctl prints it; " +
					"null when there is none.",
			},
		},
	}
}

func (d *keyDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *keyDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m keyDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	cl, diags := d.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}

	key := m.Key.ValueString()
	kv, err := cl.GetKey(ctx, key)
	switch {
	case errors.Is(err, client.ErrKeyNotFound):
		if !m.AllowMissing.ValueBool() {
			resp.Diagnostics.AddAttributeError(path.Root("key"), "Key not found",
				fmt.Sprintf("The key %q does not exist in etcd. Check the key (etcd keys are exact, not prefixes), "+
					"create it first, or set allow_missing = true to get exists = false instead of this error.", key))
			return
		}
		m.Exists = types.BoolValue(false)
		m.Value, m.ValueBase64, m.Lease = types.StringNull(), types.StringNull(), types.StringNull()
		m.CreateRevision, m.ModRevision, m.Version = types.Int64Null(), types.Int64Null(), types.Int64Null()
	case err != nil:
		resp.Diagnostics.AddAttributeError(path.Root("key"), "Cannot read key", err.Error())
		return
	default:
		m.Exists = types.BoolValue(true)
		m.ValueBase64 = types.StringValue(base64.StdEncoding.EncodeToString(kv.Value))
		m.Value = types.StringNull()
		if utf8.Valid(kv.Value) {
			m.Value = types.StringValue(string(kv.Value))
		}
		m.CreateRevision = types.Int64Value(kv.CreateRevision)
		m.ModRevision = types.Int64Value(kv.ModRevision)
		m.Version = types.Int64Value(kv.Version)
		m.Lease = types.StringNull()
		if kv.Lease != 0 {
			m.Lease = types.StringValue(client.FormatLeaseID(kv.Lease))
		}
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}
