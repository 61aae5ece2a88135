package provider

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/cluster"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/memberhost"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/pki"
)

// clusterModel maps etcd_cluster.
type clusterModel struct {
	ID                types.String `tfsdk:"id"`
	Name              types.String `tfsdk:"name"`
	SSH               types.Object `tfsdk:"ssh"`
	Nodes             types.List   `tfsdk:"nodes"`
	ClientPort        types.Int64  `tfsdk:"client_port"`
	PeerPort          types.Int64  `tfsdk:"peer_port"`
	Settings          types.Map    `tfsdk:"settings"`
	TLS               types.Object `tfsdk:"tls"`
	BinaryPath        types.String `tfsdk:"binary_path"`
	RemoteBinary      types.String `tfsdk:"remote_binary"`
	ServiceManager    types.String `tfsdk:"service_manager"`
	InstallDir        types.String `tfsdk:"install_dir"`
	DataDir           types.String `tfsdk:"data_dir"`
	WipeDataOnDestroy types.Bool   `tfsdk:"wipe_data_on_destroy"`
	Timeouts          types.Object `tfsdk:"timeouts"`
	Restore           types.Object `tfsdk:"restore"`
	Recovery          types.Object `tfsdk:"recovery"`
	Backup            types.Object `tfsdk:"backup"`

	// Compaction settings of their own: see cluster_compaction.go.
	AutoCompactionMode      types.String `tfsdk:"auto_compaction_mode"`
	AutoCompactionRetention types.String `tfsdk:"auto_compaction_retention"`
	// Defragmentation and NOSPACE: see cluster_maintenance.go.
	Maintenance types.Object `tfsdk:"maintenance"`

	// Server versions: see cluster_upgrade.go.
	ServerVersion  types.String `tfsdk:"server_version"`
	ServerVersions types.Map    `tfsdk:"server_versions"`

	Endpoints     types.List   `tfsdk:"endpoints"`
	ClusterID     types.String `tfsdk:"cluster_id"`
	Members       types.List   `tfsdk:"members"`
	CACertPEM     types.String `tfsdk:"ca_cert_pem"`
	ClientCertPEM types.String `tfsdk:"client_cert_pem"`
	ClientKeyPEM  types.String `tfsdk:"client_key_pem"`
	BinarySHA256  types.String `tfsdk:"binary_sha256"`
	Backups       types.List   `tfsdk:"backups"`

	// Certificate expiry: see cluster_tls_rotation.go.
	TLSNotAfter      types.String `tfsdk:"tls_not_after"`
	TLSCertsNotAfter types.Map    `tfsdk:"tls_certificates_not_after"`
	// CA rotation: see cluster_ca_rotation.go.
	TLSCARotationPhase types.Int64 `tfsdk:"tls_ca_rotation_phase"`
}

type clusterNodeModel struct {
	Name          types.String `tfsdk:"name"`
	Host          types.String `tfsdk:"host"`
	PeerAddress   types.String `tfsdk:"peer_address"`
	ClientAddress types.String `tfsdk:"client_address"`
	InstallDir    types.String `tfsdk:"install_dir"`
	DataDir       types.String `tfsdk:"data_dir"`
}

type clusterTLSModel struct {
	Auto              types.Bool   `tfsdk:"auto"`
	AutoCAVersion     types.Int64  `tfsdk:"auto_ca_version"`
	CACertPEM         types.String `tfsdk:"ca_cert_pem"`
	CAKeyPEM          types.String `tfsdk:"ca_key_pem"`
	CAKeyPEMWO        types.String `tfsdk:"ca_key_pem_wo"`
	CAKeyPEMWOVersion types.Int64  `tfsdk:"ca_key_pem_wo_version"`
	Validity          types.String `tfsdk:"validity"`
	RenewBefore       types.String `tfsdk:"renew_before"`
}

var clusterNodeAttrTypes = map[string]attr.Type{
	"name": types.StringType, "host": types.StringType, "peer_address": types.StringType,
	"client_address": types.StringType, "install_dir": types.StringType, "data_dir": types.StringType,
}

var clusterMemberAttrTypes = map[string]attr.Type{
	"id": types.StringType, "name": types.StringType,
	"peer_urls": types.ListType{ElemType: types.StringType}, "client_urls": types.ListType{ElemType: types.StringType},
	"is_learner": types.BoolType,
}

// clusterTimeouts are the defaults of etcd_cluster's timeouts.
var clusterTimeouts = operationTimeouts{Create: 20 * time.Minute, Update: 30 * time.Minute, Delete: 10 * time.Minute}

// timeout returns the configured timeout for op ("create", "update",
// "delete").
func (m clusterModel) timeout(ctx context.Context, op string) (time.Duration, diag.Diagnostics) {
	return clusterTimeouts.get(ctx, m.Timeouts, op)
}

// nodes returns the node list.
func (m clusterModel) nodes(ctx context.Context) ([]clusterNodeModel, diag.Diagnostics) {
	var out []clusterNodeModel
	if m.Nodes.IsNull() || m.Nodes.IsUnknown() {
		return nil, nil
	}
	diags := m.Nodes.ElementsAs(ctx, &out, false)
	return out, diags
}

func (n clusterNodeModel) node() cluster.Node {
	return cluster.Node{
		Name: n.Name.ValueString(), Host: n.Host.ValueString(),
		PeerAddress: n.PeerAddress.ValueString(), ClientAddress: n.ClientAddress.ValueString(),
		InstallDir: n.InstallDir.ValueString(), DataDir: n.DataDir.ValueString(),
	}
}

// tlsMode reports whether the cluster uses TLS.
func (m clusterModel) tlsConfig(ctx context.Context) (*clusterTLSModel, diag.Diagnostics) {
	if m.TLS.IsNull() || m.TLS.IsUnknown() {
		return nil, nil
	}
	var t clusterTLSModel
	diags := m.TLS.As(ctx, &t, objectAsOptions)
	return &t, diags
}

// spec converts the model to a cluster.Spec. tlsMaterial carries the CA
// (with its key) and client certificate for a TLS cluster; nil otherwise.
func (m clusterModel) spec(ctx context.Context, tlsMaterial *cluster.TLS) (cluster.Spec, diag.Diagnostics) {
	var diags diag.Diagnostics
	s := cluster.Spec{
		Name:           m.Name.ValueString(),
		ClientPort:     int(m.ClientPort.ValueInt64()),
		PeerPort:       int(m.PeerPort.ValueInt64()),
		ServiceManager: node.ServiceManager(m.ServiceManager.ValueString()),
		InstallDir:     m.InstallDir.ValueString(),
		DataDir:        m.DataDir.ValueString(),
		TLS:            tlsMaterial,
		Binary:         cluster.Binary{LocalPath: m.BinaryPath.ValueString(), RemotePath: m.RemoteBinary.ValueString()},
	}
	if s.Binary.LocalPath == "" && s.Binary.RemotePath == "" {
		s.Binary.LocalPath, _ = memberhost.DefaultBinary() // "" fails validation, naming binary_path
	}
	if s.Binary.RemotePath != "" {
		// binary_path, or the provider's own executable, is uploaded as a
		// tool only, by a restore or a backup job; the members run
		// remote_binary.
		s.Binary.ToolPath, s.Binary.LocalPath = s.Binary.LocalPath, ""
		if s.Binary.ToolPath == "" {
			s.Binary.ToolPath, _ = memberhost.DefaultBinary()
		}
	}
	if !m.Settings.IsNull() && !m.Settings.IsUnknown() {
		diags.Append(m.Settings.ElementsAs(ctx, &s.Settings, false)...)
	}
	s.Settings = m.compactionSettings(s.Settings)
	nodes, d := m.nodes(ctx)
	diags.Append(d...)
	for _, n := range nodes {
		s.Nodes = append(s.Nodes, n.node())
	}
	ssh, d := sshConfigOf(ctx, m.SSH, path.Root("ssh"))
	diags.Append(d...)
	s.SSH = ssh
	return s, diags
}

// privateCAKey is the private state key holding a generated CA's key and
// certificate: the key is needed to issue certificates for nodes added
// later, and is nobody's business otherwise, so it is not an attribute.
// The certificate is there because during a CA rotation ca_cert_pem holds
// two CAs; states written before rotations existed have only the key, and
// ca_cert_pem is then the CA alone.
const privateCAKey = "tls_ca"

type privateCA struct {
	KeyPEM  string `json:"key_pem"`
	CertPEM string `json:"cert_pem,omitempty"`
}

// tlsMaterial returns the CA and client certificate: from the state
// (ca_cert_pem, client cert and key; the CA key from private state or from
// tls.ca_key_pem), or newly made when the state has none. phase is the CA
// rotation phase this apply performs (0: none; cluster_ca_rotation.go):
// phase 1 generates the new CA of tls.auto. caKey is what the private
// state's tls_ca must hold afterwards (nil: nothing, or no change).
func (m clusterModel) tlsMaterial(ctx context.Context, state *clusterModel, private privateGetter, phase cluster.CAPhase) (material *cluster.TLS, caKey []byte, diags diag.Diagnostics) {
	t, diags := m.tlsConfig(ctx)
	if diags.HasError() || t == nil {
		return nil, nil, diags
	}
	tlsPath := path.Root("tls")
	var ca *pki.CA
	var err error
	switch {
	case !t.CACertPEM.IsNull():
		ca, err = pki.LoadCA([]byte(t.CACertPEM.ValueString()), []byte(t.CAKeyPEM.ValueString()))
		if err != nil {
			diags.AddAttributeError(tlsPath.AtName("ca_key_pem"), "Invalid certificate authority", fmt.Sprintf("tls.ca_cert_pem and tls.ca_key_pem: %v.", err))
			return nil, nil, diags
		}
	case state != nil && !state.CACertPEM.IsNull() && private != nil && phase != cluster.CATrustBoth:
		var d diag.Diagnostics
		ca, caKey, d = privateStateCA(ctx, private, *state)
		diags.Append(d...)
		if d.HasError() {
			return nil, nil, diags
		}
	default:
		ca, err = pki.NewCA(pki.CAOptions{CommonName: m.Name.ValueString() + " etcd CA"})
		if err != nil {
			diags.AddError("Cannot create a certificate authority", err.Error())
			return nil, nil, diags
		}
		caKey, _ = json.Marshal(privateCA{KeyPEM: string(ca.KeyPEM), CertPEM: string(ca.CertPEM)})
	}
	material = &cluster.TLS{CA: ca}
	m.withLifetimes(ctx, material)
	if phase != 0 && state != nil {
		diags.Append(state.rotationMaterial(ctx, private, phase, material)...)
		if diags.HasError() {
			return nil, nil, diags
		}
	}
	// The state's client certificate, unless the plan renews it
	// (planCertRenewal, or phase 2 of a CA rotation, mark it unknown) or
	// the members no longer trust its CA.
	if state != nil && !m.ClientCertPEM.IsUnknown() && !state.ClientCertPEM.IsNull() && !state.ClientKeyPEM.IsNull() {
		cert, err1 := pki.ParseCertificatePEM([]byte(state.ClientCertPEM.ValueString()))
		key, err2 := pki.ParsePrivateKeyPEM([]byte(state.ClientKeyPEM.ValueString()))
		if err1 == nil && err2 == nil && trusts(material.TrustPEM(), cert) {
			material.Client = &pki.KeyPair{Cert: cert, Key: key, CertPEM: []byte(state.ClientCertPEM.ValueString()), KeyPEM: []byte(state.ClientKeyPEM.ValueString())}
		}
	}
	if material.Client == nil {
		if material.CA.Key == nil {
			diags.AddAttributeError(tlsPath, "Cannot issue the client certificate",
				"The client certificate must be issued again by the cluster's old CA during phase 1 of a CA rotation, but that CA's key "+
					"was write-only (tls.ca_key_pem_wo) and is not available. Give the old CA's key as tls.ca_key_pem for this apply.")
			return nil, nil, diags
		}
		if material.Client, err = material.CA.IssueClient("root", pki.LeafWindow(time.Now(), material.Validity)); err != nil {
			diags.AddError("Cannot issue the client certificate", err.Error())
			return nil, nil, diags
		}
	}
	return material, caKey, diags
}

// privateStateCA is the generated CA of tls.auto from private state, and
// the raw private state to keep.
func privateStateCA(ctx context.Context, private privateGetter, state clusterModel) (*pki.CA, []byte, diag.Diagnostics) {
	raw, diags := private.GetKey(ctx, privateCAKey)
	var p privateCA
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &p)
	}
	if p.KeyPEM == "" {
		diags.AddAttributeError(path.Root("tls"), "Certificate authority key not available",
			"This cluster's generated CA key is not in the state (for example after an import), so no certificates can be issued. "+
				"Set tls.ca_cert_pem and tls.ca_key_pem to the cluster's CA, or replace the cluster.")
		return nil, nil, diags
	}
	certPEM := p.CertPEM
	if certPEM == "" {
		certPEM = state.CACertPEM.ValueString()
	}
	ca, err := pki.LoadCA([]byte(certPEM), []byte(p.KeyPEM))
	if err != nil {
		diags.AddAttributeError(path.Root("tls"), "Invalid stored certificate authority", err.Error())
		return nil, nil, diags
	}
	return ca, raw, diags
}

// trusts tells whether cert chains to one of the PEM certificates in
// trust.
func trusts(trust []byte, cert *x509.Certificate) bool {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(trust) {
		return false
	}
	_, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

// readOnlyTLS is the TLS material a Read needs (no CA key): from the state.
func (m clusterModel) readOnlyTLS() (*cluster.TLS, error) {
	if m.CACertPEM.IsNull() || m.ClientCertPEM.IsNull() {
		return nil, nil
	}
	caCert, err := pki.ParseCertificatePEM([]byte(m.CACertPEM.ValueString()))
	if err != nil {
		return nil, err
	}
	cert, err := pki.ParseCertificatePEM([]byte(m.ClientCertPEM.ValueString()))
	if err != nil {
		return nil, err
	}
	key, err := pki.ParsePrivateKeyPEM([]byte(m.ClientKeyPEM.ValueString()))
	if err != nil {
		return nil, err
	}
	return &cluster.TLS{
		// ca_cert_pem holds two CAs during a CA rotation: all are trusted.
		Trust:  []byte(m.CACertPEM.ValueString()),
		CA:     &pki.CA{KeyPair: pki.KeyPair{Cert: caCert, CertPEM: []byte(m.CACertPEM.ValueString())}},
		Client: &pki.KeyPair{Cert: cert, Key: key, CertPEM: []byte(m.ClientCertPEM.ValueString()), KeyPEM: []byte(m.ClientKeyPEM.ValueString())},
	}, nil
}

// setStatus records what the cluster reports.
func (m *clusterModel) setStatus(st *cluster.Status) diag.Diagnostics {
	var diags diag.Diagnostics
	m.ClusterID = types.StringValue(st.ClusterID)
	members := make([]attr.Value, 0, len(st.Members))
	sorted := append([]cluster.Member(nil), st.Members...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, mem := range sorted {
		peer, d := types.ListValueFrom(context.Background(), types.StringType, nonNil(mem.PeerURLs))
		diags.Append(d...)
		client, d := types.ListValueFrom(context.Background(), types.StringType, nonNil(mem.ClientURLs))
		diags.Append(d...)
		obj, d := types.ObjectValue(clusterMemberAttrTypes, map[string]attr.Value{
			"id": types.StringValue(mem.ID), "name": types.StringValue(mem.Name),
			"peer_urls": peer, "client_urls": client, "is_learner": types.BoolValue(mem.IsLearner),
		})
		diags.Append(d...)
		members = append(members, obj)
	}
	list, d := types.ListValue(types.ObjectType{AttrTypes: clusterMemberAttrTypes}, members)
	diags.Append(d...)
	m.Members = list
	return diags
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// setTLSOutputs records the CA and client certificate.
func (m *clusterModel) setTLSOutputs(t *cluster.TLS) {
	if t == nil {
		m.CACertPEM, m.ClientCertPEM, m.ClientKeyPEM = types.StringNull(), types.StringNull(), types.StringNull()
		return
	}
	m.CACertPEM = types.StringValue(string(t.TrustPEM()))
	m.ClientCertPEM = types.StringValue(string(t.Client.CertPEM))
	m.ClientKeyPEM = types.StringValue(string(t.Client.KeyPEM))
}

// binarySHA256 is the SHA-256 of the binary the provider uploads, "" for
// remote_binary (nothing is uploaded).
func binarySHA256(s cluster.Spec) (string, error) {
	if s.Binary.RemotePath != "" || s.Binary.LocalPath == "" {
		return "", nil
	}
	return node.FileSHA256(s.Binary.LocalPath)
}

// setEndpoints records the client URLs of the spec's nodes.
func (m *clusterModel) setEndpoints(s cluster.Spec) diag.Diagnostics {
	var diags diag.Diagnostics
	m.Endpoints, diags = types.ListValueFrom(context.Background(), types.StringType, nonNil(s.Endpoints()))
	return diags
}

// addSpecErrors turns cluster.Spec validation errors into diagnostics on
// the attributes they are about.
func addSpecErrors(diags *diag.Diagnostics, err error, summary string) {
	for _, e := range unjoinErr(err) {
		fe, ok := e.(*cluster.FieldError)
		if !ok {
			diags.AddError(summary, e.Error())
			continue
		}
		p := path.Root(fe.Attr)
		if fe.Index >= 0 {
			p = p.AtListIndex(fe.Index)
			if fe.Field != "" {
				p = p.AtName(fe.Field)
			}
		} else if fe.Field != "" {
			p = p.AtName(fe.Field)
		}
		diags.AddAttributeError(p, summary, strings.TrimSuffix(fe.Error(), ".")+".")
	}
}

func unjoinErr(err error) []error {
	if _, ok := err.(*cluster.FieldError); ok {
		return []error{err}
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoinErr(e)...)
		}
		return out
	}
	return []error{err}
}
