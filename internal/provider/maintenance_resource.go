package provider

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/resourcevalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/maintenance"
)

var (
	_ resource.Resource                     = (*maintenanceResource)(nil)
	_ resource.ResourceWithConfigure        = (*maintenanceResource)(nil)
	_ resource.ResourceWithModifyPlan       = (*maintenanceResource)(nil)
	_ resource.ResourceWithConfigValidators = (*maintenanceResource)(nil)
	_ validator.String                      = percentValidator{}
	_ validator.String                      = byteSizeValidator{}
)

// maintenanceResource is etcd_maintenance: defragmentation of the members
// of the provider's cluster that exceed thresholds, planned by a refresh
// and done by an apply. The work is internal/maintenance's.
type maintenanceResource struct {
	provider *providerData
}

func newMaintenanceResource() resource.Resource { return &maintenanceResource{} }

type maintenanceModel struct {
	ID            types.String `tfsdk:"id"`
	FreeOver      types.String `tfsdk:"defragment_when_free_over"`
	FreeBytesOver types.String `tfsdk:"defragment_when_free_bytes_over"`
	DisarmNoSpace types.Bool   `tfsdk:"disarm_nospace"`
	Pending       types.List   `tfsdk:"pending_defragmentation"`
}

// privatePendingDefrag is the private state key holding the IDs of the
// members that the last refresh found to need a defragmentation: the
// members an apply may defragment.
const privatePendingDefrag = "pending_defrag"

func (r *maintenanceResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_maintenance"
}

// maintenanceAttributes are the settings etcd_maintenance shares with
// etcd_cluster's maintenance.
func maintenanceAttributes() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"defragment_when_free_over": schema.StringAttribute{Optional: true,
			MarkdownDescription: "Defragment a member when this share of its database file is free " +
				"(`(db_size - db_size_in_use) / db_size`, as `etcd_endpoint_status` reports it), e.g. `\"30%\"`. " +
				"Above 0% and below 100%. A member with less than 256 KiB free is left alone by this rule: a new or nearly " +
				"empty database is often half free, with nothing worth a defragmentation to gain.",
			Validators: []validator.String{percentValidator{}}},
		"defragment_when_free_bytes_over": schema.StringAttribute{Optional: true,
			MarkdownDescription: "Defragment a member when more than this many bytes of its database file are free, " +
				"e.g. `\"512MiB\"` (units B, KiB, MiB, GiB, TiB, KB, MB, GB, TB). A member is defragmented when it " +
				"exceeds either threshold.",
			Validators: []validator.String{byteSizeValidator{}}},
		"disarm_nospace": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(true),
			MarkdownDescription: "After a defragmentation that freed space, disarm the member's `NOSPACE` alarm " +
				"(`etcdctl alarm disarm`), so that the cluster accepts writes again. Defaults to true."},
	}
}

func (r *maintenanceResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	attrs := maintenanceAttributes()
	attrs["id"] = schema.StringAttribute{Computed: true,
		MarkdownDescription: "The cluster ID (hexadecimal, as etcdctl prints it).",
		PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()}}
	attrs["pending_defragmentation"] = schema.ListAttribute{Computed: true, ElementType: types.StringType,
		MarkdownDescription: "The defragmentations the last refresh found due, in the order an apply does them, e.g. " +
			"`[\"defragment etcd-2 (ID 8e9e05c52164694d): 41% free: 3.2 MiB of 7.8 MiB\"]`. A plan empties the list: " +
			"the entries it removes are what the apply does. Empty after an apply."}
	resp.Schema = schema.Schema{
		MarkdownDescription: "Keeps the databases of the provider's etcd cluster compact: each refresh measures every " +
			"member's database (`db_size` against `db_size_in_use`, through the member's own client URL from the member " +
			"list) and lists in `pending_defragmentation` the members that exceed a threshold; the plan then shows them " +
			"as an in-place update, and the apply defragments them (`etcdctl defrag`) one at a time, followers first and " +
			"the leader last, never two at once. After a defragmentation that freed space it disarms the member's " +
			"`NOSPACE` alarm (with `disarm_nospace`).\n\n" +
			"It works on any cluster the provider reaches, including clusters it did not create. A member that is down is " +
			"skipped with a warning, and so is every member whose defragmentation (which stalls the member while it " +
			"rewrites its database) would leave fewer healthy voting members than a quorum.\n\n" +
			"Creating the resource measures the cluster and defragments nothing: the first plan that shows a " +
			"defragmentation is the next one. Destroying it changes nothing in etcd. A NOSPACE alarm also needs the " +
			"space freed first: compact old revisions (`etcdctl compact`, or etcd_cluster's `auto_compaction_*` " +
			"attributes) and delete what is not needed.",
		Attributes: attrs,
	}
}

func (r *maintenanceResource) ConfigValidators(context.Context) []resource.ConfigValidator {
	return []resource.ConfigValidator{resourcevalidator.AtLeastOneOf(
		path.MatchRoot("defragment_when_free_over"), path.MatchRoot("defragment_when_free_bytes_over"))}
}

func (r *maintenanceResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

// maintenancePolicy converts the thresholds; the validators have checked
// them, so an error here names the attribute all the same.
func maintenancePolicy(freeOver, freeBytesOver types.String, disarm types.Bool, at path.Path) (maintenance.Policy, diag.Diagnostics) {
	var diags diag.Diagnostics
	p := maintenance.Policy{DisarmNoSpace: disarm.IsNull() || disarm.IsUnknown() || disarm.ValueBool()}
	var err error
	if !freeOver.IsNull() && !freeOver.IsUnknown() {
		if p.FreeRatio, err = maintenance.ParsePercent(freeOver.ValueString()); err != nil {
			diags.AddAttributeError(at.AtName("defragment_when_free_over"), "Invalid threshold", err.Error())
		}
	}
	if !freeBytesOver.IsNull() && !freeBytesOver.IsUnknown() {
		if p.FreeBytes, err = maintenance.ParseBytes(freeBytesOver.ValueString()); err != nil {
			diags.AddAttributeError(at.AtName("defragment_when_free_bytes_over"), "Invalid threshold", err.Error())
		}
	}
	return p, diags
}

func (m maintenanceModel) policy() (maintenance.Policy, diag.Diagnostics) {
	return maintenancePolicy(m.FreeOver, m.FreeBytesOver, m.DisarmNoSpace, path.Empty())
}

// measure reads the cluster and records in m and private what Plan says is
// due; skipped members become warnings.
func (r *maintenanceResource) measure(ctx context.Context, cl *client.Client, m *maintenanceModel, private privateSetter) (diags diag.Diagnostics) {
	p, d := m.policy()
	diags.Append(d...)
	if diags.HasError() {
		return diags
	}
	s, err := maintenance.Measure(ctx, cl)
	if err != nil {
		diags.AddError("Cannot measure the etcd cluster", err.Error())
		return diags
	}
	todo, skipped := p.Plan(s)
	for _, sk := range skipped {
		diags.AddWarning("etcd member not defragmented", sk.String()+".")
	}
	entries := make([]attr.Value, len(todo))
	ids := make([]string, len(todo))
	for i, d := range todo {
		entries[i] = types.StringValue(d.String())
		ids[i] = client.FormatMemberID(d.Member.ID)
	}
	m.ID = types.StringValue(client.FormatMemberID(s.ClusterID))
	m.Pending = types.ListValueMust(types.StringType, entries)
	raw, _ := json.Marshal(ids)
	diags.Append(private.SetKey(ctx, privatePendingDefrag, raw)...)
	return diags
}

func (r *maintenanceResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan maintenanceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(r.measure(ctx, cl, &plan, resp.Private)...)
	if resp.Diagnostics.HasError() {
		return
	}
	// Nothing is defragmented on create: the plan showed nothing to do.
	plan.Pending = types.ListValueMust(types.StringType, nil)
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privatePendingDefrag, []byte("[]"))...)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *maintenanceResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state maintenanceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if r.provider.keepStateUnconfigured(&resp.Diagnostics) {
		return
	}
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(r.measure(ctx, cl, &state, resp.Private)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

// ModifyPlan empties pending_defragmentation: the entries the plan removes
// are the defragmentations the apply does.
func (r *maintenanceResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("pending_defragmentation"), types.ListValueMust(types.StringType, nil))...)
}

func (r *maintenanceResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state maintenanceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	p, diags := plan.policy()
	resp.Diagnostics.Append(diags...)
	raw, diags := req.Private.GetKey(ctx, privatePendingDefrag)
	resp.Diagnostics.Append(diags...)
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	only := map[uint64]bool{}
	var ids []string
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &ids); err != nil {
			resp.Diagnostics.AddError("Corrupt private state", fmt.Sprintf("The members due for defragmentation cannot be read (%v); run a refresh.", err))
			return
		}
	}
	for _, s := range ids {
		var id uint64
		if _, err := fmt.Sscanf(s, "%x", &id); err == nil {
			only[id] = true
		}
	}
	res, err := maintenance.Run(ctx, cl, p, only)
	for _, d := range res.Done {
		tflog.Info(ctx, d.String())
	}
	for _, sk := range res.Skipped {
		resp.Diagnostics.AddWarning("etcd member not defragmented", sk.String()+".")
	}
	if err != nil {
		resp.Diagnostics.AddError("Defragmentation failed", fmt.Sprintf("%v. Defragmented before the failure: %d member(s); "+
			"the next plan shows what is still due.", err, len(res.Done)))
		// The state keeps what is still due.
		resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
		return
	}
	plan.ID = state.ID
	plan.Pending = types.ListValueMust(types.StringType, nil)
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privatePendingDefrag, []byte("[]"))...)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

// Delete forgets the resource; nothing in etcd changes.
func (r *maintenanceResource) Delete(context.Context, resource.DeleteRequest, *resource.DeleteResponse) {
}

// percentValidator accepts a percentage above 0% and below 100%.
type percentValidator struct{}

func (percentValidator) Description(context.Context) string {
	return `a percentage above 0% and below 100%, e.g. "30%"`
}
func (v percentValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (percentValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := maintenance.ParsePercent(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid threshold", fmt.Sprintf("%s: %v.", req.Path, err))
	}
}

// byteSizeValidator accepts a byte size such as "512MiB".
type byteSizeValidator struct{}

func (byteSizeValidator) Description(context.Context) string {
	return `a byte size such as "512MiB"`
}
func (v byteSizeValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (byteSizeValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := maintenance.ParseBytes(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid threshold", fmt.Sprintf("%s: %v.", req.Path, err))
	}
}
