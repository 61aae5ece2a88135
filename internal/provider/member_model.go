package provider

import (
	"context"
	"fmt"
	"net"
	"net/url"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/memberhost"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
)

// memberModel maps etcd_member.
type memberModel struct {
	ID             types.String     `tfsdk:"id"`
	Name           types.String     `tfsdk:"name"`
	PeerURLs       types.List       `tfsdk:"peer_urls"`
	Learner        types.Bool       `tfsdk:"learner"`
	Node           *memberNodeModel `tfsdk:"node"`
	ClientURLs     types.List       `tfsdk:"client_urls"`
	IsLearner      types.Bool       `tfsdk:"is_learner"`
	InitialCluster types.String     `tfsdk:"initial_cluster"`
	Timeouts       types.Object     `tfsdk:"timeouts"`
}

// memberNodeModel maps etcd_member's node block.
type memberNodeModel struct {
	Host           types.String    `tfsdk:"host"`
	SSH            *sshModel       `tfsdk:"ssh"`
	BinaryPath     types.String    `tfsdk:"binary_path"`
	RemoteBinary   types.String    `tfsdk:"remote_binary"`
	InstallDir     types.String    `tfsdk:"install_dir"`
	DataDir        types.String    `tfsdk:"data_dir"`
	ClientURLs     types.List      `tfsdk:"client_urls"`
	ServiceManager types.String    `tfsdk:"service_manager"`
	Settings       types.Map       `tfsdk:"settings"`
	TLS            *memberTLSModel `tfsdk:"tls"`
	WipeData       types.Bool      `tfsdk:"wipe_data"`
}

// memberTLSModel maps node.tls.
type memberTLSModel struct {
	CACertPEM   types.String `tfsdk:"ca_cert_pem"`
	CAKeyPEM    types.String `tfsdk:"ca_key_pem"`
	CertPEM     types.String `tfsdk:"cert_pem"`
	KeyPEM      types.String `tfsdk:"key_pem"`
	PeerCertPEM types.String `tfsdk:"peer_cert_pem"`
	PeerKeyPEM  types.String `tfsdk:"peer_key_pem"`
	ExtraSANs   types.List   `tfsdk:"extra_sans"`
}

// hostSpec turns the node block into a memberhost.Spec.
func (m memberModel) hostSpec(ctx context.Context) (memberhost.Spec, diag.Diagnostics) {
	n := m.Node
	np := path.Root("node")
	// Starting the member needs what stopping it does, and more.
	s, diags := m.teardownSpec(ctx)
	peerURLs := stringsOf(m.PeerURLs)
	s.PeerURLs = peerURLs
	s.LocalBinary = n.BinaryPath.ValueString()
	s.WipeData = n.WipeData.ValueBool()
	if s.RemoteBinary == "" && s.LocalBinary == "" {
		exe, err := memberhost.DefaultBinary()
		if err != nil {
			diags.AddAttributeError(np.AtName("binary_path"), "Cannot find the provider binary",
				fmt.Sprintf("The provider uploads its own executable by default, but cannot tell where it is (%v); set binary_path.", err))
			return s, diags
		}
		s.LocalBinary = exe
	}
	if n.ClientURLs.IsNull() {
		if u, err := url.Parse(peerURLs[0]); err == nil {
			s.ClientURLs = []string{u.Scheme + "://" + net.JoinHostPort(u.Hostname(), "2379")}
		}
	} else {
		s.ClientURLs = stringsOf(n.ClientURLs)
	}
	if !n.Settings.IsNull() {
		s.Settings = map[string]string{}
		diags.Append(n.Settings.ElementsAs(ctx, &s.Settings, false)...)
	}
	if t := n.TLS; t != nil {
		s.TLS = &memberhost.TLS{
			CACertPEM:     []byte(t.CACertPEM.ValueString()),
			CAKeyPEM:      []byte(t.CAKeyPEM.ValueString()),
			ServerCertPEM: []byte(t.CertPEM.ValueString()),
			ServerKeyPEM:  []byte(t.KeyPEM.ValueString()),
			PeerCertPEM:   []byte(t.PeerCertPEM.ValueString()),
			PeerKeyPEM:    []byte(t.PeerKeyPEM.ValueString()),
			ExtraSANs:     stringsOf(t.ExtraSANs),
		}
	}
	if err := s.Validate(); err != nil {
		diags.AddAttributeError(np, "Invalid node configuration", err.Error())
	}
	return s, diags
}

// teardownSpec is what stopping the member's service needs from the node
// block in state: the machine, the login and the directories.
func (m memberModel) teardownSpec(ctx context.Context) (memberhost.Spec, diag.Diagnostics) {
	n := m.Node
	s := memberhost.Spec{
		Name:         m.Name.ValueString(),
		InstallDir:   n.InstallDir.ValueString(),
		DataDir:      n.DataDir.ValueString(),
		RemoteBinary: n.RemoteBinary.ValueString(),
	}
	if v := n.ServiceManager.ValueString(); v != "" {
		s.ServiceManager = node.ServiceManager(v)
	}
	var diags diag.Diagnostics
	s.SSH, diags = m.sshConfig(ctx)
	return s, diags
}

// sshConfig is how to reach the member's machine: node.host with the login
// of node.ssh (shared with etcd_cluster's ssh, see sshModel).
func (m memberModel) sshConfig(ctx context.Context) (node.SSHConfig, diag.Diagnostics) {
	var cfg node.SSHConfig
	var diags diag.Diagnostics
	if m.Node.SSH != nil {
		cfg, diags = m.Node.SSH.config(ctx, path.Root("node").AtName("ssh"))
	}
	return cfg.At(m.Node.Host.ValueString()), diags
}

// nodeEqual compares what the machine runs (the SSH login aside).
func nodeEqual(a, b *memberNodeModel) bool {
	if a == nil || b == nil {
		return a == b
	}
	same := a.Host.Equal(b.Host) && a.BinaryPath.Equal(b.BinaryPath) && a.RemoteBinary.Equal(b.RemoteBinary) &&
		a.InstallDir.Equal(b.InstallDir) && a.DataDir.Equal(b.DataDir) && a.ClientURLs.Equal(b.ClientURLs) &&
		a.ServiceManager.Equal(b.ServiceManager) && a.Settings.Equal(b.Settings)
	if !same || (a.TLS == nil) != (b.TLS == nil) {
		return false
	}
	if a.TLS != nil {
		x, y := a.TLS, b.TLS
		return x.CACertPEM.Equal(y.CACertPEM) && x.CAKeyPEM.Equal(y.CAKeyPEM) && x.CertPEM.Equal(y.CertPEM) &&
			x.KeyPEM.Equal(y.KeyPEM) && x.PeerCertPEM.Equal(y.PeerCertPEM) && x.PeerKeyPEM.Equal(y.PeerKeyPEM) &&
			x.ExtraSANs.Equal(y.ExtraSANs)
	}
	return true
}
