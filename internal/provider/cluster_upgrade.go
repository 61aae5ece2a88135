package provider

// Version upgrades and downgrades of etcd_cluster: server_versions shows,
// per node, the etcd version its member runs (read from the member) and,
// in a plan, the version its binary will run after the apply; the plan
// refuses version changes etcd does not support (internal/cluster's
// CheckStep) and versions other than server_version pins. The apply rolls
// the members one at a time behind the upgrade gates of internal/cluster.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/cluster"
)

var serverVersionRE = regexp.MustCompile(`^\d+\.\d+(\.\d+)?$`)

// addUpgradeAttributes adds server_version and server_versions to
// etcd_cluster's schema.
func addUpgradeAttributes(attrs map[string]schema.Attribute) {
	attrs["server_version"] = schema.StringAttribute{Optional: true,
		MarkdownDescription: "Pins the etcd server version: `\"3.6\"` (any 3.6 release) or `\"3.6.17\"` (exactly). The plan fails, " +
			"naming this attribute, when the binary the members would run (the provider's bundled server, `binary_path` or " +
			"`remote_binary` as found on each node) is another version, so that upgrading the provider never upgrades etcd " +
			"by accident. Unset: no pin (the bundled server follows the provider). See the guide \"Upgrading, rotating " +
			"certificates and keeping etcd healthy\".",
		Validators: []validator.String{stringvalidator.RegexMatches(serverVersionRE, "use major.minor (\"3.6\") or major.minor.patch (\"3.6.17\")")}}
	attrs["server_versions"] = schema.MapAttribute{Computed: true, ElementType: types.StringType,
		MarkdownDescription: "The etcd server version of each node's member, by node name, as the member reports it. In a plan, " +
			"the version each node's binary runs after the apply: a change shows each member's version now and after. The " +
			"plan refuses what etcd does not support: skipping a minor version (3.4 → 3.6), upgrading 3.5 → 3.6 from below " +
			"3.5.32 or 3.6 → 3.7 from below 3.6.11 (etcd's upgrade guides), and a minor downgrade unless etcd's downgrade procedure (`etcdctl downgrade " +
			"enable`, etcd 3.6+) has been started. The apply upgrades one member at a time: before each, every member must " +
			"be healthy, the quorum must survive its restart and no learner may be pending; after each, it waits until the " +
			"member is healthy, caught up with the leader's raft index and reports the new version."}
}

// binaryAttr is the attribute that decides the binary: remote_binary,
// binary_path, or (the bundled server) binary_path too.
func (m clusterModel) binaryAttr() (path.Path, string) {
	switch {
	case !m.RemoteBinary.IsNull():
		return path.Root("remote_binary"), fmt.Sprintf("remote_binary %s", m.RemoteBinary.ValueString())
	case !m.BinaryPath.IsNull():
		return path.Root("binary_path"), fmt.Sprintf("binary_path %s", m.BinaryPath.ValueString())
	}
	return path.Root("binary_path"), "the provider's bundled etcd server (binary_path and remote_binary unset)"
}

// serverVersionsOf maps node names to the versions their members report
// (a member's name is its node's name); every named member's with all
// (an import, whose nodes come from the member list).
func serverVersionsOf(s cluster.Spec, st *cluster.Status, all bool) map[string]string {
	names := map[string]bool{}
	for _, n := range s.Nodes {
		names[n.Name] = true
	}
	out := map[string]string{}
	for _, m := range st.Members {
		if m.Name != "" && m.Version != "" && (all || names[m.Name]) {
			out[m.Name] = m.Version
		}
	}
	return out
}

func versionsMap(v map[string]string) types.Map {
	elems := map[string]attr.Value{}
	for k, x := range v {
		elems[k] = types.StringValue(x)
	}
	return types.MapValueMust(types.StringType, elems)
}

func (m clusterModel) serverVersions() map[string]string {
	out := map[string]string{}
	if m.ServerVersions.IsNull() || m.ServerVersions.IsUnknown() {
		return out
	}
	for k, v := range m.ServerVersions.Elements() {
		if s, ok := v.(types.String); ok && !s.IsNull() && !s.IsUnknown() {
			out[k] = s.ValueString()
		}
	}
	return out
}

// setServerVersions records the versions the members report; a node whose
// member did not answer keeps the version planned for it (after an apply)
// or recorded before (Read). all: see serverVersionsOf.
func (m *clusterModel) setServerVersions(s cluster.Spec, st *cluster.Status, all bool) {
	got := serverVersionsOf(s, st, all)
	prev := m.serverVersions()
	for _, n := range s.Nodes {
		if _, ok := got[n.Name]; !ok {
			if v, ok := prev[n.Name]; ok {
				got[n.Name] = v
			}
		}
	}
	m.ServerVersions = versionsMap(got)
}

// pinMatches tells whether version v satisfies server_version pin.
func pinMatches(pin, v string) bool {
	return v == pin || strings.HasPrefix(v, pin+".")
}

// checkPin adds an error on server_version for every node whose binary runs
// another version than the pin.
func checkPin(m clusterModel, targets map[string]string, diags *diag.Diagnostics) {
	if m.ServerVersion.IsNull() || m.ServerVersion.IsUnknown() {
		return
	}
	pin := m.ServerVersion.ValueString()
	byVersion := map[string][]string{}
	for n, v := range targets {
		if !pinMatches(pin, v) {
			byVersion[v] = append(byVersion[v], n)
		}
	}
	_, what := m.binaryAttr()
	for _, v := range sortedKeys(byVersion) {
		nodes := byVersion[v]
		sort.Strings(nodes)
		diags.AddAttributeError(path.Root("server_version"), "etcd server version does not match server_version",
			fmt.Sprintf("server_version pins etcd %s, but %s runs etcd %s on node(s) %s. To keep etcd %s, set remote_binary to an etcd %[1]s "+
				"binary on the nodes or binary_path to a provider build that bundles it; to upgrade, change server_version "+
				"(one minor version at a time).", pin, what, v, strings.Join(nodes, ", "), pin))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// planServerVersions sets the planned server_versions to the versions the
// nodes' binaries run, and adds the refusals: the pin, and version changes
// etcd does not support. state is nil on create. It reports whether the
// plan changed.
func planServerVersions(ctx context.Context, plan *clusterModel, state *clusterModel, diags *diag.Diagnostics) bool {
	if plan.BinaryPath.IsUnknown() || plan.RemoteBinary.IsUnknown() || plan.Nodes.IsUnknown() || plan.ServerVersion.IsUnknown() {
		return false
	}
	if state == nil && !plan.RemoteBinary.IsNull() && plan.ServerVersion.IsNull() {
		return false // nothing to check: known after the create
	}
	if v, err := plan.SSH.ToTerraformValue(ctx); !plan.RemoteBinary.IsNull() && (err != nil || !v.IsFullyKnown()) {
		return false
	}
	s, d := plan.spec(ctx, nil)
	if d.HasError() || len(s.Nodes) == 0 {
		return false
	}
	for _, n := range s.Nodes {
		if n.Name == "" || n.Host == "" {
			return false
		}
	}
	attrPath, what := plan.binaryAttr()
	c := cluster.New(s)
	defer c.Close()
	vctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	targets, err := c.BinaryVersions(vctx)
	if err != nil {
		diags.AddAttributeWarning(attrPath, "etcd server version not known at plan time",
			fmt.Sprintf("The etcd version of %s could not be determined (%v). The apply checks it before changing anything.", what, err))
		return false
	}
	checkPin(*plan, targets, diags)
	if state != nil {
		checkVersionChange(ctx, *state, targets, attrPath, what, diags)
	}
	plan.ServerVersions = versionsMap(targets)
	return true
}

// checkVersionChange adds an error on attrPath for each version change
// from the state's server_versions to targets that etcd does not support.
// Only for a minor downgrade does it ask the cluster whether etcd's
// downgrade procedure has been started.
func checkVersionChange(ctx context.Context, state clusterModel, targets map[string]string, attrPath path.Path, what string, diags *diag.Diagnostics) {
	cur := state.serverVersions()
	if len(cur) == 0 {
		return
	}
	var current []string
	for _, n := range sortedKeys(cur) {
		current = append(current, cur[n])
	}
	check := func(downgrade string) map[string][]string {
		bad := map[string][]string{}
		for _, n := range sortedKeys(targets) {
			if err := cluster.CheckTarget(current, targets[n], downgrade); err != nil {
				for _, e := range unjoinErr(err) {
					bad[e.Error()] = append(bad[e.Error()], n)
				}
			}
		}
		return bad
	}
	bad := check("")
	downgradeOnly := len(bad) > 0
	for _, n := range sortedKeys(targets) {
		err := cluster.CheckTarget(current, targets[n], "")
		for _, e := range unjoinErr(err) {
			if e != nil && !errors.Is(e, cluster.ErrDowngrade) {
				downgradeOnly = false
			}
		}
	}
	if downgradeOnly {
		if dt := downgradeTarget(ctx, state); dt != "" {
			bad = check(dt)
		}
	}
	for _, msg := range sortedKeys(bad) {
		diags.AddAttributeError(attrPath, "Unsupported etcd version change",
			fmt.Sprintf("%s would move node(s) %s from the running version: %s.", what, strings.Join(bad[msg], ", "), msg))
	}
}

// downgradeTarget asks the cluster of the state for an enabled downgrade.
func downgradeTarget(ctx context.Context, state clusterModel) string {
	material, err := state.readOnlyTLS()
	if err != nil {
		return ""
	}
	s, d := state.spec(ctx, material)
	if d.HasError() {
		return ""
	}
	c := cluster.New(s)
	defer c.Close()
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := c.Status(sctx)
	if err != nil {
		return ""
	}
	return st.DowngradeTarget
}

// applyVersions returns the versions the nodes' binaries run for
// ApplyOptions.Versions, after checking the pin: nil (no upgrade gates)
// when a local binary_path cannot run here.
func applyVersions(ctx context.Context, m clusterModel, c *cluster.Cluster, diags *diag.Diagnostics) map[string]string {
	attrPath, what := m.binaryAttr()
	v, err := c.BinaryVersions(ctx)
	if err != nil {
		if m.RemoteBinary.IsNull() && m.ServerVersion.IsNull() {
			diags.AddAttributeWarning(attrPath, "etcd server version not known",
				fmt.Sprintf("The etcd version of %s could not be determined (%v); members are restarted without the upgrade checks.", what, err))
			return nil
		}
		diags.AddAttributeError(attrPath, "Cannot determine the etcd server version", fmt.Sprintf("%s: %v.", what, err))
		return nil
	}
	checkPin(m, v, diags)
	return v
}
