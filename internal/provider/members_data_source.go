package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/membership"
)

var (
	_ datasource.DataSource              = (*membersDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*membersDataSource)(nil)
)

// membersDataSource is etcd_members: `etcdctl member list` for Terraform.
type membersDataSource struct {
	provider *providerData
}

func newMembersDataSource() datasource.DataSource { return &membersDataSource{} }

type membersDataSourceModel struct {
	ClusterID types.String `tfsdk:"cluster_id"`
	Leader    types.String `tfsdk:"leader"`
	Members   types.List   `tfsdk:"members"`
}

var memberObjectType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"id":          types.StringType,
	"name":        types.StringType,
	"peer_urls":   types.ListType{ElemType: types.StringType},
	"client_urls": types.ListType{ElemType: types.StringType},
	"is_learner":  types.BoolType,
	"is_leader":   types.BoolType,
}}

func (d *membersDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_members"
}

func (d *membersDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "The cluster's member list, as `etcdctl member list -w table` shows it, with the " +
			"leader and learner flags. The list is read linearizably (through the leader). A member that was " +
			"added but whose process never joined has an empty `name` and no `client_urls` (etcdctl shows it " +
			"as `unstarted`).",
		Attributes: map[string]schema.Attribute{
			"cluster_id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "ID of the cluster, in hexadecimal as etcdctl prints it.",
			},
			"leader": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "Member ID of the leader, in hexadecimal; null when no reachable member knows " +
					"a leader.",
			},
			"members": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "The members, ordered by ID like `etcdctl member list`.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"id": schema.StringAttribute{
						Computed:            true,
						MarkdownDescription: "Member ID in hexadecimal, e.g. `8e9e05c52164694d`.",
					},
					"name": schema.StringAttribute{
						Computed:            true,
						MarkdownDescription: "Member name; empty while the member is unstarted.",
					},
					"peer_urls": schema.ListAttribute{
						ElementType:         types.StringType,
						Computed:            true,
						MarkdownDescription: "URLs the member's peers reach it at.",
					},
					"client_urls": schema.ListAttribute{
						ElementType:         types.StringType,
						Computed:            true,
						MarkdownDescription: "URLs the member serves clients at; empty while the member is unstarted.",
					},
					"is_learner": schema.BoolAttribute{
						Computed:            true,
						MarkdownDescription: "Whether the member is a learner (replicates but does not vote).",
					},
					"is_leader": schema.BoolAttribute{
						Computed:            true,
						MarkdownDescription: "Whether the member is the leader.",
					},
				}},
			},
		},
	}
}

func (d *membersDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *membersDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	cl, diags := d.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	l, diags := listMembers(ctx, cl)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	m := membersDataSourceModel{
		ClusterID: types.StringValue(membership.FormatID(l.ClusterID)),
		Leader:    types.StringNull(),
	}
	if l.Leader != 0 {
		m.Leader = types.StringValue(membership.FormatID(l.Leader))
	}
	elems := make([]attr.Value, len(l.Members))
	for i, mm := range l.Members {
		elems[i] = types.ObjectValueMust(memberObjectType.AttrTypes, map[string]attr.Value{
			"id":          types.StringValue(membership.FormatID(mm.ID)),
			"name":        types.StringValue(mm.Name),
			"peer_urls":   memberURLList(mm.PeerURLs),
			"client_urls": memberURLList(mm.ClientURLs),
			"is_learner":  types.BoolValue(mm.IsLearner),
			"is_leader":   types.BoolValue(mm.IsLeader),
		})
	}
	m.Members = types.ListValueMust(memberObjectType, elems)
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}

// memberURLList is a list of URLs as a Terraform list (empty, never null).
func memberURLList(urls []string) types.List {
	elems := make([]attr.Value, len(urls))
	for i, u := range urls {
		elems[i] = types.StringValue(u)
	}
	return types.ListValueMust(types.StringType, elems)
}
