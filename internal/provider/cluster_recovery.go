package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/cluster"
)

// etcd_cluster's recovery attribute: rebuild a cluster that lost its
// quorum from one surviving member or from a snapshot file.

type clusterRecoveryModel struct {
	FromNode types.String `tfsdk:"from_node"`
	Snapshot types.String `tfsdk:"snapshot"`
	SHA256   types.String `tfsdk:"sha256"`
}

func clusterRecoveryAttribute() schema.SingleNestedAttribute {
	return schema.SingleNestedAttribute{Optional: true, Computed: true,
		MarkdownDescription: "Disaster recovery, when the cluster has lost its quorum for good: no member answers and fewer " +
			"than a majority of the nodes still hold member data (hosts replaced, data dirs lost), or none does. The provider never " +
			"does this on its own: without this block, plan and apply fail naming the lost members. Set exactly one source:\n\n" +
			"- `recovery = { from_node = \"<surviving node>\" }` rebuilds the cluster from that node's data, as etcd " +
			"documents it: the apply stops the other members, restarts the survivor once with `force-new-cluster` (it keeps its " +
			"data and becomes a one-member cluster) and then normally, and adds every other node back as a learner with " +
			"an empty data dir (an old one is moved aside), promoting it once it has caught up. Writes the lost members " +
			"acknowledged after the survivor's last log entry are lost.\n" +
			"- `recovery = { snapshot = \"<local path>\", sha256 = \"<hex>\" }` rebuilds it from a snapshot file on this machine " +
			"(an `etcd_snapshot`, a scheduled backup copied off the node, `etcdctl snapshot save`), also when every data dir is " +
			"lost. The file is checked first (sha256, then etcd's `snapshot status`); the apply then stops every member, moves every " +
			"data dir that holds anything aside (`<data_dir>.before-recovery-<time>`, never deleted) and restores each member from the " +
			"snapshot with etcd's restore, as `restore` does at create: the cluster gets a new cluster ID and serves the snapshot's " +
			"keys at their revisions; writes after the snapshot are gone. With `remote_binary` the restore runs through the " +
			"provider's own executable uploaded as a tool, for the stock server's version, as with `restore`.\n\n" +
			"While the cluster answers, the block does nothing. Remove it after the recovery: the next plan is empty.",
		Attributes: map[string]schema.Attribute{
			"from_node": schema.StringAttribute{Optional: true,
				MarkdownDescription: "Name of the node (in `nodes`) whose data the cluster is rebuilt from; its data dir must hold member data. " +
					"Conflicts with `snapshot`."},
			"snapshot": schema.StringAttribute{Optional: true,
				MarkdownDescription: "Path of a snapshot file on the machine running Terraform to rebuild the cluster from; requires `sha256`. " +
					"Conflicts with `from_node`."},
			"sha256": schema.StringAttribute{Optional: true,
				MarkdownDescription: "Expected SHA-256 of the whole `snapshot` file (hexadecimal), e.g. `etcd_snapshot.x.sha256` or `filesha256(path)`.",
				Validators:          []validator.String{stringvalidator.RegexMatches(sha256RE, "must be 64 hexadecimal digits")}},
		},
		PlanModifiers: []planmodifier.Object{keepStateWhenUnset{}},
	}
}

// recoverFromConfig is the recovery block of the configuration, the zero
// Recovery without the block. The plan is no guide: it keeps the state's
// block when the configuration has none.
func recoverFromConfig(ctx context.Context, config tfsdk.Config) (cluster.Recovery, diag.Diagnostics) {
	var obj types.Object
	diags := config.GetAttribute(ctx, path.Root("recovery"), &obj)
	return recoveryOf(ctx, obj, &diags), diags
}

func recoveryOf(ctx context.Context, obj types.Object, diags *diag.Diagnostics) cluster.Recovery {
	if obj.IsNull() || obj.IsUnknown() {
		return cluster.Recovery{}
	}
	var m clusterRecoveryModel
	diags.Append(obj.As(ctx, &m, objectAsOptions)...)
	r := cluster.Recovery{FromNode: m.FromNode.ValueString()}
	if !m.Snapshot.IsNull() && !m.Snapshot.IsUnknown() {
		r.Snapshot = &cluster.RestoreSource{Path: m.Snapshot.ValueString(), SHA256: m.SHA256.ValueString()}
	}
	return r
}

// validateRecovery checks the block: exactly one source, sha256 with a
// snapshot, a from_node among the configured nodes.
func validateRecovery(ctx context.Context, m clusterModel, diags *diag.Diagnostics) {
	if m.Recovery.IsNull() || m.Recovery.IsUnknown() {
		return
	}
	var r clusterRecoveryModel
	diags.Append(m.Recovery.As(ctx, &r, objectAsOptions)...)
	rp := path.Root("recovery")
	if r.FromNode.IsUnknown() || r.Snapshot.IsUnknown() || r.SHA256.IsUnknown() {
		return
	}
	switch {
	case !r.FromNode.IsNull() && !r.Snapshot.IsNull():
		diags.AddAttributeError(rp.AtName("snapshot"), "Conflicting recovery sources",
			"recovery.from_node and recovery.snapshot are mutually exclusive: rebuild the cluster either from a surviving member's "+
				"data (from_node) or from a snapshot file (snapshot and sha256). Remove one of them.")
		return
	case r.FromNode.IsNull() && r.Snapshot.IsNull():
		diags.AddAttributeError(rp, "Missing recovery source",
			"recovery needs a source: set recovery.from_node to the surviving node's name, or recovery.snapshot and recovery.sha256 "+
				"to a snapshot file and its sha256.")
		return
	case !r.Snapshot.IsNull() && r.SHA256.IsNull():
		diags.AddAttributeError(rp.AtName("sha256"), "Missing recovery sha256",
			"recovery.sha256 is required with recovery.snapshot: set it to the file's sha256 (e.g. filesha256(...) or etcd_snapshot's sha256), "+
				"so that the cluster is rebuilt from the snapshot you expect.")
		return
	case r.Snapshot.IsNull() && !r.SHA256.IsNull():
		diags.AddAttributeError(rp.AtName("sha256"), "recovery.sha256 without a snapshot",
			"recovery.sha256 is the checksum of recovery.snapshot: set snapshot too, or remove sha256 when recovering from_node.")
		return
	}
	if !r.Snapshot.IsNull() {
		return
	}
	if m.Nodes.IsUnknown() {
		return
	}
	nodes, _ := m.nodes(ctx)
	var names []string
	for _, n := range nodes {
		if n.Name.IsUnknown() {
			return
		}
		if n.Name.Equal(r.FromNode) {
			return
		}
		names = append(names, n.Name.ValueString())
	}
	diags.AddAttributeError(rp.AtName("from_node"), "Invalid recovery source",
		fmt.Sprintf("recovery.from_node %q is not one of the nodes (%s): name the node whose member survived.", r.FromNode.ValueString(), strings.Join(names, ", ")))
}

// planRecovery checks at plan time whether a running cluster lost its
// quorum for good. Without a recovery block that is an error naming the
// lost members and showing the block to add; with one, a warning saying
// what the apply will do, and the members (and, from a snapshot, the
// cluster ID) become unknown so that the apply runs even when nothing else
// changes. A snapshot that is new in the configuration is checked (sha256,
// etcd's snapshot status) whether or not the quorum is lost. It returns
// whether plan changed.
func planRecovery(ctx context.Context, plan *clusterModel, state clusterModel, config tfsdk.Config, diags *diag.Diagnostics) bool {
	if !plan.Name.Equal(state.Name) || !plan.TLS.Equal(state.TLS) || !plan.SSH.Equal(state.SSH) {
		return false // a replacement, or nothing known to check with
	}
	var obj types.Object
	d := config.GetAttribute(ctx, path.Root("recovery"), &obj)
	r := recoveryOf(ctx, obj, &d)
	diags.Append(d...)
	if d.HasError() {
		return false
	}
	check := r
	if r.Snapshot != nil && !obj.Equal(state.Recovery) {
		if err := cluster.CheckRecoverySnapshot(*r.Snapshot); err != nil {
			addSpecErrors(diags, err, "Invalid recovery snapshot")
			return false
		}
		check.Snapshot = nil // checked
	}
	material, err := state.readOnlyTLS()
	if err != nil {
		return false
	}
	s, d := plan.spec(ctx, material)
	if d.HasError() || len(s.Nodes) == 0 {
		return false
	}
	for _, n := range s.Nodes {
		if n.Name == "" || n.Host == "" {
			return false
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c := cluster.New(s)
	defer c.Close()
	loss, err := c.CheckQuorum(ctx, check, ranBefore(state))
	var fe *cluster.FieldError
	if errors.As(err, &fe) {
		addSpecErrors(diags, err, "Cannot recover the etcd cluster")
		return false
	}
	if loss == nil {
		return false
	}
	switch {
	case r.Snapshot != nil:
		diags.AddAttributeWarning(path.Root("recovery"), "The apply rebuilds the etcd cluster from a snapshot",
			fmt.Sprintf("%v.\n\nThe apply stops every member, moves every data dir that holds anything aside (<data_dir>.before-recovery-<time>), "+
				"and restores %s from %s with a new cluster ID. Writes after the snapshot are gone.",
				loss, strings.Join(others(s, ""), ", "), r.Snapshot.Path))
		plan.ClusterID = types.StringUnknown()
	case r.FromNode != "":
		diags.AddAttributeWarning(path.Root("recovery"), "The apply rebuilds the etcd cluster from one member",
			fmt.Sprintf("%v.\n\nThe apply stops the other members, restarts %s with force-new-cluster (a one-member cluster with its "+
				"data), then adds %s back as new members with empty data dirs. Writes that only the lost members had are gone.",
				loss, r.FromNode, strings.Join(others(s, r.FromNode), ", ")))
	default:
		addQuorumLost(diags, loss)
		return false
	}
	plan.Members = types.ListUnknown(types.ObjectType{AttrTypes: clusterMemberAttrTypes})
	return true
}

// ranBefore tells whether the cluster in the state has run: a create that
// failed after changing the nodes records an empty cluster_id (the resource
// is tainted, and replaced), a cluster that ran has its ID.
func ranBefore(state clusterModel) bool {
	return state.ClusterID.ValueString() != ""
}

func others(s cluster.Spec, name string) []string {
	var out []string
	for _, n := range s.Nodes {
		if n.Name != name {
			out = append(out, n.Name)
		}
	}
	return out
}

// addQuorumLost reports a lost quorum with the block that recovers it.
// It reports whether err was one.
func addQuorumLost(diags *diag.Diagnostics, err error) bool {
	var loss *cluster.QuorumLostError
	if !errors.As(err, &loss) {
		return false
	}
	if len(loss.Survivors) == 0 {
		diags.AddAttributeError(path.Root("recovery"), "The etcd cluster has lost every member",
			fmt.Sprintf("%v. Lost members: %s.\n\nThe provider never rebuilds a cluster on its own, and starting the nodes now would "+
				"bootstrap an empty cluster. To rebuild it from a snapshot (writes after the snapshot are gone), add to the etcd_cluster "+
				"resource:\n\n  recovery = {\n    snapshot = \"<path of the snapshot file>\"\n    sha256   = \"<its sha256>\"\n  }\n\n"+
				"and apply; remove the block afterwards.", loss, strings.Join(loss.Dead, ", ")))
		return true
	}
	diags.AddAttributeError(path.Root("recovery"), "The etcd cluster has lost its quorum",
		fmt.Sprintf("%v. Lost members: %s.\n\nThe provider never rebuilds a cluster on its own. To rebuild it from a surviving "+
			"member's data (writes only the lost members had are gone), add to the etcd_cluster resource:\n\n"+
			"  recovery = {\n    from_node = %q\n  }\n\nand apply; remove the block afterwards. Surviving members: %s. "+
			"To rebuild it from a snapshot instead, set recovery = { snapshot = ..., sha256 = ... }.",
			loss, strings.Join(loss.Dead, ", "), loss.Survivors[0], strings.Join(loss.Survivors, ", ")))
	return true
}
