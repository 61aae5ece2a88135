package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

var (
	_ datasource.DataSource              = (*userDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*userDataSource)(nil)
)

// userDataSource is the etcd_user data source: one user's roles. etcd never
// reveals a password, and neither does this.
type userDataSource struct {
	provider *providerData
}

func newUserDataSource() datasource.DataSource { return &userDataSource{} }

type userDataSourceModel struct {
	ID    types.String `tfsdk:"id"`
	Name  types.String `tfsdk:"name"`
	Roles types.Set    `tfsdk:"roles"`
}

func (d *userDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_user"
}

func (d *userDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads an etcd user's roles. A missing user is an error. No password or hash is ever " +
			"returned (etcd does not reveal them).",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The user name.",
			},
			"name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "The user to read.",
				Validators:          []validator.String{nameValidator{kind: "user"}},
			},
			"roles": schema.SetAttribute{
				ElementType:         types.StringType,
				Computed:            true,
				MarkdownDescription: "Names of the roles the user holds.",
			},
		},
	}
}

func (d *userDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *userDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m userDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	cl, diags := d.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := m.Name.ValueString()
	roles, err := cl.GetUser(ctx, name)
	switch {
	case errors.Is(err, client.ErrUserNotFound):
		resp.Diagnostics.AddAttributeError(path.Root("name"), "User not found",
			fmt.Sprintf("etcd has no user %q. Check the name (etcdctl user list), or create it with an etcd_user resource.", name))
		return
	case err != nil:
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Cannot read user", err.Error())
		return
	}
	m.ID = types.StringValue(name)
	m.Roles = stringSet(roles)
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}
