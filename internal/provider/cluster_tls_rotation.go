package provider

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringdefault"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/cluster"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/pki"
)

// Certificate lifetimes and rotation of etcd_cluster (tls.validity,
// tls.renew_before, tls.ca_key_pem_wo, tls_not_after): the work on the
// nodes is internal/cluster's rotate.go.
//
// Where each secret lives:
//   - tls.auto: the generated CA key is in the resource's private state
//     (the "private" field of the state file, base64-encoded JSON), with
//     its certificate: in the state file, not in plans or outputs. Phase 1
//     of a CA rotation replaces it with the new CA's (cluster_ca_rotation.go).
//   - tls.ca_key_pem: a sensitive argument, so in the state file (and the
//     configuration), hidden from plan output.
//   - tls.ca_key_pem_wo: write-only, in the configuration only; Terraform
//     sends it to the provider for each plan and apply and never stores it.
//   - client_key_pem: a sensitive attribute, in the state file.
//   - member keys: only on their nodes (<install_dir>/pki/*-key.pem, 0600).

// Defaults and bounds of the certificate lifetimes.
const (
	defaultCertValidity    = "365d"
	defaultCertRenewBefore = "30d"
)

// minCertValidity is the shortest tls.validity accepted. The tests lower it
// to a minute (cluster_tls_rotation_test.go) to see certificates expire;
// nothing a user can set changes it.
var minCertValidity = time.Hour

// parseCertDuration parses a Go duration ("8760h", "90m") or a whole
// number of days ("30d").
func parseCertDuration(s string) (time.Duration, error) {
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a whole number of days such as \"30d\"", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration such as \"365d\", \"720h\" or \"90m\"", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", s)
	}
	return d, nil
}

// clusterTLSAttributes are the attributes of etcd_cluster's tls.
func clusterTLSAttributes() map[string]schema.Attribute {
	return map[string]schema.Attribute{
		"auto": schema.BoolAttribute{Optional: true, MarkdownDescription: "Generate the certificate authority."},
		"auto_ca_version": schema.Int64Attribute{Optional: true,
			MarkdownDescription: "With `auto`: any number; changing it (also from unset) generates a new CA and rolls it out in three " +
				"applies (see `tls_ca_rotation_phase`). The new CA's key replaces the old one in the resource's private state."},
		"ca_cert_pem": schema.StringAttribute{Optional: true, MarkdownDescription: "Your CA certificate (PEM), instead of `auto`. Its key is `ca_key_pem` or `ca_key_pem_wo`; a key that does not match is rejected at plan time. " +
			"Changing it (with its key) rolls the new CA out in three applies, the cluster serving throughout (see `tls_ca_rotation_phase`); " +
			"during the first the old key is still read from the state, or, if it was write-only, not needed unless a member's certificates are due."},
		"ca_key_pem": schema.StringAttribute{Optional: true, Sensitive: true,
			MarkdownDescription: "The key of `ca_cert_pem` (PEM). Sensitive, but kept in the state file; use `ca_key_pem_wo` to keep it out of the state."},
		"ca_key_pem_wo": schema.StringAttribute{Optional: true, Sensitive: true, WriteOnly: true,
			MarkdownDescription: "The key of `ca_cert_pem` (PEM) as a write-only argument (Terraform 1.11+, OpenTofu 1.11+): " +
				"Terraform passes it to the provider on every plan and apply and never stores it, in the state or the plan. " +
				"Needs `ca_key_pem_wo_version`. Conflicts with `ca_key_pem`."},
		"ca_key_pem_wo_version": schema.Int64Attribute{Optional: true,
			MarkdownDescription: "Any number, required with `ca_key_pem_wo`; change it when the key changes. Stored in the state (the key is not)."},
		"validity": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString(defaultCertValidity),
			MarkdownDescription: "How long the member and client certificates the provider issues last: a whole number of days (`\"90d\"`) " +
				"or a duration (`\"2160h\"`). Defaults to `\"365d\"`; at least one hour. Certificates are also clipped to the CA's " +
				"expiry. Shortening it renews, at the next apply, the certificates that outlast the new validity."},
		"renew_before": schema.StringAttribute{Optional: true, Computed: true, Default: stringdefault.StaticString(defaultCertRenewBefore),
			MarkdownDescription: "Renew a certificate this long before it expires (same format as `validity`, and shorter than it). " +
				"Defaults to `\"30d\"`. Every plan compares the certificates found on the nodes (`tls_not_after`) with it; an apply " +
				"renews those inside the window one member at a time, each member restarted behind the quorum checks of a rolling " +
				"restart. An expired certificate (clients refused) is renewed on every member at once by the next apply."},
	}
}

// addTLSRotationAttributes adds the computed certificate expiries to
// etcd_cluster's schema.
func addTLSRotationAttributes(attrs map[string]schema.Attribute) {
	attrs["tls_not_after"] = schema.StringAttribute{Computed: true,
		MarkdownDescription: "With `tls`: the earliest expiry (RFC 3339, UTC) of the certificates in use: each member's server and " +
			"peer certificate as found on its node (presented on its ports, or read over SSH when it does not answer) and " +
			"`client_cert_pem`. Read on every refresh."}
	attrs["tls_certificates_not_after"] = schema.MapAttribute{Computed: true, ElementType: types.StringType,
		MarkdownDescription: "With `tls`: the expiry (RFC 3339, UTC) of each certificate in `tls_not_after`, keyed `<node>/server`, " +
			"`<node>/peer` and `client`."}
}

// tlsDurations are the configured validity and renewal window, the
// defaults where unset or unknown (validation reports bad values).
func (t *clusterTLSModel) durations() (validity, renewBefore time.Duration) {
	validity, _ = parseCertDuration(defaultCertValidity)
	renewBefore, _ = parseCertDuration(defaultCertRenewBefore)
	if t == nil {
		return validity, renewBefore
	}
	if !t.Validity.IsNull() && !t.Validity.IsUnknown() {
		if d, err := parseCertDuration(t.Validity.ValueString()); err == nil {
			validity = d
		}
	}
	if !t.RenewBefore.IsNull() && !t.RenewBefore.IsUnknown() {
		if d, err := parseCertDuration(t.RenewBefore.ValueString()); err == nil {
			renewBefore = d
		}
	}
	return validity, renewBefore
}

// validateTLSRotation checks tls.validity, tls.renew_before, the
// write-only CA key and that the CA key matches tls.ca_cert_pem.
func validateTLSRotation(ctx context.Context, m clusterModel, diags *diag.Diagnostics) {
	t, d := m.tlsConfig(ctx)
	diags.Append(d...)
	if t == nil || d.HasError() {
		return
	}
	p := path.Root("tls")
	var validity, renewBefore time.Duration
	okValidity, okRenew := false, false
	if !t.Validity.IsNull() && !t.Validity.IsUnknown() {
		v, err := parseCertDuration(t.Validity.ValueString())
		switch {
		case err != nil:
			diags.AddAttributeError(p.AtName("validity"), "Invalid certificate validity", "tls.validity: "+err.Error()+".")
		case v < minCertValidity:
			diags.AddAttributeError(p.AtName("validity"), "Certificate validity too short",
				fmt.Sprintf("tls.validity %q is shorter than %s; certificates would expire before they can be renewed. Use e.g. \"90d\".", t.Validity.ValueString(), minCertValidity))
		default:
			validity, okValidity = v, true
		}
	}
	if !t.RenewBefore.IsNull() && !t.RenewBefore.IsUnknown() {
		v, err := parseCertDuration(t.RenewBefore.ValueString())
		if err != nil {
			diags.AddAttributeError(p.AtName("renew_before"), "Invalid renewal window", "tls.renew_before: "+err.Error()+".")
		} else {
			renewBefore, okRenew = v, true
		}
	}
	if okValidity && okRenew && renewBefore >= validity {
		diags.AddAttributeError(p.AtName("renew_before"), "Renewal window not shorter than the validity",
			fmt.Sprintf("tls.renew_before (%s) must be shorter than tls.validity (%s): otherwise every certificate is due for renewal "+
				"as soon as it is issued. Lower renew_before (e.g. a twelfth of the validity) or raise validity.",
				t.RenewBefore.ValueString(), t.Validity.ValueString()))
	}

	if !t.AutoCAVersion.IsNull() && !t.Auto.IsUnknown() && !t.Auto.ValueBool() {
		diags.AddAttributeError(p.AtName("auto_ca_version"), "auto_ca_version without auto",
			"tls.auto_ca_version versions the CA the provider generates (tls.auto = true). With your own CA, change tls.ca_cert_pem "+
				"(and its key) to rotate it, and remove auto_ca_version.")
	}

	// The write-only CA key.
	wo, woVersion := !t.CAKeyPEMWO.IsNull(), !t.CAKeyPEMWOVersion.IsNull()
	switch {
	case wo && !t.CAKeyPEM.IsNull():
		diags.AddAttributeError(p.AtName("ca_key_pem_wo"), "Conflicting CA key settings",
			"tls.ca_key_pem and tls.ca_key_pem_wo are both set; set one (ca_key_pem_wo keeps the key out of the state).")
	case wo && !woVersion:
		diags.AddAttributeError(p.AtName("ca_key_pem_wo_version"), "Missing ca_key_pem_wo_version",
			"tls.ca_key_pem_wo is write-only, so the provider cannot tell when it changes. Set tls.ca_key_pem_wo_version (any number) "+
				"and change it when the key changes.")
	case !wo && woVersion:
		diags.AddAttributeError(p.AtName("ca_key_pem_wo"), "Missing ca_key_pem_wo",
			"tls.ca_key_pem_wo_version is set but tls.ca_key_pem_wo is not; set ca_key_pem_wo, or remove ca_key_pem_wo_version.")
	}

	// The CA key must be the CA certificate's.
	key, keyAttr := t.CAKeyPEM, "ca_key_pem"
	if wo {
		key, keyAttr = t.CAKeyPEMWO, "ca_key_pem_wo"
	}
	if t.CACertPEM.IsNull() || t.CACertPEM.IsUnknown() || key.IsNull() || key.IsUnknown() {
		return
	}
	if _, err := pki.ParseCertificatePEM([]byte(t.CACertPEM.ValueString())); err != nil {
		diags.AddAttributeError(p.AtName("ca_cert_pem"), "Invalid CA certificate", "tls.ca_cert_pem: "+err.Error()+".")
		return
	}
	if _, err := pki.LoadCA([]byte(t.CACertPEM.ValueString()), []byte(key.ValueString())); err != nil {
		diags.AddAttributeError(p.AtName("ca_cert_pem"), "CA certificate and key do not match",
			fmt.Sprintf("tls.ca_cert_pem and tls.%s: %v. Give the CA certificate and the key it was made with.", keyAttr, err))
	}
}

// withCAKeyWO returns m with tls.ca_key_pem set to the configured
// tls.ca_key_pem_wo, for tlsMaterial only: the result must never be
// stored.
func (m clusterModel) withCAKeyWO(ctx context.Context, config tfsdk.Config, diags *diag.Diagnostics) clusterModel {
	if m.TLS.IsNull() || m.TLS.IsUnknown() {
		return m
	}
	var wo types.String
	diags.Append(config.GetAttribute(ctx, path.Root("tls").AtName("ca_key_pem_wo"), &wo)...)
	if wo.IsNull() || wo.IsUnknown() {
		return m
	}
	attrs := m.TLS.Attributes()
	copied := make(map[string]attr.Value, len(attrs))
	for k, v := range attrs {
		copied[k] = v
	}
	copied["ca_key_pem"] = wo
	obj, d := types.ObjectValue(m.TLS.AttributeTypes(ctx), copied)
	diags.Append(d...)
	m.TLS = obj
	return m
}

// tlsRequiresReplace replaces the cluster when TLS is turned on or off; a
// new certificate authority is a CA rotation (cluster_ca_rotation.go).
type tlsRequiresReplace struct{}

var _ planmodifier.Object = tlsRequiresReplace{}

func (tlsRequiresReplace) Description(context.Context) string {
	return "Turning TLS on or off replaces the cluster."
}

func (m tlsRequiresReplace) MarkdownDescription(ctx context.Context) string {
	return m.Description(ctx)
}

func (tlsRequiresReplace) PlanModifyObject(_ context.Context, req planmodifier.ObjectRequest, resp *planmodifier.ObjectResponse) {
	if req.State.Raw.IsNull() || req.Plan.Raw.IsNull() || req.PlanValue.IsUnknown() {
		return
	}
	if req.StateValue.IsNull() != req.PlanValue.IsNull() {
		resp.RequiresReplace = true
	}
}

// clusterSpecTLS sets the lifetimes of t from the plan.
func (m clusterModel) withLifetimes(ctx context.Context, t *cluster.TLS) {
	if t == nil {
		return
	}
	cfg, _ := m.tlsConfig(ctx)
	t.Validity, t.RenewBefore = cfg.durations()
}

// certExpiry reads the expiry of the member certificates on the nodes and
// of the client certificate into tls_not_after and
// tls_certificates_not_after. A node that cannot be read is a warning; its
// certificates are left out.
func (m *clusterModel) certExpiry(ctx context.Context, s cluster.Spec, diags *diag.Diagnostics) {
	if s.TLS == nil {
		m.TLSNotAfter, m.TLSCertsNotAfter = types.StringNull(), types.MapNull(types.StringType)
		return
	}
	c := cluster.New(s)
	defer c.Close()
	expiry, err := c.CertExpiry(ctx)
	if err != nil {
		diags.AddWarning("Cannot read every member's certificates",
			fmt.Sprintf("Cluster %q: %v. Their expiry is left out of tls_not_after until the node answers.", s.Name, err))
	}
	if expiry == nil {
		expiry = map[string]time.Time{}
	}
	if s.TLS.Client != nil && s.TLS.Client.Cert != nil {
		expiry["client"] = s.TLS.Client.Cert.NotAfter.UTC()
	}
	values := map[string]attr.Value{}
	var earliest time.Time
	for k, t := range expiry {
		values[k] = types.StringValue(t.Format(time.RFC3339))
		if earliest.IsZero() || t.Before(earliest) {
			earliest = t
		}
	}
	m.TLSCertsNotAfter = types.MapValueMust(types.StringType, values)
	m.TLSNotAfter = types.StringNull()
	if !earliest.IsZero() {
		m.TLSNotAfter = types.StringValue(earliest.Format(time.RFC3339))
	}
}

// planCertRenewal marks the certificate expiries unknown, and the client
// certificate when it is due, when any certificate in the state's
// tls_certificates_not_after of a node that stays is due for renewal
// (cluster.CertDue), and says so in a warning: which certificates, and
// when they expire. It reports whether it changed the plan.
// nullCertExpiriesWithoutTLS plans the certificates' expiries as null for
// a cluster without TLS (the apply finds none), instead of unknown.
func nullCertExpiriesWithoutTLS(plan *clusterModel) bool {
	if !plan.TLS.IsNull() || (plan.TLSNotAfter.IsNull() && plan.TLSCertsNotAfter.IsNull()) {
		return false
	}
	plan.TLSNotAfter, plan.TLSCertsNotAfter = types.StringNull(), types.MapNull(types.StringType)
	return true
}

func planCertRenewal(ctx context.Context, plan *clusterModel, state clusterModel, diags *diag.Diagnostics) bool {
	if plan.TLS.IsNull() || plan.TLS.IsUnknown() || state.TLS.IsNull() || state.TLSCertsNotAfter.IsNull() || state.TLSCertsNotAfter.IsUnknown() {
		return false
	}
	cfg, d := plan.tlsConfig(ctx)
	if d.HasError() {
		return false
	}
	validity, renewBefore := cfg.durations()
	keep := map[string]bool{"client": true}
	nodes, _ := plan.nodes(ctx)
	for _, n := range nodes {
		keep[n.Name.ValueString()+"/server"] = true
		keep[n.Name.ValueString()+"/peer"] = true
	}
	now := time.Now()
	var due []string
	clientDue := false
	for k, v := range state.TLSCertsNotAfter.Elements() {
		s, ok := v.(types.String)
		if !ok || !keep[k] {
			continue
		}
		t, err := time.Parse(time.RFC3339, s.ValueString())
		if err != nil || !cluster.CertDue(t, now, validity, renewBefore) {
			continue
		}
		why := "expires " + s.ValueString()
		if !t.After(now) {
			why = "expired " + s.ValueString()
		} else if t.After(now.Add(validity)) {
			why += ", later than tls.validity allows"
		}
		due = append(due, fmt.Sprintf("%s (%s)", k, why))
		clientDue = clientDue || k == "client"
	}
	if len(due) == 0 {
		return false
	}
	sort.Strings(due)
	plan.TLSNotAfter = types.StringUnknown()
	plan.TLSCertsNotAfter = types.MapUnknown(types.StringType)
	if clientDue {
		plan.ClientCertPEM, plan.ClientKeyPEM = types.StringUnknown(), types.StringUnknown()
	}
	diags.AddWarning("Certificates will be renewed",
		fmt.Sprintf("Cluster %q: %s %s due (tls.renew_before = %s, tls.validity = %s). The apply issues new certificates from the "+
			"cluster's CA and switches one member at a time, each restarted only while the others keep a quorum; when no member "+
			"answers (expired certificates), every member at once.",
			plan.Name.ValueString(), strings.Join(due, ", "), map[bool]string{true: "is", false: "are"}[len(due) == 1], renewBefore, validity))
	return true
}
