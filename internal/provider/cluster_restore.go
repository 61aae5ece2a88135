package provider

import (
	"context"
	"fmt"
	"regexp"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/objectplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/cluster"
)

// etcd_cluster's restore attribute: create the cluster from a snapshot.

var sha256RE = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)

type clusterRestoreModel struct {
	Snapshot types.String `tfsdk:"snapshot"`
	SHA256   types.String `tfsdk:"sha256"`
}

func clusterRestoreAttribute() schema.SingleNestedAttribute {
	return schema.SingleNestedAttribute{Optional: true, Computed: true,
		MarkdownDescription: "Create the cluster from a snapshot file on this machine (from `etcd_snapshot`, `etcdctl snapshot save` " +
			"or `terraform-provider-etcd snapshot save`) instead of empty. Before anything changes, the file's sha256 is checked " +
			"against `sha256` and etcd's `snapshot status` must read it; every node's data dir must be missing or empty. The " +
			"create then uploads the snapshot to every node, runs etcd's restore there (the bundled binary's `snapshot restore`) " +
			"with the cluster's member names and peer URLs and a new cluster token, so the restored cluster gets a new cluster " +
			"ID, and starts the members. The cluster serves every key of the snapshot at the snapshot's revision.\n\n" +
			"The restore happens at create only. **Changing `restore` on an existing cluster replaces the cluster** (destroy, " +
			"then a new restore, which needs empty data dirs: set `wipe_data_on_destroy = true` or clear them). Removing the " +
			"block changes nothing.\n\n" +
			"With `remote_binary` the members run the stock etcd, and the provider's own executable goes to " +
			"`<install_dir>/bin/terraform-provider-etcd` as a tool only: it runs the restore for the version the stock binary " +
			"reports (`<remote_binary> --version`, passed as `--target-version`), and a snapshot of a newer etcd than that is " +
			"refused before anything changes. The provider's executable must be built for the nodes' OS and CPU (checked, " +
			"before anything changes, with an error naming `restore`).",
		Attributes: map[string]schema.Attribute{
			"snapshot": schema.StringAttribute{Required: true, MarkdownDescription: "Path of the snapshot file on the machine running Terraform."},
			"sha256": schema.StringAttribute{Required: true,
				MarkdownDescription: "Expected SHA-256 of the whole file (hexadecimal), e.g. `etcd_snapshot.x.sha256` or `filesha256(path)`.",
				Validators:          []validator.String{stringvalidator.RegexMatches(sha256RE, "must be 64 hexadecimal digits")}},
		},
		PlanModifiers: []planmodifier.Object{keepStateWhenUnset{},
			objectplanmodifier.RequiresReplaceIf(restoreChanged,
				"Changing restore replaces the cluster: it is restored from the new snapshot.",
				"Changing `restore` replaces the cluster: it is restored from the new snapshot.")},
	}
}

// restoreChanged: a restore block that is set and differs from the one the
// cluster was created with replaces it; removing the block does not (see
// keepStateWhenUnset).
func restoreChanged(_ context.Context, req planmodifier.ObjectRequest, resp *objectplanmodifier.RequiresReplaceIfFuncResponse) {
	resp.RequiresReplace = !req.ConfigValue.IsNull() && !req.ConfigValue.Equal(req.StateValue)
}

// keepStateWhenUnset plans an optional and computed object as its prior
// state value when the configuration leaves it out (null at create): for
// blocks that act once (restore at create, recovery after a quorum loss)
// and whose removal afterwards changes nothing, so the plan stays empty.
type keepStateWhenUnset struct{}

func (keepStateWhenUnset) Description(context.Context) string {
	return "Keeps the prior value when the configuration leaves the attribute out."
}

func (m keepStateWhenUnset) MarkdownDescription(ctx context.Context) string {
	return m.Description(ctx)
}

func (keepStateWhenUnset) PlanModifyObject(ctx context.Context, req planmodifier.ObjectRequest, resp *planmodifier.ObjectResponse) {
	if !req.ConfigValue.IsNull() {
		return
	}
	if req.State.Raw.IsNull() || req.StateValue.IsUnknown() {
		resp.PlanValue = types.ObjectNull(req.PlanValue.AttributeTypes(ctx))
		return
	}
	resp.PlanValue = req.StateValue
}

// restoreSource reads the restore attribute of a configuration or plan; nil
// when it is not set.
func restoreSource(ctx context.Context, obj types.Object) (*cluster.RestoreSource, diag.Diagnostics) {
	if obj.IsNull() || obj.IsUnknown() {
		return nil, nil
	}
	var m clusterRestoreModel
	diags := obj.As(ctx, &m, objectAsOptions)
	if m.Snapshot.IsUnknown() || m.SHA256.IsUnknown() {
		return nil, diags
	}
	return &cluster.RestoreSource{Path: m.Snapshot.ValueString(), SHA256: m.SHA256.ValueString()}, diags
}

// planRestore checks the restore of a cluster about to be created, and
// says plainly at plan time that a changed restore replaces a cluster.
func planRestore(ctx context.Context, plan clusterModel, state *clusterModel, config tfsdk.Config, diags *diag.Diagnostics) {
	var cfg types.Object
	diags.Append(config.GetAttribute(ctx, path.Root("restore"), &cfg)...)
	src, d := restoreSource(ctx, cfg)
	diags.Append(d...)
	if src == nil {
		return
	}
	if state != nil {
		if !cfg.Equal(state.Restore) {
			diags.AddAttributeWarning(path.Root("restore"), "Changing restore replaces the etcd cluster",
				fmt.Sprintf("restore differs from the snapshot cluster %q was created from. The apply destroys the cluster (its "+
					"members stop; the data dirs are deleted only with wipe_data_on_destroy = true) and creates it again from %s. "+
					"The restore refuses data dirs that hold data. To keep the running cluster, put restore back as it was or remove the block.",
					plan.Name.ValueString(), src.Path))
		} else {
			return
		}
	}
	if err := cluster.CheckSnapshot(*src); err != nil {
		addSpecErrors(diags, err, "Invalid restore snapshot")
	}
}
