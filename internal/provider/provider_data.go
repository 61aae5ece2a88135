package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/provider"
	"google.golang.org/grpc/connectivity"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

// providerData is what Configure hands to every resource, data source and
// ephemeral resource of one provider process. It gives them the process's
// single etcd client, opened on first use and shared by all of them.
//
// In a resource or data source:
//
//	func (r *thing) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
//		r.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
//	}
//
//	func (r *thing) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
//		cl, diags := r.provider.Client(ctx)
//		resp.Diagnostics.Append(diags...)
//		if resp.Diagnostics.HasError() {
//			return
//		}
//		ctx, cancel := cl.Ctx(ctx) // request timeout
//		defer cancel()
//		_, err := cl.Put(ctx, key, value)
//		if err != nil {
//			resp.Diagnostics.AddError("Cannot write key", cl.Describe(err, "write", key).Error())
//		}
//	}
type providerData struct {
	// settings is nil when unknown is not empty.
	settings *client.Settings
	// unknown lists provider attributes whose values are not known until apply.
	unknown []string
	// configErr is a configuration error reported on first use of the
	// client (no endpoints: resources that need no client still work).
	configErr error

	once   sync.Once
	client *client.Client
	err    error
}

// setOn hands d to everything the provider configures.
func (d *providerData) setOn(resp *provider.ConfigureResponse) {
	resp.ResourceData = d
	resp.DataSourceData = d
	resp.EphemeralResourceData = d
	resp.ActionData = d
	resp.ListResourceData = d
}

// keepStateUnconfigured tells a resource's Read to keep its state as it is,
// with a warning, when the provider configuration is not known yet. That
// is the case of a provider wired to an etcd_cluster's outputs (endpoints,
// ca_cert_pem, client_cert_pem) whenever the plan changes them: a
// certificate renewal, each phase of a CA rotation. Failing the refresh
// would leave the cluster's change unplannable but with -target; its
// resources are applied with the configuration known by then, and read
// again by the next plan.
func (d *providerData) keepStateUnconfigured(diags *diag.Diagnostics) bool {
	if d == nil || len(d.unknown) == 0 {
		return false
	}
	diags.AddWarning("Not refreshed: provider configuration not known yet",
		fmt.Sprintf("The provider configuration depends on values not known until apply: %s (for example the outputs of an "+
			"etcd_cluster whose certificates this plan changes). Resources that use it are not read from etcd in this plan: "+
			"it compares the configuration with their state as of the last apply, so changes made outside Terraform since "+
			"are not shown. The apply uses the configuration known by then, and the next plan reads them again.",
			strings.Join(d.unknown, ", ")))
	return true
}

// Client returns the provider's etcd client, connecting on the first call.
// It fails, with a diagnostic saying why, when the provider configuration is
// not known yet (plan time) or the connection cannot be made.
func (d *providerData) Client(ctx context.Context) (*client.Client, diag.Diagnostics) {
	var diags diag.Diagnostics
	if d == nil {
		diags.AddError("Provider not configured",
			"The etcd provider was not configured before it was used. This is a bug in the provider; please report it.")
		return nil, diags
	}
	if len(d.unknown) > 0 {
		diags.AddError("Provider configuration not known yet",
			fmt.Sprintf("The provider configuration depends on values not known until apply: %s.\n\n"+
				"Resources that already exist cannot be read and data sources cannot be evaluated until then. "+
				"Apply the resources those values come from first (for example with -target), or set the "+
				"provider attributes from values known at plan time.", strings.Join(d.unknown, ", ")))
		return nil, diags
	}
	if d.configErr != nil {
		addConfigError(&diags, d.configErr)
		return nil, diags
	}
	d.once.Do(func() {
		d.client, d.err = sharedClient(ctx, d.settings)
		if d.err == nil {
			// The warm-up may have tried while the cluster was not up yet
			// (an etcd_cluster created earlier in this run), leaving gRPC
			// waiting out a reconnect backoff of up to minutes: try now.
			if conn := d.client.ActiveConnection(); conn.GetState() != connectivity.Ready {
				conn.ResetConnectBackoff()
			}
		}
	})
	if d.err != nil {
		diags.AddError("Cannot connect to etcd", d.err.Error())
		return nil, diags
	}
	return d.client, diags
}

// processClients holds the clients of this process by
// client.Settings.Fingerprint. Terraform runs a provider process per
// provider configuration and configures it once, so there it holds one
// client. Where one process configures many provider instances -- the
// acceptance tests serve a fresh instance for every CLI command --
// identically configured instances share one connection instead of leaking
// one each.
var processClients sync.Map // [sha256.Size]byte -> *pendingClient

// pendingClient is a client being opened, or open: done is closed when c
// or err is set. A failed open is forgotten, so that a call that comes
// after it tries again.
type pendingClient struct {
	done chan struct{}
	c    *client.Client
	err  error
}

func sharedClient(ctx context.Context, s *client.Settings) (*client.Client, error) {
	fp := s.Fingerprint()
	p := &pendingClient{done: make(chan struct{})}
	if prev, loaded := processClients.LoadOrStore(fp, p); loaded {
		p = prev.(*pendingClient)
		select {
		case <-p.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		// An attempt that failed while this caller waited for it is its
		// answer too; it is already forgotten, so a later call tries again.
		return p.c, p.err
	}
	p.c, p.err = client.Open(ctx, s)
	if p.err != nil {
		processClients.CompareAndDelete(fp, p)
	}
	close(p.done)
	return p.c, p.err
}

// warmUp starts connecting to the cluster in the background, so that the
// first request, typically the first refresh of a plan, finds the
// connection (and, with a user name, the auth token) ready instead of
// waiting for it. Nothing is recorded if it fails: the first real use
// connects again and reports its own error, so a cluster that comes up
// later in the same run (etcd_cluster) is still reached.
func (d *providerData) warmUp(ctx context.Context) {
	if d == nil || d.settings == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	go func() {
		// clientv3 connects lazily (it authenticates at once when it has
		// a user name): ask gRPC to connect now.
		if cl, err := sharedClient(ctx, d.settings); err == nil {
			cl.ActiveConnection().Connect()
		}
	}()
}

// providerDataFrom extracts the provider data in a resource's, data source's
// or ephemeral resource's Configure. It returns nil (without error) before the
// provider is configured, which the framework does during validation.
func providerDataFrom(data any, diags *diag.Diagnostics) *providerData {
	if data == nil {
		return nil
	}
	d, ok := data.(*providerData)
	if !ok {
		diags.AddError("Unexpected provider data",
			fmt.Sprintf("Expected *providerData, got %T. This is a bug in the provider; please report it.", data))
		return nil
	}
	return d
}

// addConfigError turns an error from client.Config.Resolve into a diagnostic
// on the attribute it is about.
func addConfigError(diags *diag.Diagnostics, err error) {
	var ce *client.ConfigError
	if !errors.As(err, &ce) {
		diags.AddError("Invalid etcd provider configuration", err.Error())
		return
	}
	p := path.Root(ce.Attribute)
	if ce.HasIndex && ce.Env == "" {
		p = p.AtListIndex(ce.Index)
	}
	summary := "Invalid provider attribute " + ce.Attribute
	if ce.Env != "" {
		summary = fmt.Sprintf("Invalid %s (provider attribute %s)", ce.Env, ce.Attribute)
	}
	diags.AddAttributeError(p, summary, err.Error())
}
