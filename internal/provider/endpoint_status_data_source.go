package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/datasource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

var (
	_ datasource.DataSource              = (*endpointStatusDataSource)(nil)
	_ datasource.DataSourceWithConfigure = (*endpointStatusDataSource)(nil)
)

// endpointStatusDataSource is etcd_endpoint_status: `etcdctl endpoint
// status` for Terraform.
type endpointStatusDataSource struct {
	provider *providerData
}

func newEndpointStatusDataSource() datasource.DataSource { return &endpointStatusDataSource{} }

type endpointStatusDataSourceModel struct {
	Endpoints types.List `tfsdk:"endpoints"`
	Statuses  types.List `tfsdk:"statuses"`
}

var endpointStatusType = types.ObjectType{AttrTypes: map[string]attr.Type{
	"endpoint":           types.StringType,
	"member_id":          types.StringType,
	"cluster_id":         types.StringType,
	"version":            types.StringType,
	"storage_version":    types.StringType,
	"db_size":            types.Int64Type,
	"db_size_in_use":     types.Int64Type,
	"fragmentation":      types.Float64Type,
	"alarms":             types.ListType{ElemType: types.StringType},
	"leader":             types.StringType,
	"is_leader":          types.BoolType,
	"is_learner":         types.BoolType,
	"raft_term":          types.Int64Type,
	"raft_index":         types.Int64Type,
	"raft_applied_index": types.Int64Type,
	"errors":             types.ListType{ElemType: types.StringType},
	"error":              types.StringType,
}}

func (d *endpointStatusDataSource) Metadata(_ context.Context, req datasource.MetadataRequest, resp *datasource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_endpoint_status"
}

func (d *endpointStatusDataSource) Schema(_ context.Context, _ datasource.SchemaRequest, resp *datasource.SchemaResponse) {
	computed := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Computed: true, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "The status of each etcd endpoint, as `etcdctl endpoint status` shows it: member ID, " +
			"version, database size and fragmentation, leader, learner or not, raft term and indexes, and the alarms " +
			"(`NOSPACE`, `CORRUPT`) and errors the member reports. " +
			"An endpoint that does not answer does not fail the data source: its `error` says why, and the " +
			"other attributes of its entry are null, so a `check` or a postcondition can decide what to do.",
		Attributes: map[string]schema.Attribute{
			"endpoints": schema.ListAttribute{
				ElementType: types.StringType,
				Optional:    true,
				Computed:    true,
				MarkdownDescription: "The client URLs to ask, e.g. `[\"https://10.0.0.1:2379\"]`. Defaults to the " +
					"provider's endpoints.",
				Validators: []validator.List{
					listvalidator.SizeAtLeast(1),
					listvalidator.ValueStringsAre(endpointValidator{}),
				},
			},
			"statuses": schema.ListNestedAttribute{
				Computed:            true,
				MarkdownDescription: "One entry per endpoint, in the order of `endpoints`.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"endpoint":        computed("The endpoint asked."),
					"member_id":       computed("ID of the member that answered, in hexadecimal as etcdctl prints it."),
					"cluster_id":      computed("ID of the member's cluster, in hexadecimal."),
					"version":         computed("etcd version of the member, e.g. `3.6.4`."),
					"storage_version": computed("Storage version of the member's data."),
					"db_size": schema.Int64Attribute{
						Computed:            true,
						MarkdownDescription: "Size in bytes of the member's backend database (allocated).",
					},
					"db_size_in_use": schema.Int64Attribute{
						Computed:            true,
						MarkdownDescription: "Size in bytes of the database in use (the rest is freed by defragmentation).",
					},
					"fragmentation": schema.Float64Attribute{
						Computed: true,
						MarkdownDescription: "Share of the database file allocated but not in use, a ratio from 0 to 1: " +
							"`(db_size - db_size_in_use) / db_size`. It is what `etcdctl defrag` would give back; " +
							"e.g. 0.5 means half the file is free pages.",
					},
					"alarms": schema.ListAttribute{
						ElementType: types.StringType,
						Computed:    true,
						MarkdownDescription: "Alarms active for this member, by name, sorted: `NOSPACE` (its database " +
							"reached the quota: the cluster refuses writes until space is freed with compaction and " +
							"`etcdctl defrag`, and the alarm is disarmed with `etcdctl alarm disarm`) and `CORRUPT` " +
							"(its data differs from the other members'). Empty when none; null when the alarm list " +
							"could not be read.",
					},
					"leader": computed("Member ID of the leader, as this member sees it."),
					"is_leader": schema.BoolAttribute{
						Computed:            true,
						MarkdownDescription: "Whether this member is the leader.",
					},
					"is_learner": schema.BoolAttribute{
						Computed:            true,
						MarkdownDescription: "Whether this member is a learner (a non-voting member).",
					},
					"raft_term": schema.Int64Attribute{
						Computed:            true,
						MarkdownDescription: "Current raft term.",
					},
					"raft_index": schema.Int64Attribute{
						Computed:            true,
						MarkdownDescription: "Current raft committed index.",
					},
					"raft_applied_index": schema.Int64Attribute{
						Computed:            true,
						MarkdownDescription: "Current raft applied index.",
					},
					"errors": schema.ListAttribute{
						ElementType:         types.StringType,
						Computed:            true,
						MarkdownDescription: "Errors and alarms the member reports about itself (e.g. `NOSPACE`); empty when healthy.",
					},
					"error": computed("Why the endpoint could not be asked; null when it answered."),
				}},
			},
		},
	}
}

func (d *endpointStatusDataSource) Configure(_ context.Context, req datasource.ConfigureRequest, resp *datasource.ConfigureResponse) {
	d.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (d *endpointStatusDataSource) Read(ctx context.Context, req datasource.ReadRequest, resp *datasource.ReadResponse) {
	var m endpointStatusDataSourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	cl, diags := d.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	var endpoints []string
	if m.Endpoints.IsNull() || m.Endpoints.IsUnknown() {
		endpoints = cl.Endpoints()
	} else {
		resp.Diagnostics.Append(m.Endpoints.ElementsAs(ctx, &endpoints, false)...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	statuses := cl.Status(ctx, endpoints)
	elems := make([]attr.Value, len(statuses))
	for i, s := range statuses {
		elems[i] = endpointStatusValue(s)
	}
	m.Endpoints, diags = types.ListValueFrom(ctx, types.StringType, endpoints)
	resp.Diagnostics.Append(diags...)
	m.Statuses = types.ListValueMust(endpointStatusType, elems)
	resp.Diagnostics.Append(resp.State.Set(ctx, m)...)
}

func endpointStatusValue(s client.EndpointStatus) attr.Value {
	obj := map[string]attr.Value{
		"endpoint":           types.StringValue(s.Endpoint),
		"member_id":          types.StringNull(),
		"cluster_id":         types.StringNull(),
		"version":            types.StringNull(),
		"storage_version":    types.StringNull(),
		"db_size":            types.Int64Null(),
		"db_size_in_use":     types.Int64Null(),
		"fragmentation":      types.Float64Null(),
		"alarms":             types.ListNull(types.StringType),
		"leader":             types.StringNull(),
		"is_leader":          types.BoolNull(),
		"is_learner":         types.BoolNull(),
		"raft_term":          types.Int64Null(),
		"raft_index":         types.Int64Null(),
		"raft_applied_index": types.Int64Null(),
		"errors":             types.ListNull(types.StringType),
		"error":              types.StringNull(),
	}
	if s.Err != nil {
		obj["error"] = types.StringValue(s.Err.Error())
		return types.ObjectValueMust(endpointStatusType.AttrTypes, obj)
	}
	errs := make([]attr.Value, len(s.Errors))
	for i, e := range s.Errors {
		errs[i] = types.StringValue(e)
	}
	obj["member_id"] = types.StringValue(client.FormatMemberID(s.MemberID))
	obj["cluster_id"] = types.StringValue(client.FormatMemberID(s.ClusterID))
	obj["version"] = types.StringValue(s.Version)
	obj["storage_version"] = types.StringValue(s.StorageVersion)
	obj["db_size"] = types.Int64Value(s.DBSize)
	obj["db_size_in_use"] = types.Int64Value(s.DBSizeInUse)
	obj["fragmentation"] = types.Float64Value(s.Fragmentation())
	if s.AlarmsErr == nil {
		alarms := make([]attr.Value, len(s.Alarms))
		for i, a := range s.Alarms {
			alarms[i] = types.StringValue(a)
		}
		obj["alarms"] = types.ListValueMust(types.StringType, alarms)
	}
	obj["leader"] = types.StringValue(client.FormatMemberID(s.Leader))
	obj["is_leader"] = types.BoolValue(s.IsLeader())
	obj["is_learner"] = types.BoolValue(s.IsLearner)
	obj["raft_term"] = types.Int64Value(int64(s.RaftTerm))
	obj["raft_index"] = types.Int64Value(int64(s.RaftIndex))
	obj["raft_applied_index"] = types.Int64Value(int64(s.RaftAppliedIndex))
	obj["errors"] = types.ListValueMust(types.StringType, errs)
	return types.ObjectValueMust(endpointStatusType.AttrTypes, obj)
}
