package provider

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/etcdconf"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/membership"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/snapshot"
)

// The attribute validators of the provider, its resources and data sources,
// the shared ones and those of one resource alike. Each checks known values
// only; unknown and null values pass.

var (
	_ validator.String = durationValidator{}
	_ validator.String = endpointValidator{}
	_ validator.String = leaseIDValidator{}
	_ validator.String = base64Validator{}
	_ validator.List   = endpointsNotEmptyValidator{}
	_ validator.String = peerURLValidator{}
	_ validator.String = nameValidator{}
	_ validator.Bool   = onlyTrueValidator{}
	_ validator.List   = nodesValidator{}
	_ validator.Map    = settingsValidator{}
	_ validator.Object = clusterTLSValidator{}
)

// endpointsNotEmptyValidator rejects `endpoints = []`, which would silently
// fall back to ETCDCTL_ENDPOINTS.
type endpointsNotEmptyValidator struct{}

func (endpointsNotEmptyValidator) Description(context.Context) string {
	return "at least one endpoint"
}

func (v endpointsNotEmptyValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (endpointsNotEmptyValidator) ValidateList(_ context.Context, req validator.ListRequest, resp *validator.ListResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() || len(req.ConfigValue.Elements()) > 0 {
		return
	}
	resp.Diagnostics.AddAttributeError(req.Path, "No etcd endpoints",
		fmt.Sprintf("%s is an empty list: list at least one client URL, e.g. [\"https://10.0.0.1:2379\"], or "+
			"remove the attribute to use %s.", req.Path, client.EnvEndpoints))
}

// durationValidator accepts a positive Go duration such as "5s".
type durationValidator struct{}

func (durationValidator) Description(context.Context) string {
	return `a positive Go duration, e.g. "5s", "500ms" or "1m"`
}

func (v durationValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (durationValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := client.ParseTimeout(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid duration",
			fmt.Sprintf("%s: %v.", req.Path, err))
	}
}

// endpointValidator accepts one etcd client URL.
type endpointValidator struct{}

func (endpointValidator) Description(context.Context) string {
	return "an etcd client URL such as https://10.0.0.1:2379"
}

func (v endpointValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (endpointValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := client.ValidateEndpoint(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid etcd endpoint", fmt.Sprintf("%s: %v.", req.Path, err))
	}
}

// leaseIDValidator accepts a lease ID in etcdctl's hexadecimal form.
type leaseIDValidator struct{}

func (leaseIDValidator) Description(context.Context) string {
	return `a lease ID in hexadecimal as printed by etcdctl, e.g. "694d7c8c1f0c7a0b"`
}

func (v leaseIDValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (leaseIDValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if _, err := client.ParseLeaseID(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid lease ID", fmt.Sprintf("%s: %v.", req.Path, err))
	}
}

// base64Validator accepts standard, padded base64 in canonical form, so that
// what the provider reads back (base64 of the stored bytes) is the same
// string and no diff appears after apply.
type base64Validator struct{}

func (base64Validator) Description(context.Context) string {
	return "standard base64 with padding, as base64encode() and filebase64() produce"
}

func (v base64Validator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (base64Validator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	s := req.ConfigValue.ValueString()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid base64",
			fmt.Sprintf("%s is not valid standard base64 (%v). Encode binary data with base64encode() or "+
				"filebase64(); for text, use value instead.", req.Path, err))
		return
	}
	if canonical := base64.StdEncoding.EncodeToString(b); canonical != s {
		resp.Diagnostics.AddAttributeError(req.Path, "Non-canonical base64",
			fmt.Sprintf("%s decodes, but not from its canonical form (extra whitespace, or padding bits "+
				"set): write %q instead, as base64encode() would.", req.Path, truncate(canonical, 80)))
	}
}

// nodesValidator rejects duplicate node names at plan time.
type nodesValidator struct{}

func (nodesValidator) Description(context.Context) string { return "node names must be unique" }
func (v nodesValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (nodesValidator) ValidateList(ctx context.Context, req validator.ListRequest, resp *validator.ListResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	seen := map[string]int{}
	for i, e := range req.ConfigValue.Elements() {
		obj, ok := e.(types.Object)
		if !ok || obj.IsUnknown() {
			continue
		}
		name, ok := obj.Attributes()["name"].(types.String)
		if !ok || name.IsUnknown() || name.IsNull() {
			continue
		}
		if j, dup := seen[name.ValueString()]; dup {
			resp.Diagnostics.AddAttributeError(req.Path.AtListIndex(i).AtName("name"), "Duplicate node name",
				fmt.Sprintf("nodes[%d] and nodes[%d] are both named %q; node names are member names and must be unique.", j, i, name.ValueString()))
		}
		seen[name.ValueString()] = i
	}
	if len(req.ConfigValue.Elements()) == 0 {
		resp.Diagnostics.AddAttributeError(req.Path, "No nodes", "nodes is empty: list at least one node (three or five for a fault-tolerant cluster).")
	}
}

// settingsValidator checks settings keys and values with etcdconf.
type settingsValidator struct{}

func (settingsValidator) Description(context.Context) string {
	return "keys and values of etcd's config file"
}
func (v settingsValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (settingsValidator) ValidateMap(ctx context.Context, req validator.MapRequest, resp *validator.MapResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	settings := map[string]string{}
	for k, v := range req.ConfigValue.Elements() {
		if s, ok := v.(types.String); ok && !s.IsUnknown() && !s.IsNull() {
			settings[k] = s.ValueString()
		}
	}
	err := etcdconf.ValidateSettings(settings)
	for _, e := range unjoinErr(err) {
		var se *etcdconf.SettingError
		if errors.As(e, &se) {
			resp.Diagnostics.AddAttributeError(req.Path.AtMapKey(se.Key), "Invalid etcd setting", se.Error()+".")
		} else if e != nil {
			resp.Diagnostics.AddAttributeError(req.Path, "Invalid etcd settings", e.Error())
		}
	}
}

// clusterTLSValidator: auto, or a CA certificate with its key.
type clusterTLSValidator struct{}

func (clusterTLSValidator) Description(context.Context) string {
	return "either auto = true, or ca_cert_pem with ca_key_pem"
}
func (v clusterTLSValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (clusterTLSValidator) ValidateObject(ctx context.Context, req validator.ObjectRequest, resp *validator.ObjectResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	attrs := req.ConfigValue.Attributes()
	isSet := func(name string) (set, unknown bool) {
		v := attrs[name]
		if v == nil {
			return false, false
		}
		if b, ok := v.(types.Bool); ok {
			return b.ValueBool(), b.IsUnknown()
		}
		return !v.IsNull(), v.IsUnknown()
	}
	auto, u1 := isSet("auto")
	cert, u2 := isSet("ca_cert_pem")
	key, u3 := isSet("ca_key_pem")
	keyWO, u4 := isSet("ca_key_pem_wo")
	key = key || keyWO
	if u1 || u2 || u3 || u4 {
		return
	}
	switch {
	case auto && (cert || key):
		resp.Diagnostics.AddAttributeError(req.Path, "Conflicting TLS settings", "Set either auto = true or ca_cert_pem and ca_key_pem, not both.")
	case !auto && !cert && !key:
		resp.Diagnostics.AddAttributeError(req.Path, "Incomplete TLS settings", "Set auto = true to generate a certificate authority, or ca_cert_pem and ca_key_pem to use yours; to run without TLS, remove tls.")
	case !auto && cert != key:
		resp.Diagnostics.AddAttributeError(req.Path, "Incomplete TLS settings", "ca_cert_pem and ca_key_pem go together: the provider issues the member and client certificates from that CA.")
	}
}

// peerURLValidator checks a peer URL the way etcd will.
type peerURLValidator struct{}

func (peerURLValidator) Description(context.Context) string {
	return "an etcd peer URL such as https://10.0.0.4:2380"
}

func (v peerURLValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (peerURLValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := membership.ValidatePeerURL(req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid peer URL", err.Error()+".")
	}
}

// nameValidator checks an etcd user or role name.
type nameValidator struct {
	kind string
}

func (v nameValidator) Description(context.Context) string {
	return fmt.Sprintf("a non-empty %s name without control characters or surrounding spaces", v.kind)
}

func (v nameValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (v nameValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	if err := client.ValidName(v.kind, req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid "+v.kind+" name", err.Error()+".")
	}
}

// onlyTrueValidator accepts true (or no value).
type onlyTrueValidator struct{}

func (onlyTrueValidator) Description(context.Context) string { return "must be true" }

func (v onlyTrueValidator) MarkdownDescription(ctx context.Context) string { return v.Description(ctx) }

func (onlyTrueValidator) ValidateBool(_ context.Context, req validator.BoolRequest, resp *validator.BoolResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() || req.ConfigValue.ValueBool() {
		return
	}
	resp.Diagnostics.AddAttributeError(req.Path, "enabled must be true",
		"etcd_auth turns authentication on. To turn it off, remove the etcd_auth resource: destroying it disables authentication.")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// snapshotPathValidator refuses, at plan, a snapshot path whose directory
// does not exist, or that names a directory.
type snapshotPathValidator struct{}

func (snapshotPathValidator) Description(context.Context) string {
	return "a file path in an existing directory"
}

func (v snapshotPathValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (snapshotPathValidator) ValidateString(_ context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	p := req.ConfigValue.ValueString()
	if p == "" {
		resp.Diagnostics.AddAttributeError(req.Path, "Empty snapshot path", "path must name the file to write the snapshot to.")
		return
	}
	if err := snapshot.CheckDir(p); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Snapshot directory does not exist",
			fmt.Sprintf("path %q: %v. The provider does not create directories.", p, err))
		return
	}
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		resp.Diagnostics.AddAttributeError(req.Path, "Snapshot path is a directory",
			fmt.Sprintf("path %q is a directory: name a file in it, e.g. %q.", p, filepath.Join(p, "etcd.db")))
	}
}

// compactionRetentionValidator checks auto_compaction_retention against
// the configured (or default) auto_compaction_mode.
type compactionRetentionValidator struct{}

func (compactionRetentionValidator) Description(context.Context) string {
	return "a duration (periodic) or a number of revisions (revision)"
}
func (v compactionRetentionValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (compactionRetentionValidator) ValidateString(ctx context.Context, req validator.StringRequest, resp *validator.StringResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	var mode types.String
	resp.Diagnostics.Append(req.Config.GetAttribute(ctx, req.Path.ParentPath().AtName("auto_compaction_mode"), &mode)...)
	if mode.IsUnknown() {
		return
	}
	m := defaultCompactionMode
	if !mode.IsNull() {
		m = mode.ValueString()
	}
	if err := checkCompactionRetention(m, req.ConfigValue.ValueString()); err != nil {
		resp.Diagnostics.AddAttributeError(req.Path, "Invalid compaction retention", fmt.Sprintf("%s: %v.", req.Path, err))
	}
}

// compactionSettingsValidator rejects the compaction keys in settings:
// they have attributes of their own.
type compactionSettingsValidator struct{}

func (compactionSettingsValidator) Description(context.Context) string {
	return "no auto-compaction keys: they have attributes of their own"
}
func (v compactionSettingsValidator) MarkdownDescription(ctx context.Context) string {
	return v.Description(ctx)
}

func (compactionSettingsValidator) ValidateMap(_ context.Context, req validator.MapRequest, resp *validator.MapResponse) {
	if req.ConfigValue.IsNull() || req.ConfigValue.IsUnknown() {
		return
	}
	for attr, key := range compactionKeys {
		if _, ok := req.ConfigValue.Elements()[key]; ok {
			resp.Diagnostics.Append(diag.NewAttributeErrorDiagnostic(req.Path.AtMapKey(key), "Setting has an attribute of its own",
				fmt.Sprintf("settings[%q]: set %s = ... instead (the compaction settings are attributes of etcd_cluster, with defaults).", key, attr)))
		}
	}
}
