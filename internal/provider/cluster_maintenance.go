package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/maintenance"
)

// etcd_cluster's maintenance: the thresholds of etcd_maintenance on the
// cluster itself. A refresh measures every member (db_size against
// db_size_in_use) and lists what is due in maintenance.pending_defragmentation;
// the plan empties the list (an in-place update that names each member); the
// apply defragments those members one at a time, followers first and the
// leader last, and disarms NOSPACE. The work is internal/maintenance's, as
// for etcd_maintenance.

var _ validator.Object = maintenanceThresholdValidator{}

// privateClusterMaintenance is the private state key holding the IDs of the
// members the last refresh found due: the only members an apply may
// defragment.
const privateClusterMaintenance = "maintenance_pending"

type clusterMaintenanceModel struct {
	FreeOver      types.String `tfsdk:"defragment_when_free_over"`
	FreeBytesOver types.String `tfsdk:"defragment_when_free_bytes_over"`
	DisarmNoSpace types.Bool   `tfsdk:"disarm_nospace"`
	Pending       types.List   `tfsdk:"pending_defragmentation"`
}

var clusterMaintenanceAttrTypes = map[string]attr.Type{
	"defragment_when_free_over":       types.StringType,
	"defragment_when_free_bytes_over": types.StringType,
	"disarm_nospace":                  types.BoolType,
	"pending_defragmentation":         types.ListType{ElemType: types.StringType},
}

// addMaintenanceAttribute adds maintenance to etcd_cluster's schema.
func addMaintenanceAttribute(attrs map[string]schema.Attribute) {
	nested := maintenanceAttributes()
	nested["pending_defragmentation"] = schema.ListAttribute{Computed: true, ElementType: types.StringType,
		MarkdownDescription: "The defragmentations the last refresh found due, in the order an apply does them, e.g. " +
			"`[\"defragment etcd-2 (ID 8e9e05c52164694d): 41% free: 3.2 MiB of 7.8 MiB\"]`. A plan empties the list, " +
			"so that it shows as an in-place update (with a warning that names each member): the entries it removes " +
			"are what the apply does. Empty after an apply."}
	attrs["maintenance"] = schema.SingleNestedAttribute{Optional: true, Attributes: nested,
		Validators: []validator.Object{maintenanceThresholdValidator{}},
		MarkdownDescription: "Keep the members' databases compact, as `etcd_maintenance` does for any cluster: each " +
			"refresh measures every member's database (`db_size` against `db_size_in_use`) and lists the members over a " +
			"threshold in `pending_defragmentation`; the plan shows them as an in-place update, and the apply " +
			"defragments them one at a time, followers first and the leader last, never two at once, before the rest of " +
			"the apply (which waits for a healthy cluster, and a member with a `NOSPACE` alarm is not). After a defragmentation that freed space it disarms the member's `NOSPACE` alarm " +
			"(`disarm_nospace`). A member that is down is skipped with a warning, and so is every member whose " +
			"defragmentation would leave fewer healthy voting members than a quorum. Set at least one threshold, e.g. " +
			"`{ defragment_when_free_over = \"30%\", defragment_when_free_bytes_over = \"512MiB\" }`. Creating the " +
			"cluster defragments nothing. Free space first (compaction: `auto_compaction_*`; deleting what is not " +
			"needed): a defragmentation only gives back what a compaction freed."}
}

// maintenanceThresholdValidator requires at least one threshold in
// maintenance: without one it would never do anything.
type maintenanceThresholdValidator struct{}

func (maintenanceThresholdValidator) Description(context.Context) string {
	return "at least one of defragment_when_free_over and defragment_when_free_bytes_over"
}

func (v maintenanceThresholdValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (maintenanceThresholdValidator) ValidateObject(ctx context.Context, req validator.ObjectRequest, resp *validator.ObjectResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	attrs := req.ConfigValue.Attributes()
	for _, name := range []string{"defragment_when_free_over", "defragment_when_free_bytes_over"} {
		if v, ok := attrs[name]; ok && !v.IsNull() {
			return
		}
	}
	resp.Diagnostics.AddAttributeError(req.Path, "No maintenance threshold",
		fmt.Sprintf("%s sets no threshold, so it would never defragment anything: set defragment_when_free_over (e.g. \"30%%\"), "+
			"defragment_when_free_bytes_over (e.g. \"512MiB\") or both, or remove %s.", req.Path, req.Path))
}

// maintenanceSettings returns m's maintenance block; ok is false when it
// is not set or not known.
func (m clusterModel) maintenanceSettings(ctx context.Context, diags *diag.Diagnostics) (clusterMaintenanceModel, bool) {
	var mm clusterMaintenanceModel
	if m.Maintenance.IsNull() || m.Maintenance.IsUnknown() {
		return mm, false
	}
	d := m.Maintenance.As(ctx, &mm, objectAsOptions)
	diags.Append(d...)
	return mm, !d.HasError()
}

func (m *clusterModel) setMaintenance(ctx context.Context, mm clusterMaintenanceModel, diags *diag.Diagnostics) {
	obj, d := types.ObjectValueFrom(ctx, clusterMaintenanceAttrTypes, mm)
	diags.Append(d...)
	if !d.HasError() {
		m.Maintenance = obj
	}
}

// maintenanceClient opens a client on the cluster through the client URLs
// and client certificate of m (the state, or the plan once applied).
func (m clusterModel) maintenanceClient(ctx context.Context) (*client.Client, error) {
	var endpoints []string
	if m.Endpoints.IsNull() || m.Endpoints.IsUnknown() || m.Endpoints.ElementsAs(ctx, &endpoints, false).HasError() || len(endpoints) == 0 {
		return nil, fmt.Errorf("the cluster's client URLs are not known")
	}
	cfg := client.Config{
		Endpoints: endpoints,
		// Only the cluster's own settings: no ETCDCTL_* variables of the shell.
		LookupEnv: func(string) (string, bool) { return "", false },
	}
	if !m.ClientCertPEM.IsNull() && !m.ClientCertPEM.IsUnknown() && m.ClientCertPEM.ValueString() != "" {
		cfg.CACert = m.CACertPEM.ValueString()
		cfg.Cert = m.ClientCertPEM.ValueString()
		cfg.Key = m.ClientKeyPEM.ValueString()
	}
	settings, err := cfg.Resolve()
	if err != nil {
		return nil, err
	}
	return client.Open(ctx, settings)
}

// readMaintenance measures the members when maintenance is set, records
// what is due in maintenance.pending_defragmentation and in private, and
// warns about the members it must leave alone.
func (m *clusterModel) readMaintenance(ctx context.Context, private privateSetter, diags *diag.Diagnostics) {
	mm, ok := m.maintenanceSettings(ctx, diags)
	if !ok {
		return
	}
	p, d := maintenancePolicy(mm.FreeOver, mm.FreeBytesOver, mm.DisarmNoSpace, path.Root("maintenance"))
	diags.Append(d...)
	if d.HasError() {
		return
	}
	todo, skipped, err := m.surveyMaintenance(ctx, p)
	if err != nil {
		diags.AddWarning("etcd cluster not measured for maintenance",
			fmt.Sprintf("Cluster %q: %v. maintenance.pending_defragmentation keeps what the last refresh found.", m.Name.ValueString(), err))
		return
	}
	for _, sk := range skipped {
		diags.AddWarning("etcd member not defragmented", fmt.Sprintf("Cluster %q: %s.", m.Name.ValueString(), sk))
	}
	entries := make([]attr.Value, len(todo))
	ids := make([]string, len(todo))
	for i, t := range todo {
		entries[i] = types.StringValue(t.String())
		ids[i] = client.FormatMemberID(t.Member.ID)
	}
	mm.Pending = types.ListValueMust(types.StringType, entries)
	m.setMaintenance(ctx, mm, diags)
	raw, _ := json.Marshal(ids)
	diags.Append(private.SetKey(ctx, privateClusterMaintenance, raw)...)
}

// surveyMaintenance measures the cluster and decides under p.
func (m clusterModel) surveyMaintenance(ctx context.Context, p maintenance.Policy) ([]maintenance.Defrag, []maintenance.Skip, error) {
	cl, err := m.maintenanceClient(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer cl.Close()
	s, err := maintenance.Measure(ctx, cl)
	if err != nil {
		return nil, nil, err
	}
	todo, skipped := p.Plan(s)
	return todo, skipped, nil
}

// planMaintenance empties maintenance.pending_defragmentation in the plan
// (the entries it removes are what the apply does) and warns with each of
// them. It reports whether it changed plan.
func planMaintenance(ctx context.Context, plan *clusterModel, state *clusterModel, diags *diag.Diagnostics) bool {
	mm, ok := plan.maintenanceSettings(ctx, diags)
	if !ok {
		return false
	}
	if state != nil {
		if sm, ok := state.maintenanceSettings(ctx, diags); ok && !sm.Pending.IsNull() && !sm.Pending.IsUnknown() {
			var due []string
			diags.Append(sm.Pending.ElementsAs(ctx, &due, false)...)
			if len(due) > 0 {
				diags.AddWarning("etcd cluster maintenance due",
					fmt.Sprintf("Cluster %q: the apply will, one member at a time:\n- %s", plan.Name.ValueString(), strings.Join(due, "\n- ")))
			}
		}
	}
	empty := types.ListValueMust(types.StringType, nil)
	if mm.Pending.Equal(empty) {
		return false
	}
	mm.Pending = empty
	plan.setMaintenance(ctx, mm, diags)
	return true
}

// applyMaintenance defragments the members the last refresh found due
// (private), with m's (the plan's) thresholds, reaching the cluster as
// state records it, and empties the private list. It runs before the rest
// of the apply: etcd_cluster waits for a healthy cluster, and a member with
// a NOSPACE alarm is not.
func (m *clusterModel) applyMaintenance(ctx context.Context, state clusterModel, private privateGetter, next privateSetter, diags *diag.Diagnostics) {
	if diags.HasError() {
		return // the apply stops before anything changes
	}
	mm, ok := m.maintenanceSettings(ctx, diags)
	if !ok {
		return
	}
	raw, d := private.GetKey(ctx, privateClusterMaintenance)
	diags.Append(d...)
	var ids []string
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &ids); err != nil {
			diags.AddError("Corrupt private state",
				fmt.Sprintf("The members due for defragmentation cannot be read (%v); run a refresh (terraform apply -refresh-only).", err))
			return
		}
	}
	only := map[uint64]bool{}
	for _, s := range ids {
		if id, err := strconv.ParseUint(s, 16, 64); err == nil {
			only[id] = true
		}
	}
	mm.Pending = types.ListValueMust(types.StringType, nil)
	m.setMaintenance(ctx, mm, diags)
	if len(only) == 0 {
		return
	}
	p, d := maintenancePolicy(mm.FreeOver, mm.FreeBytesOver, mm.DisarmNoSpace, path.Root("maintenance"))
	diags.Append(d...)
	if d.HasError() {
		return
	}
	cl, err := state.maintenanceClient(ctx)
	if err != nil {
		diags.AddError("Cannot reach the etcd cluster for maintenance", fmt.Sprintf("Cluster %q: %v.", m.Name.ValueString(), err))
		return
	}
	defer cl.Close()
	res, err := maintenance.Run(ctx, cl, p, only)
	for _, d := range res.Done {
		tflog.Info(ctx, "etcd_cluster: "+d.String())
	}
	for _, sk := range res.Skipped {
		diags.AddWarning("etcd member not defragmented", fmt.Sprintf("Cluster %q: %s.", m.Name.ValueString(), sk))
	}
	if err != nil {
		diags.AddError("Defragmentation failed", fmt.Sprintf("Cluster %q: %v. Defragmented before the failure: %d member(s); "+
			"the next plan shows what is still due.", m.Name.ValueString(), err, len(res.Done)))
		return
	}
	diags.Append(next.SetKey(ctx, privateClusterMaintenance, []byte("[]"))...)
}
