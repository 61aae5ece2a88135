package provider

import (
	"context"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

var (
	_ datasource.DataSource              = (*leaseDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*leaseDataSource)(nil)
)

// leaseDataSource is the etcd_lease data source: `etcdctl lease timetolive
// --keys` for Terraform.
type leaseDataSource struct {
	provider *providerData
}

func newLeaseDataSource() datasource.DataSource { return &leaseDataSource{} }

type leaseDataSourceModel struct {
	ID         types.String `tfsdk:"id"`
	TTL        types.Int64  `tfsdk:"ttl"`
	GrantedTTL types.Int64  `tfsdk:"granted_ttl"`
	Keys       types.List   `tfsdk:"keys"`
}

func (d *leaseDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_lease"
}

func (d *leaseDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Reads a lease by its ID: its remaining and granted TTL and the keys attached to it " +
			"(`etcdctl lease timetolive --keys`). A lease that does not exist (it expired or was revoked) is an error.\n\n" +
			"The remaining TTL (`ttl`) counts down every second, so every plan reads a new value: use it in a `check` " +
			"or a condition, not in an output or another resource's argument, which would then show a change on " +
			"every plan. `granted_ttl` and `keys` change only when the lease does.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "The lease ID in hexadecimal, as `etcdctl lease grant` prints it " +
					"(e.g. `\"694d7c8c1f0c7a0b\"`), or `etcd_lease.NAME.id`.",
				Validators: []validator.String{leaseIDValidator{}},
			},
			"ttl": schema.Int64Attribute{
				Computed: true,
				MarkdownDescription: "Remaining time to live in seconds when it was read. It changes with every " +
					"read: an output or argument that holds it shows a change on every plan.",
			},
			"granted_ttl": schema.Int64Attribute{
				Computed:            true,
				MarkdownDescription: "The TTL in seconds etcd granted (or last renewed to).",
			},
			"keys": schema.ListAttribute{
				ElementType:         types.StringType,
				Computed:            true,
				MarkdownDescription: "The keys attached to the lease, sorted. Keys that are not valid UTF-8 are left out, with a warning.",
			},
		},
	}
}

func (d *leaseDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *leaseDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m leaseDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	cl, diags := d.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	id, err := client.ParseLeaseID(m.ID.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("id"), "Invalid lease ID", err.Error())
		return
	}
	l, err := cl.GetLease(ctx, id, true)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("id"), "Cannot read lease", err.Error())
		return
	}
	keys := make([]string, 0, len(l.Keys))
	var skipped int
	for _, k := range l.Keys {
		if utf8.ValidString(k) {
			keys = append(keys, k)
		} else {
			skipped++
		}
	}
	if skipped > 0 {
		resp.Diagnostics.AddAttributeWarning(path.Root("keys"), "Keys that are not valid UTF-8",
			fmt.Sprintf("%d key(s) attached to the lease are not valid UTF-8 and are not listed; read them with the etcd_keys data source (key_base64).", skipped))
	}
	slices.Sort(keys)
	m.TTL = types.Int64Value(l.TTL)
	m.GrantedTTL = types.Int64Value(l.GrantedTTL)
	m.Keys, diags = types.ListValueFrom(ctx, types.StringType, keys)
	resp.Diagnostics.Append(diags...)
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}
