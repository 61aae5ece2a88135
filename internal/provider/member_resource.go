package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/listplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/etcdconf"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/memberhost"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/membership"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
)

var (
	_ resource.Resource                   = (*memberResource)(nil)
	_ resource.ResourceWithConfigure      = (*memberResource)(nil)
	_ resource.ResourceWithImportState    = (*memberResource)(nil)
	_ resource.ResourceWithIdentity       = (*memberResource)(nil)
	_ resource.ResourceWithValidateConfig = (*memberResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*memberResource)(nil)
)

// memberTimeouts are the defaults of etcd_member's timeouts: create and
// update wait for the member's process to join, catch up and be promoted.
var memberTimeouts = operationTimeouts{Create: 10 * time.Minute, Update: 10 * time.Minute, Delete: 10 * time.Minute}

// memberResource is etcd_member: one member of a running cluster, and
// optionally its process on a machine reached over SSH.
type memberResource struct {
	provider *providerData
}

func newMemberResource() resource.Resource { return &memberResource{} }

func (r *memberResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_member"
}

func (r *memberResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	optString := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Optional: true, MarkdownDescription: desc}
	}
	secret := func(desc string) schema.StringAttribute {
		return schema.StringAttribute{Optional: true, Sensitive: true, MarkdownDescription: desc}
	}
	resp.Schema = schema.Schema{
		MarkdownDescription: "One member of a running etcd cluster, through the provider's connection: any cluster, " +
			"including one bootstrapped by hand or by `etcd_cluster`.\n\n" +
			"Creating it adds the member (`etcdctl member add`), by default as a **learner** that is promoted to a " +
			"voting member once it has caught up with the leader. With `node`, the provider also starts the " +
			"member's process on that machine over SSH: it renders the member's etcd config file " +
			"(`initial-cluster` from the live member list plus this member, `initial-cluster-state: existing`), " +
			"refuses a data dir that holds an earlier member unless `wipe_data` is set, uploads the binary, starts " +
			"the service, waits until the member has joined and promotes it. Without `node`, start the process " +
			"yourself with `initial_cluster`, `initial-cluster-state existing` and an empty data dir; the next " +
			"`apply` promotes the learner once it has joined.\n\n" +
			"Destroying it removes the member (`etcdctl member remove`), moving leadership away first when it is " +
			"the leader, and refuses when the remaining voting members would not keep a healthy quorum; with " +
			"`node` it then stops the member's service (the data dir is kept).\n\n" +
			"**Replacing a dead member**: remove the dead member, add the replacement, start it with a clean data " +
			"dir and `existing` state. With this resource that is one `apply`: import the dead member into an " +
			"`etcd_member` (by name or ID), then point that resource at the new machine (new `peer_urls` and " +
			"`node.host`, or `terraform apply -replace=...` when the machine keeps its address). Terraform replaces " +
			"it: the dead member is removed first, then the new one joins. See the guide *Operating a 3-node TLS " +
			"cluster*.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "Member ID in hexadecimal, as `etcdctl member list` prints it.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"name": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "Member name (etcd's `--name`). etcd learns it when the member's process " +
					"joins. Must not be taken by another member. Changing it replaces the member.",
				Validators: []validator.String{stringvalidator.RegexMatches(etcdconf.MemberNameRE,
					"must start with a letter or digit and contain only letters, digits, '.', '_' and '-'")},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"peer_urls": schema.ListAttribute{
				ElementType: types.StringType,
				Required:    true,
				MarkdownDescription: "URLs the other members reach this member at, e.g. `[\"https://10.0.0.4:2380\"]`. " +
					"No other member may have them. Changing them replaces the member.",
				Validators: []validator.List{
					listvalidator.SizeAtLeast(1),
					listvalidator.UniqueValues(),
					listvalidator.ValueStringsAre(peerURLValidator{}),
				},
				PlanModifiers: []planmodifier.List{listplanmodifier.RequiresReplace()},
			},
			"learner": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(true),
				MarkdownDescription: "How the member joins: `true` (default) adds it as a learner, which replicates " +
					"without voting and is promoted once it has caught up, so a slow or failing join never costs " +
					"the cluster its quorum; `false` adds it as a voting member at once (the cluster then counts it " +
					"towards the quorum before its process runs).",
			},
			"node": schema.SingleNestedAttribute{
				Optional: true,
				MarkdownDescription: "The machine the member runs on. When set, the provider starts (and on destroy " +
					"stops) the member's process there over SSH, like `etcd_cluster` does for its nodes. Without " +
					"it the resource manages the membership only.",
				Attributes: map[string]schema.Attribute{
					"host": schema.StringAttribute{
						Required: true,
						MarkdownDescription: "SSH address of the machine, optionally with a port (`10.0.0.1:2222`) that " +
							"overrides `ssh.port`. Changing it replaces the member.",
						Validators:    []validator.String{stringvalidator.LengthAtLeast(1)},
						PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
					},
					"ssh": schema.SingleNestedAttribute{
						Required:   true,
						Attributes: sshAttributes("the machine"),
						MarkdownDescription: "How to reach the machine over SSH, with the same settings as `etcd_cluster`'s " +
							"`ssh`. Errors name the machine and the cause: connection refused, authentication failed, host " +
							"key mismatch or timeout. The user needs to write `install_dir` and `data_dir` and, with " +
							"systemd, to install units.",
					},
					"binary_path": optString("Local binary to upload and run as `<binary> server --config-file F` " +
						"(the provider's bundled etcd server). Defaults to the running provider executable; set it " +
						"when the machine's OS or CPU differs from the one Terraform runs on."),
					"remote_binary": optString("A stock etcd binary already on the machine, e.g. `/usr/bin/etcd`, " +
						"run as `<binary> --config-file F`. Nothing is uploaded. Conflicts with `binary_path`."),
					"install_dir": optString("Where the binary, config file, certificates and (process manager) " +
						"pid and log files go. Default `/opt/etcd`."),
					"data_dir": optString("etcd's data dir. Default `/var/lib/etcd`. It must not hold an earlier " +
						"member (a `member/` directory) unless `wipe_data` is true: a member restarting from old " +
						"data comes back with its old ID and is rejected by the cluster."),
					"client_urls": schema.ListAttribute{
						ElementType: types.StringType,
						Optional:    true,
						MarkdownDescription: "Client URLs the member serves and advertises. Default: the host of the " +
							"first peer URL on port 2379, with its scheme.",
						Validators: []validator.List{listvalidator.SizeAtLeast(1), listvalidator.ValueStringsAre(endpointValidator{})},
					},
					"service_manager": schema.StringAttribute{
						Optional: true,
						MarkdownDescription: "`auto` (default: systemd where it runs, else a supervised background " +
							"process), `systemd` or `process`.",
						Validators: []validator.String{stringvalidator.OneOf("auto", "systemd", "process")},
					},
					"settings": schema.MapAttribute{
						ElementType: types.StringType,
						Optional:    true,
						MarkdownDescription: "Extra keys of etcd's config file, e.g. `{ \"heartbeat-interval\" = \"100\", " +
							"\"election-timeout\" = \"1000\" }` — use the cluster's values. Checked before anything " +
							"is touched.",
					},
					"tls": schema.SingleNestedAttribute{
						Optional: true,
						MarkdownDescription: "Certificates for a TLS cluster (required when the URLs use https). Give " +
							"`ca_cert_pem` plus either `ca_key_pem` (the provider issues the member's server and peer " +
							"certificates with the right SANs and key usages) or `cert_pem`/`key_pem` (and optionally " +
							"`peer_cert_pem`/`peer_key_pem`). Given certificates must chain to the CA, carry both the " +
							"`serverAuth` and `clientAuth` extended key usages (members dial each other, and " +
							"themselves, with them) and name every address of the member's URLs; this is checked " +
							"before anything is touched.",
						Attributes: map[string]schema.Attribute{
							"ca_cert_pem": schema.StringAttribute{Required: true,
								MarkdownDescription: "The cluster's CA certificate (PEM)."},
							"ca_key_pem":    secret("The CA's private key (PEM), to issue the member's certificates."),
							"cert_pem":      optString("Server certificate of the client port (PEM)."),
							"key_pem":       secret("Private key of `cert_pem` (PEM)."),
							"peer_cert_pem": optString("Peer certificate (PEM); `cert_pem` when unset."),
							"peer_key_pem":  secret("Private key of `peer_cert_pem` (PEM)."),
							"extra_sans": schema.ListAttribute{ElementType: types.StringType, Optional: true,
								MarkdownDescription: "More names or addresses for issued certificates, e.g. an address " +
									"behind NAT the member connects to its peers from."},
						},
					},
					"wipe_data": schema.BoolAttribute{
						Optional: true,
						MarkdownDescription: "Delete `data_dir` before the member starts when it holds an earlier " +
							"member. Default false: the apply fails before the cluster is changed, saying what it " +
							"found.",
					},
				},
			},
			"client_urls": schema.ListAttribute{
				ElementType: types.StringType,
				Computed:    true,
				MarkdownDescription: "Client URLs the member advertises; empty until its process has joined the " +
					"cluster.",
			},
			"is_learner": schema.BoolAttribute{
				Computed:            true,
				MarkdownDescription: "Whether the member is (still) a learner.",
			},
			"initial_cluster": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "The `initial-cluster` value to start this member's process with (with " +
					"`initial-cluster-state existing` and an empty data dir), as `etcdctl member add` prints it; " +
					"set when the member is added.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"timeouts": memberTimeouts.attribute("Create and update include waiting until the member's process " +
				"has joined, caught up and been promoted; delete includes moving leadership away and stopping the service."),
		},
	}
}

func (r *memberResource) IdentitySchema(_ context.Context, _ resource.IdentitySchemaRequest, resp *resource.IdentitySchemaResponse) {
	resp.IdentitySchema = stringIdentitySchema("id", "The member ID in hexadecimal, as `etcdctl member list` prints it.")
}

func (r *memberResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *memberResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m memberModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() || m.Node == nil {
		return
	}
	n := m.Node
	np := path.Root("node")
	if !n.BinaryPath.IsNull() && !n.RemoteBinary.IsNull() {
		resp.Diagnostics.AddAttributeError(np.AtName("remote_binary"), "Conflicting binaries",
			"Set binary_path (a local binary to upload) or remote_binary (an etcd binary already on the machine), not both.")
	}
	if n.SSH != nil {
		resp.Diagnostics.Append(n.SSH.validateHostKey(np.AtName("ssh"))...)
	}
	for _, d := range []string{"install_dir", "data_dir", "remote_binary"} {
		var v types.String
		resp.Diagnostics.Append(req.Config.GetAttribute(ctx, np.AtName(d), &v)...)
		if !v.IsNull() && !v.IsUnknown() && !strings.HasPrefix(v.ValueString(), "/") {
			resp.Diagnostics.AddAttributeError(np.AtName(d), "Not an absolute path",
				fmt.Sprintf("%s must be an absolute path on the machine, e.g. /var/lib/etcd; got %q.", d, v.ValueString()))
		}
	}
	if !n.Settings.IsNull() && !n.Settings.IsUnknown() {
		settings := map[string]string{}
		resp.Diagnostics.Append(n.Settings.ElementsAs(ctx, &settings, false)...)
		unknown := false
		for _, v := range n.Settings.Elements() {
			unknown = unknown || v.IsUnknown()
		}
		if !unknown {
			if err := etcdconf.ValidateSettings(settings); err != nil {
				resp.Diagnostics.AddAttributeError(np.AtName("settings"), "Invalid etcd settings", err.Error())
			}
		}
	}
	if t := n.TLS; t != nil && !t.CAKeyPEM.IsUnknown() && !t.CertPEM.IsUnknown() {
		if t.CAKeyPEM.IsNull() == t.CertPEM.IsNull() {
			resp.Diagnostics.AddAttributeError(np.AtName("tls"), "Incomplete TLS configuration",
				"Give either ca_key_pem (the provider issues the member's certificates) or cert_pem and key_pem, not both and not neither.")
		}
	}
}

// ModifyPlan keeps the computed attributes of an existing member and plans
// the promotion of a learner whose process has joined. A new member is
// checked against the live cluster in Create, not here: when Terraform
// replaces a member it plans the new one while the old one still exists.
func (r *memberResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() || req.State.Raw.IsNull() {
		return
	}
	var state memberModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if state.IsLearner.ValueBool() && len(state.ClientURLs.Elements()) > 0 {
		// The learner's process has joined: promote it in this apply.
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("is_learner"), types.BoolUnknown())...)
	} else {
		resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("is_learner"), state.IsLearner)...)
	}
	resp.Diagnostics.Append(resp.Plan.SetAttribute(ctx, path.Root("client_urls"), state.ClientURLs)...)
}

// checkNew rejects a member whose name or peer URLs another member has.
func (r *memberResource) checkNew(ctx context.Context, cl *client.Client, plan memberModel) diag.Diagnostics {
	var diags diag.Diagnostics
	if plan.Name.IsUnknown() || plan.PeerURLs.IsUnknown() {
		return diags
	}
	l, listDiags := listMembers(ctx, cl)
	diags.Append(listDiags...)
	if diags.HasError() {
		return diags
	}
	name := plan.Name.ValueString()
	if m, ok := l.ByName(name); ok {
		diags.AddAttributeError(path.Root("name"), "Member already exists",
			fmt.Sprintf("The cluster already has a member named %q (ID %s, peer URLs %s). The provider does not take "+
				"over members it did not add: to manage it, import it (replace NAME with this resource's name):\n\n"+
				"    terraform import etcd_member.NAME %s\n\nor choose another name.",
				name, membership.FormatID(m.ID), strings.Join(m.PeerURLs, ", "), name))
	}
	for i, u := range stringsOf(plan.PeerURLs) {
		if m, ok := l.ByPeerURL(u); ok {
			diags.AddAttributeError(path.Root("peer_urls").AtListIndex(i), "Peer URL already in use",
				fmt.Sprintf("Member %s (%s) of the cluster already has peer URL %s. To manage that member, import it:\n\n"+
					"    terraform import etcd_member.NAME %s\n\nTo replace it (e.g. it is dead and its machine is "+
					"rebuilt with the same address), import it and apply with -replace.",
					membership.FormatID(m.ID), m.DisplayName(), u, membership.FormatID(m.ID)))
		}
	}
	return diags
}

// connectNode dials the member's machine, turning errors into diagnostics
// on node.host.
func connectNode(ctx context.Context, s memberhost.Spec) (*memberhost.Host, diag.Diagnostics) {
	var diags diag.Diagnostics
	h, err := memberhost.Connect(ctx, s)
	if err != nil {
		var de *node.DialError
		summary := "Cannot set up the member's machine"
		if errors.As(err, &de) {
			summary = "Cannot connect to the member's machine"
		}
		diags.AddAttributeError(path.Root("node").AtName("host"), summary, err.Error())
		return nil, diags
	}
	return h, diags
}

func (r *memberResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan memberModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := memberTimeouts.get(ctx, plan.Timeouts, "create")
	resp.Diagnostics.Append(diags...)
	var spec memberhost.Spec
	if plan.Node != nil {
		spec, diags = plan.hostSpec(ctx)
		resp.Diagnostics.Append(diags...)
	}
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(r.checkNew(ctx, cl, plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer noteDeadline(ctx, &resp.Diagnostics, "create", timeout)
	name := plan.Name.ValueString()
	logf := func(msg string, kv ...any) {
		fields := map[string]any{"member": name}
		for i := 0; i+1 < len(kv); i += 2 {
			fields[fmt.Sprint(kv[i])] = kv[i+1]
		}
		tflog.Info(ctx, msg, fields)
	}

	// Everything that can fail without changing the cluster comes first:
	// the machine is reachable, its data dir is clean, the binary and
	// certificates are in place.
	var host *memberhost.Host
	if plan.Node != nil {
		host, diags = connectNode(ctx, spec)
		resp.Diagnostics.Append(diags...)
		if resp.Diagnostics.HasError() {
			return
		}
		defer host.Close()
		if err := host.CheckDataDir(ctx); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("node").AtName("data_dir"), "Data dir holds an earlier member", err.Error())
			return
		}
		if _, err := host.Upload(ctx); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("node"), "Cannot install the member on its machine", err.Error())
			return
		}
		logf("uploaded the member's binary and certificates", "host", host.Target())
	}

	peerURLs := stringsOf(plan.PeerURLs)
	add := membership.AddLearner
	if !plan.Learner.ValueBool() {
		add = membership.AddVoter
	}
	added, err := add(ctx, cl.Client, peerURLs)
	var exists *membership.ExistsError
	switch {
	case errors.As(err, &exists):
		resp.Diagnostics.AddAttributeError(path.Root("peer_urls"), "Peer URL already in use",
			fmt.Sprintf("%v. To manage that member, import it: terraform import etcd_member.NAME %s", err, membership.FormatID(exists.Member.ID)))
		return
	case err != nil:
		resp.Diagnostics.AddError("Cannot add the member", cl.Describe(err, "add member "+name, "").Error())
		return
	}
	logf("added the member", "id", membership.FormatID(added.ID), "learner", added.IsLearner)

	// From here on the member exists: record it at once, so that a failure
	// below leaves it in state (tainted) instead of unrecorded.
	l, err := membership.MemberList(ctx, cl.Client)
	if err != nil {
		l = membership.List{Members: []membership.Member{added}}
	}
	initial := l.InitialCluster(added.ID, name)
	plan.ID = types.StringValue(membership.FormatID(added.ID))
	plan.InitialCluster = types.StringValue(etcdconf.InitialClusterString(initial))
	plan.ClientURLs = memberURLList(nil)
	plan.IsLearner = types.BoolValue(added.IsLearner)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "id", plan.ID.ValueString())...)
	if err != nil {
		resp.Diagnostics.AddError("Cannot list etcd members", cl.Describe(err, "list the members", "").Error())
		return
	}
	if host == nil {
		tflog.Info(ctx, "member added; start its process with initial-cluster-state existing and an empty data dir", map[string]any{
			"member": name, "initial_cluster": plan.InitialCluster.ValueString()})
		return
	}

	if err := host.Start(ctx, initial); err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("node"), "Cannot start the member", err.Error())
		return
	}
	logf("started the member's service", "host", host.Target(), "manager", string(host.Manager()))
	resp.Diagnostics.Append(r.waitJoined(ctx, cl, host, added.ID, name)...)
	if resp.Diagnostics.HasError() {
		return
	}
	logf("member joined and votes", "id", membership.FormatID(added.ID))
	resp.Diagnostics.Append(r.refresh(ctx, cl, &plan)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

// waitJoined waits until the member's process has joined, promotes a
// learner, and waits until the member answers as healthy. Failures carry the
// tail of the member's log.
func (r *memberResource) waitJoined(ctx context.Context, cl *client.Client, host *memberhost.Host, id uint64, name string) diag.Diagnostics {
	var diags diag.Diagnostics
	fail := func(summary string, err error) diag.Diagnostics {
		logs := ""
		if host != nil {
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			logs = "\n\nLast lines of the member's log on " + host.Target() + ":\n" + host.Logs(lctx, 25)
			cancel()
		}
		diags.AddAttributeError(path.Root("node"), summary, err.Error()+logs)
		return diags
	}
	if _, err := membership.WaitStarted(ctx, cl.Client, id); err != nil {
		return fail("Member did not join the cluster", err)
	}
	if err := membership.Promote(ctx, cl.Client, id); err != nil {
		return fail("Cannot promote the learner", err)
	}
	for {
		h, err := membership.Probe(ctx, cl.Client)
		if err == nil {
			if mh, ok := h.ByID(id); ok && mh.Healthy {
				return diags
			}
		}
		select {
		case <-ctx.Done():
			if err == nil {
				mh, _ := h.ByID(id)
				err = fmt.Errorf("member %s (%s) is not healthy: %v", name, membership.FormatID(id), mh.Err)
			}
			return fail("Member did not become healthy", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// refresh reads the member from the cluster into m; it returns found=false
// through m.ID being null when the member is gone.
func (r *memberResource) refresh(ctx context.Context, cl *client.Client, m *memberModel) diag.Diagnostics {
	var diags diag.Diagnostics
	id, err := membership.ParseID(m.ID.ValueString())
	if err != nil {
		diags.AddAttributeError(path.Root("id"), "Invalid member ID", err.Error())
		return diags
	}
	l, listDiags := listMembers(ctx, cl)
	diags.Append(listDiags...)
	if diags.HasError() {
		return diags
	}
	mm, ok := l.ByID(id)
	if !ok {
		m.ID = types.StringNull()
		return diags
	}
	if mm.Name != "" {
		m.Name = types.StringValue(mm.Name)
	}
	if !sameStrings(stringsOf(m.PeerURLs), mm.PeerURLs) {
		m.PeerURLs = memberURLList(mm.PeerURLs)
	}
	m.ClientURLs = memberURLList(mm.ClientURLs)
	m.IsLearner = types.BoolValue(mm.IsLearner)
	if m.Learner.IsNull() || m.Learner.IsUnknown() {
		m.Learner = types.BoolValue(true)
	}
	if m.InitialCluster.IsNull() || m.InitialCluster.IsUnknown() {
		m.InitialCluster = types.StringValue(etcdconf.InitialClusterString(l.InitialCluster(id, mm.Name)))
	}
	return diags
}

func (r *memberResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state memberModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	id := state.ID.ValueString()
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "id", id)...) // also when the member is gone
	if r.provider.keepStateUnconfigured(&resp.Diagnostics) {
		return
	}
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(r.refresh(ctx, cl, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if state.ID.IsNull() {
		tflog.Warn(ctx, "etcd member removed outside Terraform; removing it from state", map[string]any{
			"id": id, "name": state.Name.ValueString()})
		resp.State.RemoveResource(ctx)
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
}

func (r *memberResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state memberModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := memberTimeouts.get(ctx, plan.Timeouts, "update")
	resp.Diagnostics.Append(diags...)
	var spec memberhost.Spec
	if plan.Node != nil {
		spec, diags = plan.hostSpec(ctx)
		resp.Diagnostics.Append(diags...)
	}
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer noteDeadline(ctx, &resp.Diagnostics, "update", timeout)
	id, err := membership.ParseID(state.ID.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("id"), "Invalid member ID", err.Error())
		return
	}
	plan.ID = state.ID
	plan.InitialCluster = state.InitialCluster

	if plan.Node != nil && !nodeEqual(plan.Node, state.Node) {
		host, diags := connectNode(ctx, spec)
		resp.Diagnostics.Append(diags...)
		if resp.Diagnostics.HasError() {
			return
		}
		defer host.Close()
		// A restart takes the member's vote away for a moment: only with a
		// quorum to spare.
		h, err := membership.CheckQuorum(ctx, cl.Client)
		if mh, ok := h.ByID(id); err == nil && ok && mh.Healthy && !mh.IsLearner && h.HealthyVoters()-1 < h.Quorum() {
			err = fmt.Errorf("restarting member %s would leave %d of %d voting members healthy, fewer than the quorum of %d",
				state.Name.ValueString(), h.HealthyVoters()-1, h.Voters(), h.Quorum())
		}
		if err != nil {
			resp.Diagnostics.AddError("Cluster not healthy enough to reconfigure the member", err.Error())
			return
		}
		filesChanged, err := host.Upload(ctx)
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("node"), "Cannot install the member on its machine", err.Error())
			return
		}
		l, err := membership.MemberList(ctx, cl.Client)
		if err != nil {
			resp.Diagnostics.AddError("Cannot list etcd members", cl.Describe(err, "list the members", "").Error())
			return
		}
		restarted, err := host.Reconfigure(ctx, l.InitialCluster(id, plan.Name.ValueString()), filesChanged)
		if err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("node"), "Cannot reconfigure the member", err.Error())
			return
		}
		if restarted {
			tflog.Info(ctx, "restarted the member with its new configuration", map[string]any{"member": plan.Name.ValueString()})
			resp.Diagnostics.Append(r.waitJoined(ctx, cl, host, id, plan.Name.ValueString())...)
			if resp.Diagnostics.HasError() {
				return
			}
		}
	}
	if state.IsLearner.ValueBool() && len(state.ClientURLs.Elements()) > 0 {
		if err := membership.Promote(ctx, cl.Client, id); err != nil {
			resp.Diagnostics.AddError("Cannot promote the learner", err.Error())
			return
		}
		tflog.Info(ctx, "promoted the learner", map[string]any{"member": plan.Name.ValueString()})
	}
	planned := plan
	resp.Diagnostics.Append(r.refresh(ctx, cl, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	// Values the plan promised stay as promised (a member that joins in
	// the meantime shows up on the next refresh).
	if !planned.ClientURLs.IsUnknown() {
		plan.ClientURLs = planned.ClientURLs
	}
	if !planned.IsLearner.IsUnknown() {
		plan.IsLearner = planned.IsLearner
	}
	plan.Name, plan.PeerURLs, plan.Learner = planned.Name, planned.PeerURLs, planned.Learner
	if plan.ID.IsNull() {
		resp.Diagnostics.AddError("Member removed outside Terraform",
			fmt.Sprintf("Member %s disappeared from the cluster during the update; run apply again to add it back.", state.ID.ValueString()))
		return
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "id", plan.ID.ValueString())...)
}

func (r *memberResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state memberModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	timeout, diags := memberTimeouts.get(ctx, state.Timeouts, "delete")
	resp.Diagnostics.Append(diags...)
	// What stopping the service needs is checked before the member is
	// removed: a state it cannot be read from changes nothing.
	var spec memberhost.Spec
	if state.Node != nil {
		spec, diags = state.teardownSpec(ctx)
		resp.Diagnostics.Append(diags...)
	}
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	id, err := membership.ParseID(state.ID.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("id"), "Invalid member ID", err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer noteDeadline(ctx, &resp.Diagnostics, "delete", timeout)
	name := state.Name.ValueString()
	err = membership.Remove(ctx, cl.Client, id)
	var qe *membership.QuorumError
	switch {
	case errors.Is(err, membership.ErrNotFound):
		tflog.Warn(ctx, "etcd member already removed", map[string]any{"member": name, "id": state.ID.ValueString()})
	case errors.As(err, &qe):
		resp.Diagnostics.AddError("Removing the member would lose quorum",
			fmt.Sprintf("%v.\n\nNothing was changed. Bring the unhealthy members back (or remove the dead ones first), then destroy this member.", err))
		return
	case err != nil:
		resp.Diagnostics.AddError("Cannot remove the member", cl.Describe(err, "remove member "+name, "").Error())
		return
	default:
		tflog.Info(ctx, "removed the etcd member", map[string]any{"member": name, "id": state.ID.ValueString()})
	}
	if state.Node == nil {
		return
	}
	host, err := memberhost.ConnectForTeardown(ctx, spec)
	if err != nil {
		resp.Diagnostics.AddWarning("Member removed; its service was not stopped",
			fmt.Sprintf("Member %s was removed from the cluster, but its machine cannot be reached to stop its service (%v). "+
				"If the machine comes back, the old member will try to rejoin and be refused; stop its service (%s) and "+
				"clear its data dir before reusing the machine.", name, err, spec.ServiceName()))
		return
	}
	defer host.Close()
	if err := host.Uninstall(ctx); err != nil {
		resp.Diagnostics.AddWarning("Member removed; its service could not be stopped",
			fmt.Sprintf("Member %s was removed from the cluster, but stopping its service on %s failed: %v", name, host.Target(), err))
	}
}

// ImportState accepts a member ID (hexadecimal, as etcdctl prints it) or a
// member name.
func (r *memberResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	target, diags := importTarget(ctx, req, "id", "8e9e05c52164694d")
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	req.ID = target
	if req.ID == "" {
		resp.Diagnostics.AddError("Missing member", "Give the member's ID (hex, as etcdctl member list prints it) or name, e.g. terraform import etcd_member.NAME m3")
		return
	}
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	l, diags := listMembers(ctx, cl)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	m, ok := l.ByName(req.ID)
	if id, err := membership.ParseID(req.ID); err == nil {
		if byID, found := l.ByID(id); found {
			m, ok = byID, true
		}
	}
	if !ok {
		var known []string
		for _, mm := range l.Members {
			known = append(known, fmt.Sprintf("%s (%s)", membership.FormatID(mm.ID), mm.DisplayName()))
		}
		resp.Diagnostics.AddError("Member not found",
			fmt.Sprintf("No member has ID or name %q. The members are: %s.", req.ID, strings.Join(known, ", ")))
		return
	}
	name := m.Name
	if name == "" {
		name = "unstarted-" + membership.FormatID(m.ID)
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), membership.FormatID(m.ID))...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("name"), name)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("peer_urls"), m.PeerURLs)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("learner"), true)...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "id", membership.FormatID(m.ID))...)
}

// listMembers is the cluster's member list, bounded by the request timeout,
// or an error diagnostic.
func listMembers(ctx context.Context, cl *client.Client) (membership.List, diag.Diagnostics) {
	var diags diag.Diagnostics
	rctx, cancel := cl.Ctx(ctx)
	defer cancel()
	l, err := membership.MemberList(rctx, cl.Client)
	if err != nil {
		diags.AddError("Cannot list etcd members", cl.Describe(err, "list the members", "").Error())
	}
	return l, diags
}
