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
	_ datasource.DataSource              = (*roleDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*roleDataSource)(nil)
)

// roleDataSource is the etcd_role data source: one role's permissions.
type roleDataSource struct {
	provider *providerData
}

func newRoleDataSource() datasource.DataSource { return &roleDataSource{} }

type roleDataSourceModel struct {
	ID          types.String       `tfsdk:"id"`
	Name        types.String       `tfsdk:"name"`
	Permissions permissionSetValue `tfsdk:"permissions"`
}

func (d *roleDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_role"
}

func (d *roleDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads an etcd role and the permissions etcd holds for it. A missing role is an error.\n\n" +
			"Each permission is shown in one canonical form: `prefix = true` when its range is exactly the keys " +
			"starting with `key`, `range_end` for any other range, neither for a single key. For the built-in " +
			"`root` role etcd reports one read-write permission on every key (`key = \"\"`, `range_end = \"\\u0000\"`).",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The role name.",
			},
			"name": schema.StringAttribute{
				Required:            true,
				MarkdownDescription: "The role to read.",
				Validators:          []validator.String{nameValidator{kind: "role"}},
			},
			"permissions": schema.SetNestedAttribute{
				CustomType:          permissionSet,
				Computed:            true,
				MarkdownDescription: "The role's permissions.",
				NestedObject: schema.NestedAttributeObject{
					Attributes: map[string]schema.Attribute{
						"key": schema.StringAttribute{
							Computed:            true,
							MarkdownDescription: "The key, or the start of the range.",
						},
						"range_end": schema.StringAttribute{
							Computed:            true,
							MarkdownDescription: "End of the range, not included; null for one key or a prefix.",
						},
						"prefix": schema.BoolAttribute{
							Computed:            true,
							MarkdownDescription: "True when the permission covers every key starting with `key`; null otherwise.",
						},
						"access": schema.StringAttribute{
							Computed:            true,
							MarkdownDescription: "`read`, `write` or `readwrite`.",
						},
					},
				},
			},
		},
	}
}

func (d *roleDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *roleDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m roleDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	cl, diags := d.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := m.Name.ValueString()
	held, err := cl.GetRole(ctx, name)
	switch {
	case errors.Is(err, client.ErrRoleNotFound):
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Role not found",
			fmt.Sprintf("etcd has no role %q. Check the name (etcdctl role list), or create it with an etcd_role resource.", name))
		return
	case err != nil:
		resp.Diagnostics.AddAttributeError(path.Root("name"), "Cannot read role", err.Error())
		return
	}
	m.ID = types.StringValue(name)
	m.Permissions, diags = permissionsValue(held, nil)
	resp.Diagnostics.Append(diags...)
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}
