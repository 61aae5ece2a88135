package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/cluster"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/memberhost"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/pki"
)

var (
	_ resource.Resource                   = (*clusterResource)(nil)
	_ resource.ResourceWithImportState    = (*clusterResource)(nil)
	_ resource.ResourceWithValidateConfig = (*clusterResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*clusterResource)(nil)
)

// clusterResource is etcd_cluster: an etcd cluster on machines reached over
// SSH. The work is internal/cluster's; this file maps the schema to it.
type clusterResource struct{}

func newClusterResource() resource.Resource { return &clusterResource{} }

func (r *clusterResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_cluster"
	resp.ResourceBehavior.MutableIdentity = true // the endpoints follow the nodes (cluster_identity.go)
}

func (r *clusterResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "An etcd cluster on machines reached over SSH: one member per node, each running from etcd's own " +
			"config file as a systemd unit or a supervised process.\n\n" +
			"By default each node runs the provider's own executable in `server` mode (the bundled etcd server), uploaded " +
			"over SSH, so the nodes need nothing but `sh` and coreutils. `binary_path` uploads another provider build " +
			"(for a node of another OS or architecture) and `remote_binary` runs an etcd binary already on the node, " +
			"e.g. a stock `/usr/bin/etcd`.\n\n" +
			"Create uploads to all nodes in parallel, starts every member and waits until each is healthy and a leader is " +
			"elected. Applying again converges without restarting anything that did not change. Adding a node joins it as " +
			"a learner and promotes it once it has caught up; removing one removes its member (moving leadership away " +
			"first), then stops its service. A change of `settings` or of the binary restarts the members one at a time, " +
			"checking before each step that the others keep a quorum, and stops at the first failure.\n\n" +
			"Nothing on any node is touched until the configuration is valid and every node has been reached. A member " +
			"removed outside Terraform shows up as a diff (the next apply adds it back, moving its stale data dir aside); " +
			"a member that is down is reported as a warning. The provider never removes a member on its own.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{Computed: true, MarkdownDescription: "The cluster name.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"name": schema.StringAttribute{Required: true,
				MarkdownDescription: "Name of the cluster: its `initial-cluster-token`, and the service name's suffix (`etcd-<name>`). Changing it replaces the cluster.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.RequiresReplace()},
				Validators:          []validator.String{stringvalidator.RegexMatches(cluster.NameRE, "use letters, digits, '.', '_' and '-', starting with a letter or digit")}},
			"ssh": schema.SingleNestedAttribute{Required: true, Attributes: sshAttributes("the nodes"),
				MarkdownDescription: "How to reach the nodes over SSH. Errors name the node and the cause: connection refused, " +
					"authentication failed, host key mismatch or timeout. The user needs root rights (or write access to the " +
					"directories and, with systemd, to the units)."},
			"nodes": schema.ListNestedAttribute{Required: true,
				MarkdownDescription: "The nodes, one member each. Nodes are identified by `name`: adding or removing an entry adds or " +
					"removes a member; the order does not matter to the cluster.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"name": schema.StringAttribute{Required: true, MarkdownDescription: "Member name, unique in the cluster."},
					"host": schema.StringAttribute{Required: true,
						MarkdownDescription: "SSH address of the node, optionally with a port (`10.0.0.1:2222`) that overrides `ssh.port`. " +
							"Also the address the member listens on and advertises, unless `peer_address` or `client_address` is set."},
					"peer_address": schema.StringAttribute{Optional: true,
						MarkdownDescription: "IP address for peer traffic (e.g. a private network), when it differs from `host`."},
					"client_address": schema.StringAttribute{Optional: true,
						MarkdownDescription: "IP address for client traffic, when it differs from `host`."},
					"install_dir": schema.StringAttribute{Optional: true, MarkdownDescription: "Overrides `install_dir` for this node."},
					"data_dir":    schema.StringAttribute{Optional: true, MarkdownDescription: "Overrides `data_dir` for this node."},
				}},
				Validators: []validator.List{nodesValidator{}},
			},
			"client_port": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(cluster.DefaultClientPort),
				MarkdownDescription: "Client port of every member. Defaults to 2379. Changing it replaces the cluster.",
				PlanModifiers:       []planmodifier.Int64{int64planmodifier.RequiresReplace()}},
			"peer_port": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(cluster.DefaultPeerPort),
				MarkdownDescription: "Peer port of every member. Defaults to 2380. Changing it replaces the cluster.",
				PlanModifiers:       []planmodifier.Int64{int64planmodifier.RequiresReplace()}},
			"settings": schema.MapAttribute{Optional: true, ElementType: types.StringType, Validators: []validator.Map{settingsValidator{}, compactionSettingsValidator{}},
				MarkdownDescription: "Extra keys of etcd's config file, e.g. `{ \"snapshot-count\" = \"10000\", \"quota-backend-bytes\" = \"8589934592\", " +
					"\"max-request-bytes\" = \"2097152\" }`; the compaction keys are `auto_compaction_mode` and `auto_compaction_retention`. Values are strings; durations such as `\"5s\"` are converted for etcd. " +
					"Unknown keys (with a suggestion) and keys the resource manages (name, URLs, initial cluster, TLS files) are " +
					"rejected at plan time. A change restarts the members one at a time."},
			"tls": schema.SingleNestedAttribute{Optional: true,
				MarkdownDescription: "Secure client and peer traffic with TLS and client-certificate authentication. Either " +
					"`{ auto = true }`, which generates a CA (its key is kept in the resource's private state), or your own CA as " +
					"`{ ca_cert_pem = ..., ca_key_pem = ... }` (or `ca_key_pem_wo`, which keeps the key out of the state). Either way the provider issues each member a server and a peer " +
					"certificate (SANs: the node's addresses and loopback) and one client certificate (common name `root`), " +
					"exported as `client_cert_pem` and `client_key_pem`, and renews them before they expire (`validity`, `renew_before`). " +
					"Adding or removing `tls` replaces the cluster. A new CA (a changed `ca_cert_pem`, a new `auto_ca_version`, or a switch " +
					"between `auto` and your own CA) is rolled out in place in three applies, each restarting the members one at a time: " +
					"trust both CAs, certificates from the new CA, drop the old CA (`tls_ca_rotation_phase`; the plan names the next phase). " +
					"The other settings change in place.",
				Attributes:    clusterTLSAttributes(),
				PlanModifiers: []planmodifier.Object{tlsRequiresReplace{}},
				Validators:    []validator.Object{clusterTLSValidator{}},
			},
			"binary_path": schema.StringAttribute{Optional: true,
				MarkdownDescription: "A local terraform-provider-etcd binary to upload and run in `server` mode, instead of the " +
					"running provider's own executable (the default); for nodes of another OS or CPU architecture. With `remote_binary` " +
					"it is never the server: it is the tool that `restore`, `recovery.snapshot` and `backup` upload and run on the nodes " +
					"(the provider's own executable by default)."},
			"remote_binary": schema.StringAttribute{Optional: true,
				MarkdownDescription: "Absolute path of an etcd binary already on every node, e.g. `/usr/bin/etcd` from a distribution " +
					"package (etcd 3.4 or later); it runs as `<remote_binary> --config-file <install_dir>/etc/etcd.yaml`. Nothing is uploaded " +
					"for the server. `restore`, `recovery.snapshot` and `backup` need etcd's tools on the nodes: they upload the provider's " +
					"own executable (or `binary_path`) to `<install_dir>/bin/terraform-provider-etcd` as a tool only, which restores for " +
					"the version `<remote_binary> --version` reports and takes the scheduled backups; destroy removes it."},
			"service_manager": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString("auto"),
				MarkdownDescription: "`systemd` installs a unit `etcd-<name>.service` (`Type=notify`: the member reports ready once it " +
					"serves); `process` runs a supervised background process with a pid file and a log under `<install_dir>/run` " +
					"(for containers and machines without an init system); `auto` (default) picks systemd where it runs as PID 1.",
				Validators: []validator.String{stringvalidator.OneOf("auto", "systemd", "process")}},
			"install_dir": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString(cluster.DefaultInstallDir),
				MarkdownDescription: "Where the binary, config file, certificates and run files go on each node: `bin/`, `etc/etcd.yaml`, " +
					"`pki/`, `run/`. Defaults to `/opt/etcd`. Removed on destroy."},
			"data_dir": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString(cluster.DefaultDataDir),
				MarkdownDescription: "etcd's data dir on each node. Defaults to `/var/lib/etcd`. Kept on destroy unless `wipe_data_on_destroy`."},
			"wipe_data_on_destroy": schema.BoolAttribute{Optional: true, Computed: true, Default: booldefault.StaticBool(false),
				MarkdownDescription: "Delete the data dirs on destroy, and the data dir of a node removed from `nodes`. Defaults to `false`: " +
					"the data stays, and re-creating the same cluster on the same nodes resumes it."},
			"restore":  clusterRestoreAttribute(),
			"recovery": clusterRecoveryAttribute(),
			"backup":   clusterBackupAttribute(),
			"backups":  clusterBackupsAttribute(),
			"timeouts": clusterTimeouts.attribute("Create waits until every member is healthy and a leader is elected; " +
				"update includes adding members one at a time and rolling restarts."),
			"endpoints": schema.ListAttribute{Computed: true, ElementType: types.StringType,
				MarkdownDescription: "Client URLs of the members, in node order: the `endpoints` of a `provider \"etcd\"` block."},
			"cluster_id": schema.StringAttribute{Computed: true, MarkdownDescription: "The cluster ID (hexadecimal, as etcdctl prints it).",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"members": schema.ListNestedAttribute{Computed: true, MarkdownDescription: "The member list, sorted by name.",
				NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
					"id":          schema.StringAttribute{Computed: true, MarkdownDescription: "Member ID (hexadecimal)."},
					"name":        schema.StringAttribute{Computed: true, MarkdownDescription: "Member name (empty for a member that has not started)."},
					"peer_urls":   schema.ListAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: "Peer URLs."},
					"client_urls": schema.ListAttribute{Computed: true, ElementType: types.StringType, MarkdownDescription: "Client URLs."},
					"is_learner":  schema.BoolAttribute{Computed: true, MarkdownDescription: "Whether the member is a non-voting learner."},
				}}},
			"ca_cert_pem": schema.StringAttribute{Computed: true, MarkdownDescription: "The cluster's CA certificate (PEM), with `tls`: the provider's `ca_cert`. During phases 1 and 2 of a CA rotation " +
				"(`tls_ca_rotation_phase`) it holds the new and the old CA, as the members' CA file does: what clients must trust then.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"client_cert_pem": schema.StringAttribute{Computed: true, MarkdownDescription: "A client certificate (common name `root`), with `tls`: the provider's `cert`.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"client_key_pem": schema.StringAttribute{Computed: true, Sensitive: true, MarkdownDescription: "The key of `client_cert_pem`: the provider's `key`.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()}},
			"binary_sha256": schema.StringAttribute{Computed: true,
				MarkdownDescription: "SHA-256 of the uploaded binary (empty with `remote_binary`). It changes when the provider is " +
					"upgraded or `binary_path` points at a new build; the apply then restarts the members one at a time on the new binary."},
		},
	}
	addCompactionAttributes(resp.Schema.Attributes)
	addUpgradeAttributes(resp.Schema.Attributes)
	addTLSRotationAttributes(resp.Schema.Attributes)
	addCARotationAttributes(resp.Schema.Attributes)
	addMaintenanceAttribute(resp.Schema.Attributes)
}

func (r *clusterResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m clusterModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !m.BinaryPath.IsNull() && !m.BinaryPath.IsUnknown() {
		if fi, err := os.Stat(m.BinaryPath.ValueString()); err != nil || fi.IsDir() {
			resp.Diagnostics.AddAttributeError(path.Root("binary_path"), "Binary not found",
				fmt.Sprintf("binary_path %q is not a readable file on this machine.", m.BinaryPath.ValueString()))
		}
	}
	validateRecovery(ctx, m, &resp.Diagnostics)
	m.validateBackup(ctx, &resp.Diagnostics)
	validateTLSRotation(ctx, m, &resp.Diagnostics)
	if !req.Config.Raw.IsFullyKnown() || resp.Diagnostics.HasError() {
		return
	}
	// The whole configuration is known: check it as an apply would.
	var placeholder *cluster.TLS
	if !m.TLS.IsNull() {
		placeholder = &cluster.TLS{CA: &pki.CA{}, Client: &pki.KeyPair{}}
	}
	s, diags := m.spec(ctx, placeholder)
	resp.Diagnostics.Append(diags...)
	if s.Binary.LocalPath == "" && s.Binary.RemotePath == "" {
		s.Binary.RemotePath = "/unknown" // the provider's own path is checked at apply
	}
	if err := withoutValidatorErrors(s.Validate()); err != nil {
		addSpecErrors(&resp.Diagnostics, err, "Invalid etcd_cluster configuration")
	}
}

// withoutValidatorErrors leaves out of the errors of cluster.Spec.Validate
// those that an attribute validator (settingsValidator, nodesValidator)
// reports already, so that the plan shows each problem once.
func withoutValidatorErrors(err error) error {
	if err == nil {
		return nil
	}
	var rest []error
	for _, e := range unjoinErr(err) {
		var fe *cluster.FieldError
		if errors.Is(e, cluster.ErrDuplicateNodeName) || errors.As(e, &fe) && fe.Attr == "settings" && fe.Index < 0 {
			continue
		}
		rest = append(rest, e)
	}
	return errors.Join(rest...)
}

func (r *clusterResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return
	}
	var plan clusterModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	changed := false
	// Endpoints follow from the configuration: known at plan time, so a
	// provider block can use them without waiting for apply.
	if !plan.Nodes.IsUnknown() && !plan.TLS.IsUnknown() && !plan.ClientPort.IsUnknown() && plan.Endpoints.IsUnknown() {
		nodes, d := plan.nodes(ctx)
		resp.Diagnostics.Append(d...)
		known := true
		for _, n := range nodes {
			known = known && !n.Host.IsUnknown() && !n.ClientAddress.IsUnknown()
		}
		if known {
			var s cluster.Spec
			for _, n := range nodes {
				s.Nodes = append(s.Nodes, n.node())
			}
			s.ClientPort = int(plan.ClientPort.ValueInt64())
			if !plan.TLS.IsNull() {
				s.TLS = &cluster.TLS{}
			}
			resp.Diagnostics.Append(plan.setEndpoints(s)...)
			changed = true
		}
	}
	if !plan.BinaryPath.IsUnknown() && !plan.RemoteBinary.IsUnknown() {
		s := cluster.Spec{Binary: cluster.Binary{LocalPath: plan.BinaryPath.ValueString(), RemotePath: plan.RemoteBinary.ValueString()}}
		if s.Binary.LocalPath == "" && s.Binary.RemotePath == "" {
			s.Binary.LocalPath, _ = memberhost.DefaultBinary() // "" fails validation, naming binary_path
		}
		if sum, err := binarySHA256(s); err == nil {
			plan.BinarySHA256 = types.StringValue(sum)
			changed = true
		}
	}
	if !req.State.Raw.IsNull() {
		var state clusterModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		if resp.Diagnostics.HasError() {
			return
		}
		warnClusterAlarms(ctx, state, &resp.Diagnostics)
		planRestore(ctx, plan, &state, req.Config, &resp.Diagnostics)
		warnStaleBackups(ctx, plan, state, &resp.Diagnostics)
		// The same nodes: the same members.
		if plan.Nodes.Equal(state.Nodes) && plan.Members.IsUnknown() {
			plan.Members = state.Members
			changed = true
		}
		// A node keeps its address: a member's peer URL is its identity.
		old, _ := state.nodes(ctx)
		nodes, _ := plan.nodes(ctx)
		for i, n := range nodes {
			for _, o := range old {
				if o.Name.Equal(n.Name) && !n.Host.IsUnknown() && !n.PeerAddress.IsUnknown() &&
					(o.node().PeerAddressOrHost() != n.node().PeerAddressOrHost()) {
					resp.Diagnostics.AddAttributeError(path.Root("nodes").AtListIndex(i).AtName("host"), "Node address changed",
						fmt.Sprintf("Node %q moves from %s to %s. A member's peer address is its identity in the cluster: remove the node "+
							"(apply), then add it back with the new address, or give the new machine a new name.",
							n.Name.ValueString(), o.node().PeerAddressOrHost(), n.node().PeerAddressOrHost()))
				}
			}
		}
		changed = planRecovery(ctx, &plan, state, req.Config, &resp.Diagnostics) || changed
		changed = planServerVersions(ctx, &plan, &state, &resp.Diagnostics) || changed
		changed = nullCertExpiriesWithoutTLS(&plan) || changed
		changed = keepBackupsIfUnchanged(ctx, &plan, state, req.State) || changed
		changed = planCertRenewal(ctx, &plan, state, &resp.Diagnostics) || changed
		changed = planCARotation(ctx, &plan, state, &resp.Diagnostics) || changed
		changed = planMaintenance(ctx, &plan, &state, &resp.Diagnostics) || changed
	}
	if req.State.Raw.IsNull() {
		planRestore(ctx, plan, nil, req.Config, &resp.Diagnostics)
		changed = planServerVersions(ctx, &plan, nil, &resp.Diagnostics) || changed
		changed = nullCertExpiriesWithoutTLS(&plan) || changed
		changed = planMaintenance(ctx, &plan, nil, &resp.Diagnostics) || changed
	}
	if changed {
		resp.Diagnostics.Append(resp.Plan.Set(ctx, plan)...)
	}
}

func progressLogger(ctx context.Context) cluster.Option {
	return cluster.WithProgress(func(msg string, fields map[string]any) { tflog.Info(ctx, "etcd_cluster: "+msg, fields) })
}

func (r *clusterResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan clusterModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.timeout(ctx, "create")
	resp.Diagnostics.Append(diags...)
	plan.TLSCARotationPhase = types.Int64Null()
	material, caKey, diags := plan.withCAKeyWO(ctx, req.Config, &resp.Diagnostics).tlsMaterial(ctx, nil, nil, 0)
	resp.Diagnostics.Append(diags...)
	s, diags := plan.spec(ctx, material)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := s.Validate(); err != nil {
		addSpecErrors(&resp.Diagnostics, err, "Invalid etcd_cluster configuration")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	backups := plan.prepareBackups(ctx, s, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	c := cluster.New(s, progressLogger(ctx))
	defer c.Close()

	plan.ID = plan.Name
	plan.setTLSOutputs(material)
	resp.Diagnostics.Append(plan.setEndpoints(s)...)
	if caKey != nil {
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateCAKey, caKey)...)
	}
	sum, err := binarySHA256(s)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("binary_path"), "Cannot read the binary", err.Error())
		return
	}
	plan.BinarySHA256 = types.StringValue(sum)
	src, diags := restoreSource(ctx, plan.Restore)
	resp.Diagnostics.Append(diags...)
	from, diags := recoverFromConfig(ctx, req.Config)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if !plan.ServerVersion.IsNull() {
		applyVersions(ctx, plan, c, &resp.Diagnostics)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	var st *cluster.Status
	if src != nil {
		st, err = c.Restore(ctx, *src)
	} else {
		st, err = c.Apply(ctx, cluster.ApplyOptions{RecoverFrom: from.FromNode, RecoverSnapshot: from.Snapshot})
	}
	if err != nil {
		addClusterError(&resp.Diagnostics, "Cannot create the etcd cluster", err, "create", timeout)
		if cluster.NothingChanged(err) {
			return
		}
		// Members may run: record the cluster (Terraform marks it tainted),
		// so that it is not forgotten and destroy can clean up.
		plan.ClusterID = types.StringValue("")
		plan.Members = types.ListValueMust(types.ObjectType{AttrTypes: clusterMemberAttrTypes}, nil)
		plan.TLSNotAfter, plan.TLSCertsNotAfter = types.StringNull(), types.MapNull(types.StringType)
		resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
		resp.Diagnostics.Append(setClusterIdentity(ctx, resp.Identity, plan)...)
		return
	}
	addWarnings(&resp.Diagnostics, st.Warnings)
	resp.Diagnostics.Append(plan.setStatus(st)...)
	plan.setServerVersions(s, st, false)
	plan.certExpiry(ctx, s, &resp.Diagnostics)
	syncBackups(ctx, s, backups, false, &resp.Diagnostics)
	plan.readBackups(ctx, s, &resp.Diagnostics)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
	resp.Diagnostics.Append(setClusterIdentity(ctx, resp.Identity, plan)...)
}

func (r *clusterResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state clusterModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	resp.Diagnostics.Append(checkClusterIdentity(ctx, req.Identity, state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	// Every Read that returns without an error has an identity, also one
	// that keeps the state as it was (an unreachable cluster); the end of
	// Read sets it again from what it read.
	resp.Diagnostics.Append(setClusterIdentity(ctx, resp.Identity, state)...)
	material, err := state.readOnlyTLS()
	if err != nil {
		resp.Diagnostics.AddError("Invalid TLS material in the state", err.Error())
		return
	}
	importing := state.Nodes.IsNull()
	var s cluster.Spec
	if importing {
		s, err = importSpec(state)
		if err != nil {
			resp.Diagnostics.AddError("Invalid import ID", err.Error())
			return
		}
	} else {
		var diags diag.Diagnostics
		s, diags = state.spec(ctx, material)
		resp.Diagnostics.Append(diags...)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	if !importing {
		state.certExpiry(ctx, s, &resp.Diagnostics)
	}
	c := cluster.New(s)
	defer c.Close()
	st, err := c.Status(ctx)
	if err != nil {
		if importing {
			resp.Diagnostics.AddError("Cannot import the etcd cluster", err.Error())
			return
		}
		resp.Diagnostics.AddWarning("etcd cluster unreachable",
			fmt.Sprintf("Cluster %q: %v. Its state is kept as it was, but for the certificates' expiry; the next apply reaches the nodes over SSH and starts what is not running.", s.Name, err))
		resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
		return
	}
	addWarnings(&resp.Diagnostics, st.Warnings)
	if importing {
		resp.Diagnostics.Append(state.fillFromMembers(ctx, s, st)...)
	} else if len(st.Missing) > 0 {
		// Members removed outside Terraform: drop their nodes from the
		// state, so that the plan shows them being added back. Nothing is
		// removed on the nodes.
		nodes, _ := state.nodes(ctx)
		var keep []clusterNodeModel
		for _, n := range nodes {
			if !slices.Contains(st.Missing, n.Name.ValueString()) {
				keep = append(keep, n)
			}
		}
		list, diags := types.ListValueFrom(ctx, types.ObjectType{AttrTypes: clusterNodeAttrTypes}, keep)
		resp.Diagnostics.Append(diags...)
		state.Nodes = list
		resp.Diagnostics.AddWarning("etcd cluster members missing",
			fmt.Sprintf("Cluster %q has no member for node(s) %s (removed outside Terraform, or never joined). The plan adds them "+
				"back: the next apply joins each as a new member, moving its old data dir aside.", s.Name, strings.Join(st.Missing, ", ")))
	}
	resp.Diagnostics.Append(state.setStatus(st)...)
	state.setServerVersions(s, st, importing)
	if !importing {
		state.readBackups(ctx, s, &resp.Diagnostics)
		state.readMaintenance(ctx, resp.Private, &resp.Diagnostics)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
	resp.Diagnostics.Append(setClusterIdentity(ctx, resp.Identity, state)...)
}

func (r *clusterResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state clusterModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := plan.timeout(ctx, "update")
	resp.Diagnostics.Append(diags...)
	phase, _ := nextCAPhase(ctx, plan, state, &resp.Diagnostics)
	if phase != 0 {
		plan.TLSCARotationPhase = types.Int64Value(int64(phase))
	} else if plan.TLSCARotationPhase.IsUnknown() {
		plan.TLSCARotationPhase = state.TLSCARotationPhase
	}
	if resp.Diagnostics.HasError() {
		return
	}
	material, caKey, diags := plan.withCAKeyWO(ctx, req.Config, &resp.Diagnostics).tlsMaterial(ctx, &state, req.Private, phase)
	resp.Diagnostics.Append(diags...)
	s, diags := plan.spec(ctx, material)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if err := s.Validate(); err != nil {
		addSpecErrors(&resp.Diagnostics, err, "Invalid etcd_cluster configuration")
		return
	}
	// Nodes in the state but not in the plan are removed.
	oldNodes, diags := state.nodes(ctx)
	resp.Diagnostics.Append(diags...)
	var remove []cluster.Node
	for _, o := range oldNodes {
		if _, ok := s.Node(o.Name.ValueString()); !ok {
			n := o.node()
			if n.InstallDir == "" {
				n.InstallDir = state.InstallDir.ValueString()
			}
			if n.DataDir == "" {
				n.DataDir = state.DataDir.ValueString()
			}
			remove = append(remove, n)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	backups := plan.prepareBackups(ctx, s, &resp.Diagnostics)
	hadBackup := !state.Backup.IsNull()
	if hadBackup && len(remove) > 0 && !resp.Diagnostics.HasError() {
		removeBackups(ctx, s, remove, true, &resp.Diagnostics)
	}
	// Defragment first: a cluster under NOSPACE is healthy again for the rest.
	plan.applyMaintenance(ctx, state, req.Private, resp.Private, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	c := cluster.New(s, progressLogger(ctx))
	defer c.Close()
	from, diags := recoverFromConfig(ctx, req.Config)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	versions := applyVersions(ctx, plan, c, &resp.Diagnostics)
	if resp.Diagnostics.HasError() {
		return
	}
	st, err := c.Apply(ctx, cluster.ApplyOptions{Remove: remove, WipeRemoved: plan.WipeDataOnDestroy.ValueBool(),
		RecoverFrom: from.FromNode, RecoverSnapshot: from.Snapshot, Existing: ranBefore(state), Versions: versions})
	if err != nil {
		addClusterError(&resp.Diagnostics, "Cannot update the etcd cluster", err, "update", timeout)
		return
	}
	addWarnings(&resp.Diagnostics, st.Warnings)
	plan.ID = plan.Name
	if sum, err := binarySHA256(s); err == nil {
		plan.BinarySHA256 = types.StringValue(sum)
	}
	plan.setTLSOutputs(material)
	resp.Diagnostics.Append(plan.setEndpoints(s)...)
	resp.Diagnostics.Append(plan.setStatus(st)...)
	plan.setServerVersions(s, st, false)
	plan.certExpiry(ctx, s, &resp.Diagnostics)
	syncBackups(ctx, s, backups, hadBackup, &resp.Diagnostics)
	plan.readBackups(ctx, s, &resp.Diagnostics)
	switch {
	case caKey != nil:
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateCAKey, caKey)...)
	case phase == cluster.CATrustBoth:
		// From tls.auto to your own CA: the generated key goes.
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateCAKey, nil)...)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
	resp.Diagnostics.Append(setClusterIdentity(ctx, resp.Identity, plan)...)
}

func (r *clusterResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state clusterModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := state.timeout(ctx, "delete")
	resp.Diagnostics.Append(diags...)
	s, diags := state.spec(ctx, nil)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if state.SSH.IsNull() || len(s.Nodes) == 0 {
		resp.Diagnostics.AddError("Cannot destroy an imported etcd cluster that was never applied",
			"The state has no SSH settings or nodes for this cluster yet. Apply the configuration once (which records them), "+
				"or remove it from the state with `terraform state rm` to leave the cluster running.")
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if !state.Backup.IsNull() {
		removeBackups(ctx, s, s.Nodes, false, &resp.Diagnostics)
		if resp.Diagnostics.HasError() {
			return
		}
	}
	c := cluster.New(s, progressLogger(ctx))
	defer c.Close()
	if err := c.Destroy(ctx, state.WipeDataOnDestroy.ValueBool()); err != nil {
		addClusterError(&resp.Diagnostics, "Cannot destroy the etcd cluster", err, "delete", timeout)
	}
}

// ImportState takes "<name>@<client URL>[,<client URL>...]" of a cluster
// without TLS. The nodes, ports and members are read from the cluster; the
// SSH settings, directories and settings come from the configuration on the
// next apply, which then converges the nodes on them.
func (r *clusterResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	importID, diags := clusterImportID(ctx, req)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	name, eps, ok := strings.Cut(importID, "@")
	if !ok || name == "" || eps == "" {
		resp.Diagnostics.AddError("Invalid import ID",
			fmt.Sprintf("Expected \"<name>@<client URL>[,<client URL>...]\", e.g. \"prod@http://10.0.0.1:2379,http://10.0.0.2:2379\"; got %q.", importID))
		return
	}
	for _, e := range strings.Split(eps, ",") {
		if u, err := url.Parse(e); err != nil || u.Host == "" {
			resp.Diagnostics.AddError("Invalid import ID", fmt.Sprintf("%q is not a client URL such as http://10.0.0.1:2379.", e))
			return
		}
		if strings.HasPrefix(e, "https://") {
			resp.Diagnostics.AddError("Cannot import a TLS cluster",
				"etcd_cluster imports clusters without TLS only: a TLS cluster's certificate authority key cannot be read back from the "+
					"cluster. Keep the cluster in the state that created it, or re-create it with this provider.")
			return
		}
	}
	list, diags := types.ListValueFrom(ctx, types.StringType, strings.Split(eps, ","))
	resp.Diagnostics.Append(diags...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), name)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("endpoints"), list)...)
}

// importSpec is the spec a Read of an imported cluster needs: its
// endpoints.
func importSpec(m clusterModel) (cluster.Spec, error) {
	s := cluster.Spec{Name: m.Name.ValueString()}
	var eps []string
	for _, e := range m.Endpoints.Elements() {
		if v, ok := e.(types.String); ok {
			eps = append(eps, v.ValueString())
		}
	}
	for i, e := range eps {
		u, err := url.Parse(e)
		if err != nil {
			return s, err
		}
		port, _ := strconv.Atoi(u.Port())
		s.ClientPort = port
		s.Nodes = append(s.Nodes, cluster.Node{Name: fmt.Sprintf("endpoint-%d", i), Host: u.Hostname()})
	}
	return s, nil
}

// fillFromMembers sets the attributes an import can learn from the cluster.
func (m *clusterModel) fillFromMembers(ctx context.Context, s cluster.Spec, st *cluster.Status) diag.Diagnostics {
	var diags diag.Diagnostics
	members := append([]cluster.Member(nil), st.Members...)
	sort.Slice(members, func(i, j int) bool { return members[i].Name < members[j].Name })
	var nodes []clusterNodeModel
	for _, mem := range members {
		if len(mem.PeerURLs) == 0 || len(mem.ClientURLs) == 0 {
			diags.AddError("Cannot import the etcd cluster", fmt.Sprintf("Member %s has not started; start it (or remove it) before importing.", mem.ID))
			return diags
		}
		pu, err1 := url.Parse(mem.PeerURLs[0])
		cu, err2 := url.Parse(mem.ClientURLs[0])
		if err := errors.Join(err1, err2); err != nil {
			diags.AddError("Cannot import the etcd cluster", err.Error())
			return diags
		}
		n := clusterNodeModel{
			Name: types.StringValue(mem.Name), Host: types.StringValue(pu.Hostname()),
			PeerAddress: types.StringNull(), ClientAddress: types.StringNull(), InstallDir: types.StringNull(), DataDir: types.StringNull(),
		}
		if cu.Hostname() != pu.Hostname() {
			n.ClientAddress = types.StringValue(cu.Hostname())
		}
		pp, _ := strconv.Atoi(pu.Port())
		cp, _ := strconv.Atoi(cu.Port())
		m.PeerPort, m.ClientPort = types.Int64Value(int64(pp)), types.Int64Value(int64(cp))
		nodes = append(nodes, n)
	}
	list, d := types.ListValueFrom(ctx, types.ObjectType{AttrTypes: clusterNodeAttrTypes}, nodes)
	diags.Append(d...)
	m.Nodes = list
	var eps []string
	for _, n := range nodes {
		h := n.Host.ValueString()
		if !n.ClientAddress.IsNull() {
			h = n.ClientAddress.ValueString()
		}
		eps = append(eps, "http://"+net.JoinHostPort(h, strconv.FormatInt(m.ClientPort.ValueInt64(), 10)))
	}
	m.Endpoints, d = types.ListValueFrom(ctx, types.StringType, eps)
	diags.Append(d...)
	m.ID = m.Name
	m.CACertPEM, m.ClientCertPEM, m.ClientKeyPEM = types.StringNull(), types.StringNull(), types.StringNull()
	m.BinarySHA256 = types.StringNull()
	_ = s
	return diags
}

func addWarnings(diags *diag.Diagnostics, warnings []string) {
	for _, w := range warnings {
		diags.AddWarning("etcd cluster warning", w)
	}
}

// addClusterError turns an error of internal/cluster into diagnostics: one
// per node error, attribute errors for spec problems.
func addClusterError(diags *diag.Diagnostics, summary string, err error, op string, timeout time.Duration) {
	if addQuorumLost(diags, err) {
		return
	}
	var fe *cluster.FieldError
	if errors.As(err, &fe) {
		addSpecErrors(diags, err, summary)
		return
	}
	for _, e := range unjoinErr(err) {
		detail := e.Error()
		if errors.Is(e, context.DeadlineExceeded) {
			detail += timeoutHint(op, timeout)
		}
		diags.AddError(summary, detail)
	}
}
