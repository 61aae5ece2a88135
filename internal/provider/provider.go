// Package provider implements the etcd Terraform provider with
// terraform-plugin-framework: the provider block and every resource, data
// source, ephemeral resource and function, each with its schema, plan-time
// checks, CRUD and diagnostics (one file each, with the shared validators,
// models and helpers in files of their own). The work itself is done by
// packages that are tested without Terraform: internal/client talks to etcd,
// internal/cluster and internal/membership set up and change members over
// SSH, recipes holds the lock behind etcd_lock.
//
// It also serves the plugin (serve.go): the framework's protocol server, the
// SDK's logs quiet unless someone reads them (logging.go) and the garbage
// collector tuned for serving (gc.go).
package provider

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/listvalidator"
	"github.com/hashicorp/terraform-plugin-framework/datasource"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/provider/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

// Address is the provider's registry source address.
const Address = "registry.terraform.io/terraform-etcd/etcd"

var (
	_ provider.Provider                       = (*etcdProvider)(nil)
	_ provider.ProviderWithFunctions          = (*etcdProvider)(nil)
	_ provider.ProviderWithEphemeralResources = (*etcdProvider)(nil)
)

// etcdProvider is the provider type "etcd".
type etcdProvider struct {
	version string
	// lookupEnv reads ETCDCTL_* fallbacks; os.LookupEnv outside tests.
	lookupEnv func(string) (string, bool)
}

// New returns a constructor for the provider, as providerserver expects.
func New(version string) func() provider.Provider {
	return func() provider.Provider {
		return &etcdProvider{version: version, lookupEnv: os.LookupEnv}
	}
}

// providerModel maps the provider block.
type providerModel struct {
	Endpoints             types.List   `tfsdk:"endpoints"`
	Username              types.String `tfsdk:"username"`
	Password              types.String `tfsdk:"password"`
	CACert                types.String `tfsdk:"ca_cert"`
	Cert                  types.String `tfsdk:"cert"`
	Key                   types.String `tfsdk:"key"`
	InsecureSkipTLSVerify types.Bool   `tfsdk:"insecure_skip_tls_verify"`
	DialTimeout           types.String `tfsdk:"dial_timeout"`
	RequestTimeout        types.String `tfsdk:"request_timeout"`
}

func (p *etcdProvider) Metadata(_ context.Context, _ provider.MetadataRequest, resp *provider.MetadataResponse) {
	resp.TypeName = "etcd"
	resp.Version = p.version
}

func (p *etcdProvider) Schema(_ context.Context, _ provider.SchemaRequest, resp *provider.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "Manages [etcd](https://etcd.io) v3 clusters as code: bootstraps them over SSH " +
			"(`etcd_cluster`, `etcd_member`) and manages what lives in them: keys and key prefixes, leases, users, " +
			"roles and authentication.\n\n" +
			"Every attribute is optional. An attribute that is not set falls back to the environment " +
			"variable `etcdctl` reads (`ETCDCTL_ENDPOINTS`, `ETCDCTL_USER`, `ETCDCTL_PASSWORD`, `ETCDCTL_CACERT`, " +
			"`ETCDCTL_CERT`, `ETCDCTL_KEY`, `ETCDCTL_INSECURE_SKIP_TLS_VERIFY`, `ETCDCTL_DIAL_TIMEOUT`, " +
			"`ETCDCTL_COMMAND_TIMEOUT`), so a shell set up for `etcdctl` works unchanged.\n\n" +
			"The configuration may depend on values known only after apply (for example endpoints of a " +
			"cluster created in the same configuration): planning new resources works, and the provider " +
			"connects once the values are known.",
		Attributes: map[string]schema.Attribute{
			"endpoints": schema.ListAttribute{
				ElementType: types.StringType,
				Optional:    true,
				MarkdownDescription: "etcd client URLs, e.g. `[\"https://10.0.0.1:2379\", \"https://10.0.0.2:2379\"]` " +
					"(`http`, `https`, `unix` or `unixs`; a bare `host:port` is plain text). Listing several members " +
					"lets the client fail over. Falls back to `ETCDCTL_ENDPOINTS` (comma-separated). Required one way or the other.",
				Validators: []validator.List{
					endpointsNotEmptyValidator{},
					listvalidator.ValueStringsAre(endpointValidator{}),
				},
			},
			"username": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "etcd user to authenticate as, when the cluster has authentication enabled. " +
					"Falls back to `ETCDCTL_USER`, which may also be `user:password` as with `etcdctl --user`.",
			},
			"password": schema.StringAttribute{
				Optional:            true,
				Sensitive:           true,
				MarkdownDescription: "Password of `username`. Falls back to `ETCDCTL_PASSWORD`. Never logged.",
			},
			"ca_cert": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "CA certificate(s) to verify the etcd servers with: PEM content " +
					"(`-----BEGIN CERTIFICATE-----...`) or the path of a PEM file. Without it, `https` endpoints are " +
					"verified against the system's roots. Falls back to `ETCDCTL_CACERT`.",
			},
			"cert": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Client certificate for TLS client authentication: PEM content or the path of a PEM " +
					"file. Requires `key`. Falls back to `ETCDCTL_CERT`.",
			},
			"key": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				MarkdownDescription: "Private key of `cert`: PEM content or the path of a PEM file. Falls back to " +
					"`ETCDCTL_KEY`. Never logged.",
			},
			"insecure_skip_tls_verify": schema.BoolAttribute{
				Optional: true,
				MarkdownDescription: "Accept any server certificate without verifying it. For testing only: it allows " +
					"a man in the middle. Falls back to `ETCDCTL_INSECURE_SKIP_TLS_VERIFY`. Defaults to `false`.",
			},
			"dial_timeout": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: fmt.Sprintf("How long to wait for a connection (and authentication) to the cluster, as a Go "+
					"duration such as `\"5s\"` or `\"1m\"`. Falls back to `ETCDCTL_DIAL_TIMEOUT`. Defaults to `\"%s\"`.", client.DefaultDialTimeout),
				Validators: []validator.String{durationValidator{}},
			},
			"request_timeout": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: fmt.Sprintf("How long one request to etcd may take before the provider reports the "+
					"cluster unreachable, as a Go duration such as `\"10s\"`. Falls back to `ETCDCTL_COMMAND_TIMEOUT`. "+
					"Defaults to `\"%s\"`.", client.DefaultRequestTimeout),
				Validators: []validator.String{durationValidator{}},
			},
		},
	}
}

func (p *etcdProvider) Configure(ctx context.Context, req provider.ConfigureRequest, resp *provider.ConfigureResponse) {
	var m providerModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}

	data := &providerData{}
	if unknown := m.unknownAttributes(); len(unknown) > 0 {
		// Planning must go on: resources ask for the client only when they
		// really need one, and get a clear error then.
		tflog.Info(ctx, "etcd provider configuration not known until apply", map[string]any{"unknown": unknown})
		data.unknown = unknown
		data.setOn(resp)
		return
	}

	cfg, diags := m.clientConfig(ctx, p.lookupEnv)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	settings, err := cfg.Resolve()
	var noEndpoints *client.ConfigError
	if errors.As(err, &noEndpoints) && noEndpoints.Attribute == client.AttrEndpoints && noEndpoints.Env == "" && !noEndpoints.HasIndex {
		// No endpoints at all: a configuration may manage only etcd_cluster
		// (which reaches its nodes over SSH) with this provider block. The
		// error comes when something needs the client.
		data.configErr = err
		data.setOn(resp)
		return
	}
	if err != nil {
		addConfigError(&resp.Diagnostics, err)
		return
	}
	tflog.Debug(ctx, "etcd provider configured", map[string]any{"settings": settings.String()})
	data.settings = settings
	data.setOn(resp)
	data.warmUp(ctx)
}

// unknownAttributes lists the attributes whose values are not known yet.
func (m providerModel) unknownAttributes() []string {
	var out []string
	if m.Endpoints.IsUnknown() {
		out = append(out, "endpoints")
	} else {
		for _, e := range m.Endpoints.Elements() {
			if e.IsUnknown() {
				out = append(out, "endpoints")
				break
			}
		}
	}
	for name, v := range map[string]interface{ IsUnknown() bool }{
		"username": m.Username, "password": m.Password, "ca_cert": m.CACert, "cert": m.Cert, "key": m.Key,
		"insecure_skip_tls_verify": m.InsecureSkipTLSVerify, "dial_timeout": m.DialTimeout, "request_timeout": m.RequestTimeout,
	} {
		if v.IsUnknown() {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// clientConfig converts known attribute values; nulls stay unset so that the
// environment fallbacks apply.
func (m providerModel) clientConfig(ctx context.Context, lookupEnv func(string) (string, bool)) (client.Config, diag.Diagnostics) {
	var diags diag.Diagnostics
	cfg := client.Config{
		Username:  m.Username.ValueString(),
		Password:  m.Password.ValueString(),
		CACert:    m.CACert.ValueString(),
		Cert:      m.Cert.ValueString(),
		Key:       m.Key.ValueString(),
		LookupEnv: lookupEnv,
	}
	if !m.Endpoints.IsNull() {
		diags.Append(m.Endpoints.ElementsAs(ctx, &cfg.Endpoints, false)...)
	}
	if !m.InsecureSkipTLSVerify.IsNull() {
		cfg.InsecureSkipTLSVerify = m.InsecureSkipTLSVerify.ValueBoolPointer()
	}
	for _, d := range []struct {
		attr string
		v    types.String
		dst  *time.Duration
	}{
		{"dial_timeout", m.DialTimeout, &cfg.DialTimeout},
		{"request_timeout", m.RequestTimeout, &cfg.RequestTimeout},
	} {
		if d.v.IsNull() {
			continue
		}
		v, err := client.ParseTimeout(d.v.ValueString())
		if err != nil {
			diags.AddAttributeError(path.Root(d.attr), "Invalid "+d.attr, err.Error())
			continue
		}
		*d.dst = v
	}
	return cfg, diags
}

func (p *etcdProvider) Resources(context.Context) []func() resource.Resource {
	return []func() resource.Resource{
		newKeyResource,
		newRoleResource, newUserResource, newAuthResource,
		newLeaseResource, newKeyPrefixResource,
		newMemberResource,
		newClusterResource,
		newSnapshotResource,
		newMaintenanceResource,
	}
}

func (p *etcdProvider) DataSources(context.Context) []func() datasource.DataSource {
	return []func() datasource.DataSource{
		newKeyDataSource,
		newRoleDataSource, newUserDataSource, newAuthStatusDataSource,
		newKeysDataSource, newLeaseDataSource, newEndpointStatusDataSource,
		newMembersDataSource,
	}
}

func (p *etcdProvider) Functions(context.Context) []func() function.Function {
	return []func() function.Function{
		newPrefixRangeEndFunction, newKeyJoinFunction,
	}
}

func (p *etcdProvider) EphemeralResources(context.Context) []func() ephemeral.EphemeralResource {
	return []func() ephemeral.EphemeralResource{
		newLeaseEphemeralResource, newLockEphemeralResource, newKeyEphemeralResource,
	}
}
