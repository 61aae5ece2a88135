package provider

import (
	"context"
	"math"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"
)

var (
	_ datasource.DataSource              = (*authStatusDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*authStatusDataSource)(nil)
)

// authStatusDataSource is etcd_auth_status: whether authentication is on.
type authStatusDataSource struct {
	provider *providerData
}

func newAuthStatusDataSource() datasource.DataSource { return &authStatusDataSource{} }

type authStatusDataSourceModel struct {
	ID           types.String `tfsdk:"id"`
	Enabled      types.Bool   `tfsdk:"enabled"`
	AuthRevision types.Int64  `tfsdk:"auth_revision"`
}

func (d *authStatusDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_auth_status"
}

func (d *authStatusDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads whether authentication is enabled on the cluster (as `etcdctl auth status`).",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "Always `auth_status`.",
			},
			"enabled": schema.BoolAttribute{
				Computed:            true,
				MarkdownDescription: "Whether authentication is enabled.",
			},
			"auth_revision": schema.Int64Attribute{
				Computed: true,
				MarkdownDescription: "The cluster's auth revision: etcd increments it on every change to users, roles, " +
					"permissions or the authentication setting.",
			},
		},
	}
}

func (d *authStatusDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *authStatusDataSource) Read(ctx context.Context, _ datasource.ReadRequest, resp *datasource.ReadResponse) {
	cl, diags := d.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	enabled, revision, err := cl.AuthState(ctx)
	if err != nil {
		resp.Diagnostics.AddError("Cannot read authentication status", err.Error())
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, authStatusDataSourceModel{
		ID:           types.StringValue("auth_status"),
		Enabled:      types.BoolValue(enabled),
		AuthRevision: types.Int64Value(int64(min(revision, math.MaxInt64))),
	})...)
}
