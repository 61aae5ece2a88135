package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	fwpath "github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/backup"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/cluster"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/memberhost"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
)

// etcd_cluster's scheduled backups (`backup`) and what they produced
// (`backups`). The job and its scheduling on the nodes are package
// backup's; this file maps the schema to it and runs it around the
// cluster's apply: the backup dir is checked on every node before anything
// changes, the schedules are installed once the members run, and removed
// before the members are.

type clusterBackupModel struct {
	Dir         types.String `tfsdk:"dir"`
	Interval    types.String `tfsdk:"interval"`
	Keep        types.Int64  `tfsdk:"keep"`
	Node        types.String `tfsdk:"node"`
	CopyCommand types.String `tfsdk:"copy_command"`
}

var clusterBackupsAttrTypes = map[string]attr.Type{
	"node": types.StringType, "name": types.StringType, "revision": types.Int64Type, "taken_at": types.StringType,
}

// Defaults of backup.
const (
	defaultBackupInterval = "1h"
	defaultBackupKeep     = 24
	backupNodeLeader      = "leader"
	backupNodeAll         = "all"
)

func clusterBackupAttribute() schema.Attribute {
	return schema.SingleNestedAttribute{Optional: true,
		MarkdownDescription: "Scheduled backups on the nodes. Each selected node runs a job that takes a snapshot of its local " +
			"member through the client API with the bundled binary (`terraform-provider-etcd backup run`, i.e. `snapshot save` " +
			"plus naming, retention and copy): with systemd, a timer `etcd-<name>-backup.timer` and a oneshot " +
			"`etcd-<name>-backup.service`; with the process manager, a supervised `terraform-provider-etcd backup loop`. " +
			"The first backup is taken right after the job is installed (the apply waits for it), then one every `interval`.\n\n" +
			"Files are `<dir>/<name>-<node>-<YYYYMMDDTHHMMSSZ>-r<revision>.db`, each with a `.sha256` sidecar in `sha256sum` " +
			"format; after each backup all but the newest `keep` are deleted. The backup dir is checked on every selected node " +
			"(writable, or creatable) before anything changes. With `remote_binary` the members run the stock etcd and the job " +
			"runs the provider's own executable, uploaded to `<install_dir>/bin/terraform-provider-etcd` as a tool only; it must " +
			"be built for the nodes' OS and CPU (checked with the backup dir). " +
			"With `tls` the job connects with the cluster's client certificate (common name `root`, written to the member's PKI " +
			"dir with mode 0600), so it keeps working under etcd authentication (`etcd_auth`); without `tls` it has no credentials, " +
			"and a cluster with authentication on needs `tls` for backups. " +
			"Removing the block stops and removes the jobs; the backups stay.",
		Attributes: map[string]schema.Attribute{
			"dir": schema.StringAttribute{Required: true,
				MarkdownDescription: "Absolute path of the backup dir on each node; created (mode 0700) if missing.",
				Validators:          []validator.String{absolutePathValidator{}}},
			"interval": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString(defaultBackupInterval),
				MarkdownDescription: "Time between backups, a Go duration such as `\"30m\"` or `\"6h\"`; at least `10s`. Defaults to `1h`. " +
					"A newest backup older than twice the interval is a warning at plan.",
				Validators: []validator.String{backupIntervalValidator{}}},
			"keep": schema.Int64Attribute{Optional: true, Computed: true, Default: int64default.StaticInt64(defaultBackupKeep),
				MarkdownDescription: "How many backups each node keeps (at least 1). Defaults to 24.",
				Validators:          []validator.Int64{int64validator.AtLeast(1)}},
			"node": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString(backupNodeLeader),
				MarkdownDescription: "Which nodes back up: `leader` (default; the job runs on every node and skips unless its member " +
					"is the leader, so one backup is taken per interval wherever the leader is), `all` (every node), or a node's `name`."},
			"copy_command": schema.StringAttribute{Optional: true,
				MarkdownDescription: "A command run on the node with `sh -c` after each backup, for an off-node copy (`rclone copy`, " +
					"`aws s3 cp`, `scp`). The backup's path is `$1` and `$ETCD_BACKUP_FILE`, its sidecar's `$ETCD_BACKUP_SHA256_FILE`; " +
					"it runs in the backup dir. A failure is logged by the job (the service's journal or `<install_dir>/run/etcd-<name>-backup.log`) " +
					"and the local backup stays. The command is visible on the node (unit file, process list): keep credentials in " +
					"the tool's own configuration on the node, not in the command."},
		},
	}
}

func clusterBackupsAttribute() schema.Attribute {
	return schema.ListNestedAttribute{Computed: true,
		MarkdownDescription: "With `backup`: the newest backup on each node that has one, sorted by node name, read over SSH on " +
			"refresh. The time is `taken_at` (RFC 3339, UTC), not an age, so that the value only changes when a new backup is taken.",
		NestedObject: schema.NestedAttributeObject{Attributes: map[string]schema.Attribute{
			"node":     schema.StringAttribute{Computed: true, MarkdownDescription: "Node name."},
			"name":     schema.StringAttribute{Computed: true, MarkdownDescription: "File name of the backup in `backup.dir`."},
			"revision": schema.Int64Attribute{Computed: true, MarkdownDescription: "The snapshot's revision."},
			"taken_at": schema.StringAttribute{Computed: true, MarkdownDescription: "When the backup was taken (RFC 3339, UTC, whole seconds)."},
		}},
	}
}

// absolutePathValidator requires an absolute path.
type absolutePathValidator struct{}

func (absolutePathValidator) Description(context.Context) string { return "an absolute path" }
func (v absolutePathValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}
func (absolutePathValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if p := req.ConfigValue.ValueString(); !path.IsAbs(p) || strings.ContainsAny(p, "\n\x00") {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid path", fmt.Sprintf("%s must be an absolute path on the node, got %q.", req.Path, p))
	}
}

// backupIntervalValidator requires a Go duration of at least
// backup.MinInterval.
type backupIntervalValidator struct{}

func (backupIntervalValidator) Description(context.Context) string {
	return "a duration such as 30m or 6h, at least " + backup.MinInterval.String()
}
func (v backupIntervalValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}
func (backupIntervalValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	d, err := time.ParseDuration(req.ConfigValue.ValueString())
	switch {
	case err != nil:
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid backup interval",
			fmt.Sprintf("%s %q is not a duration: use a number with a unit, such as \"30m\", \"6h\" or \"24h\".", req.Path, req.ConfigValue.ValueString()))
	case d < backup.MinInterval:
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid backup interval",
			fmt.Sprintf("%s %s is shorter than the minimum %s.", req.Path, d, backup.MinInterval))
	}
}

// backupConfig returns the backup block (nil without one).
func (m clusterModel) backupConfig(ctx context.Context) (*clusterBackupModel, diag.Diagnostics) {
	if m.Backup.IsNull() || m.Backup.IsUnknown() {
		return nil, nil
	}
	var b clusterBackupModel
	diags := m.Backup.As(ctx, &b, objectAsOptions)
	return &b, diags
}

// validateBackup checks what the attribute validators cannot: the node
// selection against the nodes.
func (m clusterModel) validateBackup(ctx context.Context, diags *diag.Diagnostics) {
	b, d := m.backupConfig(ctx)
	diags.Append(d...)
	if b == nil {
		return
	}
	bp := fwpath.Root("backup")
	sel := b.Node.ValueString()
	if b.Node.IsUnknown() || m.Nodes.IsUnknown() || sel == backupNodeLeader || sel == backupNodeAll || sel == "" {
		return
	}
	nodes, _ := m.nodes(ctx)
	var names []string
	for _, n := range nodes {
		if n.Name.IsUnknown() || n.Name.ValueString() == sel {
			return
		}
		names = append(names, n.Name.ValueString())
	}
	diags.AddAttributeError(bp.AtName("node"), "Unknown backup node",
		fmt.Sprintf("backup.node %q is neither \"leader\", \"all\" nor a node's name (%s).", sel, strings.Join(names, ", ")))
}

// nodeSchedule is the backup job of one node.
type nodeSchedule struct {
	node  cluster.Node
	sched backup.Schedule
}

// backupUnit names the schedule's units on the nodes.
func backupUnit(s cluster.Spec) string { return s.ServiceName() + "-backup" }

// backupSchedules are the jobs b asks for on the nodes of s.
func backupSchedules(s cluster.Spec, b *clusterBackupModel) []nodeSchedule {
	if b == nil {
		return nil
	}
	interval, _ := time.ParseDuration(b.Interval.ValueString())
	sel := b.Node.ValueString()
	var out []nodeSchedule
	for _, n := range s.Nodes {
		if sel != backupNodeLeader && sel != backupNodeAll && sel != n.Name {
			continue
		}
		l := s.Layout(n)
		j := backup.Job{
			Dir: b.Dir.ValueString(), Prefix: s.Name + "-" + n.Name, Keep: int(b.Keep.ValueInt64()),
			Endpoint: s.ClientURL(n), LeaderOnly: sel == backupNodeLeader, CopyCommand: b.CopyCommand.ValueString(),
		}
		if s.TLS != nil {
			// The cluster's client certificate (common name root), not the
			// member's own: under etcd authentication the common name is the
			// user, and a snapshot needs the role root (the member's
			// certificate names the member, which is no user).
			j.CACert = path.Join(l.PKIDir, memberhost.CAFile)
			j.Cert = path.Join(l.PKIDir, backupClientCert)
			j.Key = path.Join(l.PKIDir, backupClientKey)
		}
		out = append(out, nodeSchedule{node: n, sched: backup.Schedule{
			Unit: backupUnit(s), Description: fmt.Sprintf("etcd backups of member %s of cluster %s", n.Name, s.Name),
			Binary: l.Tool, Job: j, Interval: interval, RunDir: l.RunDir, Manager: s.ServiceManager,
		}})
	}
	return out
}

// The backup job's client certificate and key in the member's PKI dir
// (mode 0600, in a directory only the owner reads; removed with it).
const (
	backupClientCert = "backup-client.crt"
	backupClientKey  = "backup-client.key"
)

// installBackupClientCert writes the cluster's client certificate (common
// name root) for the backup job of n: streamed over SSH, never on a command
// line or in a log.
func installBackupClientCert(ctx context.Context, s cluster.Spec, n cluster.Node, r node.Runner) error {
	if s.TLS == nil || s.TLS.Client == nil {
		return nil
	}
	l := s.Layout(n)
	if _, err := r.Upload(ctx, path.Join(l.PKIDir, backupClientCert), s.TLS.Client.CertPEM, 0o600); err != nil {
		return err
	}
	_, err := r.Upload(ctx, path.Join(l.PKIDir, backupClientKey), s.TLS.Client.KeyPEM, 0o600)
	return err
}

// backupNodes runs f on every node of nodes in parallel, over SSH
// connections of their own, and returns the errors by node.
func backupNodes(ctx context.Context, s cluster.Spec, nodes []cluster.Node, f func(n cluster.Node, r node.Runner) error) map[string]error {
	type result struct {
		name string
		err  error
	}
	ch := make(chan result, len(nodes))
	for _, n := range nodes {
		go func() {
			cl, err := node.Dial(ctx, s.SSH.At(n.Host))
			if err != nil {
				ch <- result{n.Name, err}
				return
			}
			defer cl.Close()
			ch <- result{n.Name, f(n, cl)}
		}()
	}
	errs := map[string]error{}
	for range nodes {
		r := <-ch
		if r.err != nil {
			errs[r.name] = r.err
		}
	}
	return errs
}

func sortedErrs(errs map[string]error) []string {
	names := make([]string, 0, len(errs))
	for n := range errs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// checkBackupDirs checks the backup dir on every node that backs up,
// before anything changes; errors name backup.dir.
func checkBackupDirs(ctx context.Context, s cluster.Spec, scheds []nodeSchedule, diags *diag.Diagnostics) {
	if len(scheds) == 0 {
		return
	}
	byName := map[string]nodeSchedule{}
	var nodes []cluster.Node
	for _, ns := range scheds {
		byName[ns.node.Name] = ns
		nodes = append(nodes, ns.node)
	}
	errs := backupNodes(ctx, s, nodes, func(n cluster.Node, r node.Runner) error {
		if s.Binary.RemotePath != "" {
			p, err := node.DetectPlatform(ctx, r)
			if err := cluster.CheckTool(s.Binary.ToolPath, p, err); err != nil {
				return fmt.Errorf("%w: %w", errBackupTool, err)
			}
		}
		return backup.CheckDir(ctx, r, byName[n.Name].sched.Job.Dir)
	})
	for _, name := range sortedErrs(errs) {
		err := errs[name]
		if errors.Is(err, errBackupTool) {
			diags.AddAttributeError(fwpath.Root("backup"), "Backup job cannot run on the node",
				fmt.Sprintf("Node %q: %v. Nothing was changed.", name, err))
			continue
		}
		if errors.Is(err, backup.ErrDirNotWritable) {
			diags.AddAttributeError(fwpath.Root("backup").AtName("dir"), "Backup dir not writable",
				fmt.Sprintf("Node %q: %v. Choose a directory the SSH user can create and write on every node that backs up. Nothing was changed.", name, err))
			continue
		}
		diags.AddError("Cannot check the backup dir", fmt.Sprintf("Node %q: %v. Nothing was changed.", name, err))
	}
}

// errBackupTool: the provider's binary, which the backup job runs next to
// remote_binary, cannot run on the node.
var errBackupTool = errors.New("the backup job cannot run on the node")

// toolUploader is the part of an SSH connection that uploads a local file.
type toolUploader interface {
	UploadFileSum(ctx context.Context, local, sum, p string, mode os.FileMode) (bool, error)
}

// installBackupTool uploads the provider's binary as a tool next to
// remote_binary (the job runs it); unchanged, it is not sent again.
func installBackupTool(ctx context.Context, s cluster.Spec, n cluster.Node, r node.Runner, sum string) error {
	if s.Binary.RemotePath == "" {
		return nil
	}
	u, ok := r.(toolUploader)
	if !ok {
		return fmt.Errorf("%s: cannot upload the provider binary", r.Target())
	}
	if _, err := u.UploadFileSum(ctx, s.Binary.ToolPath, sum, s.Layout(n).Tool, 0o755); err != nil {
		return fmt.Errorf("upload the provider binary as the backup job's tool: %w", err)
	}
	return nil
}

// removeBackups stops and removes the backup jobs from nodes (the backups
// stay). With warnOnly, a node that cannot be reached is a warning: a node
// being removed from the cluster may be dead, and its replacement must not
// wait for it.
func removeBackups(ctx context.Context, s cluster.Spec, nodes []cluster.Node, warnOnly bool, diags *diag.Diagnostics) {
	errs := backupNodes(ctx, s, nodes, func(n cluster.Node, r node.Runner) error {
		l := s.Layout(n)
		return backup.Remove(ctx, r, backupUnit(s), l.Tool, l.RunDir)
	})
	for _, name := range sortedErrs(errs) {
		if warnOnly {
			diags.AddWarning("Cannot remove the backup job", fmt.Sprintf("Node %q: %v. Remove the unit %s (or stop its backup loop) on that machine if it comes back.",
				name, errs[name], backupUnit(s)))
			continue
		}
		diags.AddError("Cannot remove the backup job", fmt.Sprintf("Node %q: %v.", name, errs[name]))
	}
}

// syncBackups installs the jobs of scheds, removes the job from the other
// nodes of s when clean is set (a backup block was there before), and waits
// for the first backup of every job that changed.
func syncBackups(ctx context.Context, s cluster.Spec, scheds []nodeSchedule, clean bool, diags *diag.Diagnostics) {
	byName := map[string]nodeSchedule{}
	for _, ns := range scheds {
		byName[ns.node.Name] = ns
	}
	var others []cluster.Node
	for _, n := range s.Nodes {
		if _, ok := byName[n.Name]; !ok {
			others = append(others, n)
		}
	}
	if clean && len(others) > 0 {
		removeBackups(ctx, s, others, false, diags)
	}
	if len(scheds) == 0 {
		return
	}
	before := map[string]string{}
	changed := map[string]bool{}
	var nodes []cluster.Node
	for _, ns := range scheds {
		nodes = append(nodes, ns.node)
	}
	var toolSum string
	if s.Binary.RemotePath != "" {
		sum, err := node.FileSHA256(s.Binary.ToolPath)
		if err != nil {
			diags.AddAttributeError(fwpath.Root("backup"), "Cannot read the provider binary",
				fmt.Sprintf("With remote_binary the backup job runs the provider's own executable on the nodes: %v.", err))
			return
		}
		toolSum = sum
	}
	var mu chanMutex = make(chan struct{}, 1)
	errs := backupNodes(ctx, s, nodes, func(n cluster.Node, r node.Runner) error {
		ns := byName[n.Name]
		if err := installBackupTool(ctx, s, n, r, toolSum); err != nil {
			return err
		}
		old, _, err := backup.Newest(ctx, r, ns.sched.Job.Dir, ns.sched.Job.Prefix)
		if err != nil {
			return err
		}
		if err := installBackupClientCert(ctx, s, n, r); err != nil {
			return err
		}
		c, err := backup.Install(ctx, r, ns.sched)
		mu.do(func() { before[n.Name], changed[n.Name] = old.Name, c })
		return err
	})
	for _, name := range sortedErrs(errs) {
		diags.AddError("Cannot install the backup job", fmt.Sprintf("Node %q: %v.", name, errs[name]))
	}
	if diags.HasError() || len(changed) == 0 {
		return
	}
	anyChanged := false
	for _, c := range changed {
		anyChanged = anyChanged || c
	}
	if !anyChanged {
		return
	}
	waitFirstBackup(ctx, s, scheds, before, diags)
}

// chanMutex is a mutex that cannot be copied by accident.
type chanMutex chan struct{}

func (m chanMutex) do(f func()) {
	m <- struct{}{}
	defer func() { <-m }()
	f()
}

// waitFirstBackup waits until the jobs took a new backup: on every node
// (all, a named node), or on any node (leader: only the leader's job takes
// one). A job that fails shows its log in the error.
func waitFirstBackup(ctx context.Context, s cluster.Spec, scheds []nodeSchedule, before map[string]string, diags *diag.Diagnostics) {
	leaderOnly := scheds[0].sched.Job.LeaderOnly
	wctx, cancel := context.WithTimeout(ctx, backupFirstWait)
	defer cancel()
	done := map[string]bool{}
	for {
		var nodes []cluster.Node
		for _, ns := range scheds {
			if !done[ns.node.Name] {
				nodes = append(nodes, ns.node)
			}
		}
		var mu chanMutex = make(chan struct{}, 1)
		newDone := map[string]bool{}
		_ = backupNodes(wctx, s, nodes, func(n cluster.Node, r node.Runner) error {
			for _, ns := range scheds {
				if ns.node.Name == n.Name {
					b, ok, err := backup.Newest(wctx, r, ns.sched.Job.Dir, ns.sched.Job.Prefix)
					if err == nil && ok && b.Name != before[n.Name] {
						mu.do(func() { newDone[n.Name] = true })
					}
					return err
				}
			}
			return nil
		})
		for k := range newDone {
			done[k] = true
		}
		if (leaderOnly && len(done) > 0) || len(done) == len(scheds) {
			return
		}
		select {
		case <-wctx.Done():
			var missing []string
			for _, ns := range scheds {
				if !done[ns.node.Name] {
					missing = append(missing, ns.node.Name)
				}
			}
			diags.AddAttributeError(fwpath.Root("backup"), "The first backup was not taken",
				fmt.Sprintf("The backup job was installed, but no new backup appeared on node(s) %s within %s. The job's log:\n%s",
					strings.Join(missing, ", "), backupFirstWait, backupLogs(ctx, s, scheds, missing)))
			return
		case <-time.After(time.Second):
		}
	}
}

// backupFirstWait bounds waitFirstBackup (a busy machine and a large
// database take their time).
var backupFirstWait = 3 * time.Minute

func backupLogs(ctx context.Context, s cluster.Spec, scheds []nodeSchedule, names []string) string {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var out []string
	for _, ns := range scheds {
		if !contains(names, ns.node.Name) {
			continue
		}
		unit := ns.sched.Unit
		logf := path.Join(ns.sched.RunDir, unit+".log")
		errs := backupNodes(lctx, s, []cluster.Node{ns.node}, func(n cluster.Node, r node.Runner) error {
			text, _ := r.Run(lctx, fmt.Sprintf("if [ -f %[1]s ]; then tail -n 20 %[1]s; else journalctl --no-pager -o cat -n 20 -u %[2]s 2>&1; fi",
				node.Quote(logf), node.Quote(unit+".service")))
			out = append(out, fmt.Sprintf("node %q:\n%s", n.Name, strings.TrimSpace(text)))
			return nil
		})
		if err := errs[ns.node.Name]; err != nil {
			out = append(out, fmt.Sprintf("node %q: %v", ns.node.Name, err))
		}
	}
	return strings.Join(out, "\n")
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// readBackups sets Backups from the nodes: the newest backup of each node
// that has one. Without backup, Backups is null. An unreachable node keeps
// what the state said about it.
func (m *clusterModel) readBackups(ctx context.Context, s cluster.Spec, diags *diag.Diagnostics) {
	b, d := m.backupConfig(ctx)
	diags.Append(d...)
	if b == nil {
		m.Backups = types.ListNull(types.ObjectType{AttrTypes: clusterBackupsAttrTypes})
		return
	}
	old := map[string]attr.Value{}
	if !m.Backups.IsNull() && !m.Backups.IsUnknown() {
		for _, e := range m.Backups.Elements() {
			if o, ok := e.(types.Object); ok {
				if n, ok := o.Attributes()["node"].(types.String); ok {
					old[n.ValueString()] = o
				}
			}
		}
	}
	found := map[string]backup.Info{}
	var mu chanMutex = make(chan struct{}, 1)
	prefix := func(n cluster.Node) string { return s.Name + "-" + n.Name }
	errs := backupNodes(ctx, s, s.Nodes, func(n cluster.Node, r node.Runner) error {
		info, ok, err := backup.Newest(ctx, r, b.Dir.ValueString(), prefix(n))
		if ok {
			mu.do(func() { found[n.Name] = info })
		}
		return err
	})
	var names []string
	for _, n := range s.Nodes {
		names = append(names, n.Name)
	}
	sort.Strings(names)
	elems := []attr.Value{}
	for _, name := range names {
		if err, failed := errs[name]; failed {
			diags.AddWarning("Cannot read the backups", fmt.Sprintf("Node %q: %v. Its entry in backups is kept as it was.", name, err))
			if o, ok := old[name]; ok {
				elems = append(elems, o)
			}
			continue
		}
		info, ok := found[name]
		if !ok {
			continue
		}
		o, d := types.ObjectValue(clusterBackupsAttrTypes, map[string]attr.Value{
			"node": types.StringValue(name), "name": types.StringValue(info.Name),
			"revision": types.Int64Value(info.Revision), "taken_at": types.StringValue(info.TakenAt.UTC().Format(time.RFC3339)),
		})
		diags.Append(d...)
		elems = append(elems, o)
	}
	list, d := types.ListValue(types.ObjectType{AttrTypes: clusterBackupsAttrTypes}, elems)
	diags.Append(d...)
	m.Backups = list
}

// warnStaleBackups warns at plan when the newest backup (of any node with
// node = "leader", of each node otherwise) is older than twice the
// interval.
func warnStaleBackups(ctx context.Context, plan, state clusterModel, diags *diag.Diagnostics) {
	b, _ := plan.backupConfig(ctx)
	if b == nil || b.Interval.IsUnknown() || state.Backups.IsNull() || state.Backups.IsUnknown() {
		return
	}
	interval, err := time.ParseDuration(b.Interval.ValueString())
	if err != nil {
		return
	}
	limit := 2 * interval
	now := time.Now()
	var stale []string
	var newest time.Time
	for _, e := range state.Backups.Elements() {
		o, ok := e.(types.Object)
		if !ok {
			continue
		}
		a := o.Attributes()
		n, _ := a["node"].(types.String)
		ts, _ := a["taken_at"].(types.String)
		t, err := time.Parse(time.RFC3339, ts.ValueString())
		if err != nil {
			continue
		}
		if t.After(newest) {
			newest = t
		}
		if age := now.Sub(t); age > limit {
			stale = append(stale, fmt.Sprintf("%s (newest %s, %s old)", n.ValueString(), ts.ValueString(), age.Round(time.Second)))
		}
	}
	if b.Node.ValueString() == backupNodeLeader {
		if !newest.IsZero() && now.Sub(newest) > limit {
			diags.AddAttributeWarning(fwpath.Root("backup"), "Backups are overdue",
				fmt.Sprintf("The newest backup of the cluster was taken at %s, %s ago: more than twice the interval (%s). "+
					"Check the backup job's log on the leader's node.", newest.UTC().Format(time.RFC3339), now.Sub(newest).Round(time.Second), interval))
		}
		return
	}
	if len(stale) > 0 {
		diags.AddAttributeWarning(fwpath.Root("backup"), "Backups are overdue",
			fmt.Sprintf("The newest backup of node(s) %s is older than twice the interval (%s). Check the backup job's log on those nodes.",
				strings.Join(stale, ", "), interval))
	}
}

// prepareBackups checks the backup block of m against s and the backup dir
// on the nodes, before anything changes, and returns the jobs to install
// once the cluster runs. Backups gets a placeholder until then.
func (m *clusterModel) prepareBackups(ctx context.Context, s cluster.Spec, diags *diag.Diagnostics) []nodeSchedule {
	if m.Backups.IsUnknown() {
		m.Backups = types.ListNull(types.ObjectType{AttrTypes: clusterBackupsAttrTypes})
	}
	m.validateBackup(ctx, diags)
	b, d := m.backupConfig(ctx)
	diags.Append(d...)
	if diags.HasError() {
		return nil
	}
	scheds := backupSchedules(s, b)
	checkBackupDirs(ctx, s, scheds, diags)
	return scheds
}

// keepBackupsIfUnchanged keeps the state's backups in a plan that changes
// nothing else. The framework marks every computed attribute unknown when
// the configuration differs from the state in any way, including a block
// whose plan modifier then keeps the state's value (restore or recovery
// removed after use): without this, that plan would show backups as
// "known after apply" and never be empty.
func keepBackupsIfUnchanged(ctx context.Context, plan *clusterModel, state clusterModel, prior tfsdk.State) bool {
	if !plan.Backups.IsUnknown() && !plan.TLSNotAfter.IsUnknown() && !plan.TLSCertsNotAfter.IsUnknown() {
		return false
	}
	// The certificates' expiries are read like the backups: a plan that
	// changes nothing keeps them too (planCertRenewal, after this, marks
	// them unknown when a renewal is due).
	candidate := *plan
	candidate.Backups, candidate.TLSNotAfter, candidate.TLSCertsNotAfter = state.Backups, state.TLSNotAfter, state.TLSCertsNotAfter
	same := tfsdk.State{Schema: prior.Schema, Raw: prior.Raw.Copy()}
	if diags := same.Set(ctx, candidate); diags.HasError() || !same.Raw.Equal(prior.Raw) {
		return false
	}
	plan.Backups, plan.TLSNotAfter, plan.TLSCertsNotAfter = state.Backups, state.TLSNotAfter, state.TLSCertsNotAfter
	return true
}
