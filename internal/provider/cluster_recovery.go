package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/cluster"
)

// etcd_cluster's recovery attribute: rebuild a cluster that lost its
// quorum from one surviving member.

type clusterRecoveryModel struct {
	FromNode types.String `tfsdk:"from_node"`
}

func clusterRecoveryAttribute() schema.SingleNestedAttribute {
	return schema.SingleNestedAttribute{Optional: true, Computed: true,
		MarkdownDescription: "Disaster recovery, when the cluster has lost its quorum for good: no member answers and fewer " +
			"than a majority of the nodes still hold member data (hosts replaced, data dirs lost). The provider never " +
			"does this on its own: without this block, plan and apply fail naming the lost members. With " +
			"`recovery = { from_node = \"<surviving node>\" }` the apply rebuilds the cluster from that node's data, as etcd " +
			"documents it: it stops the other members, restarts the survivor once with `force-new-cluster` (it keeps its " +
			"data and becomes a one-member cluster) and then normally, and adds every other node back as a learner with " +
			"an empty data dir (an old one is moved aside), promoting it once it has caught up. Writes the lost members " +
			"acknowledged after the survivor's last log entry are lost.\n\n" +
			"While the cluster answers, the block does nothing. Remove it after the recovery: the next plan is empty.",
		Attributes: map[string]schema.Attribute{
			"from_node": schema.StringAttribute{Required: true,
				MarkdownDescription: "Name of the node (in `nodes`) whose data the cluster is rebuilt from; its data dir must hold member data."},
		},
		PlanModifiers: []planmodifier.Object{keepStateWhenUnset{}},
	}
}

// recoverFromConfig is recovery.from_node of the configuration, "" without
// the block. The plan is no guide: it keeps the state's block when the
// configuration has none.
func recoverFromConfig(ctx context.Context, config tfsdk.Config) (string, diag.Diagnostics) {
	var obj types.Object
	diags := config.GetAttribute(ctx, path.Root("recovery"), &obj)
	if obj.IsNull() || obj.IsUnknown() {
		return "", diags
	}
	var m clusterRecoveryModel
	diags.Append(obj.As(ctx, &m, objectAsOptions)...)
	return m.FromNode.ValueString(), diags
}

// validateRecovery checks from_node against the configured nodes.
func validateRecovery(ctx context.Context, m clusterModel, diags *diag.Diagnostics) {
	if m.Recovery.IsNull() || m.Recovery.IsUnknown() || m.Nodes.IsUnknown() {
		return
	}
	var r clusterRecoveryModel
	diags.Append(m.Recovery.As(ctx, &r, objectAsOptions)...)
	if r.FromNode.IsUnknown() {
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
	diags.AddAttributeError(path.Root("recovery").AtName("from_node"), "Invalid recovery source",
		fmt.Sprintf("recovery.from_node %q is not one of the nodes (%s): name the node whose member survived.", r.FromNode.ValueString(), strings.Join(names, ", ")))
}

// planRecovery checks at plan time whether a running cluster lost its
// quorum for good. Without a recovery block that is an error naming the
// lost members and showing the block to add; with one, a warning saying
// what the apply will do, and the members become unknown so that the apply
// runs even when nothing else changes. It returns whether plan changed.
func planRecovery(ctx context.Context, plan *clusterModel, state clusterModel, config tfsdk.Config, diags *diag.Diagnostics) bool {
	if !plan.Name.Equal(state.Name) || !plan.TLS.Equal(state.TLS) || !plan.SSH.Equal(state.SSH) {
		return false // a replacement, or nothing known to check with
	}
	from, d := recoverFromConfig(ctx, config)
	diags.Append(d...)
	if d.HasError() {
		return false
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
	loss, err := c.CheckQuorum(ctx, from)
	var fe *cluster.FieldError
	if errors.As(err, &fe) {
		addSpecErrors(diags, err, "Cannot recover the etcd cluster")
		return false
	}
	if loss == nil {
		return false
	}
	if from == "" {
		addQuorumLost(diags, loss)
		return false
	}
	diags.AddAttributeWarning(path.Root("recovery"), "The apply rebuilds the etcd cluster from one member",
		fmt.Sprintf("%v.\n\nThe apply stops the other members, restarts %s with force-new-cluster (a one-member cluster with its "+
			"data), then adds %s back as new members with empty data dirs. Writes that only the lost members had are gone.",
			loss, from, strings.Join(others(s, from), ", ")))
	plan.Members = types.ListUnknown(types.ObjectType{AttrTypes: clusterMemberAttrTypes})
	return true
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
	from := "<surviving node>"
	if len(loss.Survivors) > 0 {
		from = loss.Survivors[0]
	}
	diags.AddAttributeError(path.Root("recovery"), "The etcd cluster has lost its quorum",
		fmt.Sprintf("%v. Lost members: %s.\n\nThe provider never rebuilds a cluster on its own. To rebuild it from a surviving "+
			"member's data (writes only the lost members had are gone), add to the etcd_cluster resource:\n\n"+
			"  recovery = {\n    from_node = %q\n  }\n\nand apply; remove the block afterwards. Surviving members: %s.",
			loss, strings.Join(loss.Dead, ", "), from, strings.Join(loss.Survivors, ", ")))
	return true
}
