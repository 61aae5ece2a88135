package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
)

// sshModel maps an `ssh` attribute: etcd_cluster's `ssh` and etcd_member's
// `node.ssh`. Both resources take the same settings with the same meaning,
// so they share this model, its schema (sshAttributes) and its conversion
// (config).
type sshModel struct {
	User                  types.String `tfsdk:"user"`
	Port                  types.Int64  `tfsdk:"port"`
	PrivateKey            types.String `tfsdk:"private_key"`
	Passphrase            types.String `tfsdk:"passphrase"`
	Agent                 types.Bool   `tfsdk:"agent"`
	HostKey               types.String `tfsdk:"host_key"`
	InsecureIgnoreHostKey types.Bool   `tfsdk:"insecure_ignore_host_key"`
	ConnectTimeout        types.String `tfsdk:"connect_timeout"`
	// Bastion is an object rather than a pointer to sshBastionModel so that
	// a configuration whose bastion is not known yet still decodes.
	Bastion types.Object `tfsdk:"bastion"`
}

// sshBastionModel maps `ssh.bastion`.
type sshBastionModel struct {
	Host                  types.String `tfsdk:"host"`
	Port                  types.Int64  `tfsdk:"port"`
	User                  types.String `tfsdk:"user"`
	PrivateKey            types.String `tfsdk:"private_key"`
	Passphrase            types.String `tfsdk:"passphrase"`
	Agent                 types.Bool   `tfsdk:"agent"`
	HostKey               types.String `tfsdk:"host_key"`
	InsecureIgnoreHostKey types.Bool   `tfsdk:"insecure_ignore_host_key"`
}

// sshAttributes is the schema of an `ssh` attribute. target names what it
// reaches in the descriptions, e.g. "the nodes".
func sshAttributes(target string) map[string]schema.Attribute {
	a := sshLoginAttributes(target, false)
	a["connect_timeout"] = schema.StringAttribute{Optional: true, Validators: []validator.String{durationValidator{}},
		MarkdownDescription: "How long to wait for an SSH connection to " + target + " (TCP connect and handshake, " +
			"through the bastion when there is one), e.g. `\"10s\"`. Defaults to `\"30s\"`."}
	a["bastion"] = schema.SingleNestedAttribute{Optional: true, Attributes: sshLoginAttributes("the bastion", true),
		MarkdownDescription: "Reach " + target + " through this jump host, like `ssh -J`. Its `user`, `private_key`, " +
			"`passphrase`, `agent` and host key settings default to those of `ssh`."}
	return a
}

// sshLoginAttributes are the attributes an SSH login needs, of the machine
// (bastion false) or of the bastion.
func sshLoginAttributes(who string, bastion bool) map[string]schema.Attribute {
	userDefault := "Defaults to `root`."
	inherit := ""
	hostKeyRequired := " Host keys are verified: required unless `insecure_ignore_host_key`."
	if bastion {
		userDefault = "Defaults to `ssh.user`, else `root`."
		inherit = " Defaults to the setting of `ssh`."
		hostKeyRequired = " Host keys are verified."
	}
	a := map[string]schema.Attribute{
		"user": schema.StringAttribute{Optional: true, MarkdownDescription: "User to log in as on " + who + ". " + userDefault},
		"port": schema.Int64Attribute{Optional: true, MarkdownDescription: "SSH port of " + who + ". Defaults to 22."},
		"private_key": schema.StringAttribute{Optional: true, Sensitive: true,
			MarkdownDescription: "PEM private key (OpenSSH, PKCS#1/8 or SEC 1), e.g. `file(\"~/.ssh/id_ed25519\")`. Never logged." + inherit},
		"passphrase": schema.StringAttribute{Optional: true, Sensitive: true, MarkdownDescription: "Passphrase of `private_key`, when it is protected."},
		"agent":      schema.BoolAttribute{Optional: true, MarkdownDescription: "Also use the keys of the ssh-agent at `$SSH_AUTH_SOCK`." + inherit},
		"host_key": schema.StringAttribute{Optional: true,
			MarkdownDescription: "Accepted host keys of " + who + ", one per line, in `authorized_keys` form (`ssh-ed25519 AAAA...`, valid for any host) " +
				"or `known_hosts` form (`10.0.0.1 ssh-ed25519 AAAA...`), e.g. the output of `ssh-keyscan`." + hostKeyRequired + inherit},
		"insecure_ignore_host_key": schema.BoolAttribute{Optional: true,
			MarkdownDescription: "Accept any host key. Allows a man in the middle to take the connection; for throw-away test machines only."},
	}
	if bastion {
		a["host"] = schema.StringAttribute{Required: true, MarkdownDescription: "Address of the bastion (jump host)."}
	}
	return a
}

// sshConfigOf converts an `ssh` object at p; a null or unknown object gives
// the zero config.
func sshConfigOf(ctx context.Context, obj types.Object, p path.Path) (node.SSHConfig, diag.Diagnostics) {
	if obj.IsNull() || obj.IsUnknown() {
		return node.SSHConfig{}, nil
	}
	var m sshModel
	diags := obj.As(ctx, &m, objectAsOptions)
	if diags.HasError() {
		return node.SSHConfig{}, diags
	}
	cfg, d := m.config(ctx, p)
	diags.Append(d...)
	return cfg, diags
}

// config converts the model (at p, for diagnostics) to a node.SSHConfig
// without Host: the caller knows the machine's address. Unset user and
// port stay empty (node defaults them to root and 22); the bastion takes
// the login, key and host key settings of the machine unless it has its
// own, and the connect timeout.
func (m sshModel) config(ctx context.Context, p path.Path) (node.SSHConfig, diag.Diagnostics) {
	var diags diag.Diagnostics
	cfg := node.SSHConfig{
		User: m.User.ValueString(), Port: int(m.Port.ValueInt64()),
		PrivateKey: m.PrivateKey.ValueString(), Passphrase: m.Passphrase.ValueString(), Agent: m.Agent.ValueBool(),
		HostKey: m.HostKey.ValueString(), InsecureIgnoreHostKey: m.InsecureIgnoreHostKey.ValueBool(),
	}
	if !m.ConnectTimeout.IsNull() && !m.ConnectTimeout.IsUnknown() {
		d, err := client.ParseTimeout(m.ConnectTimeout.ValueString())
		if err != nil {
			diags.AddAttributeError(p.AtName("connect_timeout"), "Invalid duration", fmt.Sprintf("%s: %v.", p.AtName("connect_timeout"), err))
			return cfg, diags
		}
		cfg.Timeout = d
	}
	if m.Bastion.IsNull() || m.Bastion.IsUnknown() {
		return cfg, diags
	}
	var b sshBastionModel
	diags.Append(m.Bastion.As(ctx, &b, objectAsOptions)...)
	if diags.HasError() {
		return cfg, diags
	}
	bastion := &node.SSHConfig{
		Host: b.Host.ValueString(), Port: int(b.Port.ValueInt64()), User: b.User.ValueString(),
		PrivateKey: b.PrivateKey.ValueString(), Passphrase: b.Passphrase.ValueString(), Agent: b.Agent.ValueBool(),
		HostKey: b.HostKey.ValueString(), InsecureIgnoreHostKey: b.InsecureIgnoreHostKey.ValueBool(),
		Timeout: cfg.Timeout,
	}
	if bastion.User == "" {
		bastion.User = cfg.User
	}
	if bastion.PrivateKey == "" && !bastion.Agent {
		bastion.PrivateKey, bastion.Passphrase, bastion.Agent = cfg.PrivateKey, cfg.Passphrase, cfg.Agent
	}
	if bastion.HostKey == "" && !bastion.InsecureIgnoreHostKey {
		bastion.HostKey, bastion.InsecureIgnoreHostKey = cfg.HostKey, cfg.InsecureIgnoreHostKey
	}
	cfg.Bastion = bastion
	return cfg, diags
}

// validateHostKey reports, at plan time, an `ssh` at p that would accept
// any host key without saying so. The bastion falls back to these settings,
// so this covers it too.
func (m sshModel) validateHostKey(p path.Path) diag.Diagnostics {
	var diags diag.Diagnostics
	if m.HostKey.IsUnknown() || m.InsecureIgnoreHostKey.IsUnknown() {
		return diags
	}
	if m.HostKey.IsNull() && !m.InsecureIgnoreHostKey.ValueBool() {
		diags.AddAttributeError(p.AtName("host_key"), "Missing host key",
			"Give the machine's host key (e.g. the output of `ssh-keyscan HOST`) so that the provider can verify it, "+
				"or set insecure_ignore_host_key = true for a throw-away test machine.")
	}
	return diags
}
