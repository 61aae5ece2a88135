package provider

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	fwprovider "github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"google.golang.org/grpc/connectivity"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// configure runs the provider's Configure with the given attribute values
// (the others null) and environment.
func configure(t *testing.T, env map[string]string, attrs map[string]tftypes.Value) *fwprovider.ConfigureResponse {
	t.Helper()
	ctx := context.Background()
	p := &etcdProvider{version: "test", lookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	sresp := &fwprovider.SchemaResponse{}
	p.Schema(ctx, fwprovider.SchemaRequest{}, sresp)
	typ := sresp.Schema.Type().TerraformType(ctx).(tftypes.Object)
	vals := map[string]tftypes.Value{}
	for name, at := range typ.AttributeTypes {
		if v, ok := attrs[name]; ok {
			vals[name] = v
		} else {
			vals[name] = tftypes.NewValue(at, nil)
		}
	}
	resp := &fwprovider.ConfigureResponse{}
	p.Configure(ctx, fwprovider.ConfigureRequest{Config: tfsdk.Config{Schema: sresp.Schema, Raw: tftypes.NewValue(typ, vals)}}, resp)
	return resp
}

func TestConfigureUnknownDefers(t *testing.T) {
	resp := configure(t, nil, map[string]tftypes.Value{
		"endpoints": tftypes.NewValue(tftypes.List{ElementType: tftypes.String}, tftypes.UnknownValue),
		"password":  tftypes.NewValue(tftypes.String, tftypes.UnknownValue),
	})
	if resp.Diagnostics.HasError() {
		t.Fatalf("Configure failed on unknown values: %v", resp.Diagnostics)
	}
	data := providerDataFrom(resp.ResourceData, &resp.Diagnostics)
	if data == nil || resp.DataSourceData != resp.ResourceData || resp.EphemeralResourceData != resp.ResourceData {
		t.Fatalf("provider data not handed out: %#v", resp)
	}
	_, diags := data.Client(context.Background())
	if !diags.HasError() || !strings.Contains(diags.Errors()[0].Detail(), "not known until apply: endpoints, password") {
		t.Fatalf("Client() = %v", diags)
	}
	// A Read keeps the state, with a warning rather than the error.
	var read diag.Diagnostics
	if !data.keepStateUnconfigured(&read) || read.HasError() || read.WarningsCount() != 1 {
		t.Fatalf("keepStateUnconfigured: %v", read)
	}
	var known *providerData
	if known.keepStateUnconfigured(&read) || (&providerData{}).keepStateUnconfigured(&read) {
		t.Fatal("keepStateUnconfigured kept the state of a configured provider")
	}
}

func TestConfigureErrorsNameAttribute(t *testing.T) {
	for _, tc := range []struct {
		name  string
		env   map[string]string
		attrs map[string]tftypes.Value
		path  string
		want  string
	}{
		{"bad env endpoint", map[string]string{"ETCDCTL_ENDPOINTS": "http://a:1,ftp://b:2"}, nil, "endpoints", "entry 2 of ETCDCTL_ENDPOINTS"},
		{"bad env dial timeout", map[string]string{"ETCDCTL_ENDPOINTS": "http://a:1", "ETCDCTL_DIAL_TIMEOUT": "2"}, nil, "dial_timeout", "ETCDCTL_DIAL_TIMEOUT"},
		{"bad endpoint index", nil, map[string]tftypes.Value{
			"endpoints": tftypes.NewValue(tftypes.List{ElementType: tftypes.String}, []tftypes.Value{
				tftypes.NewValue(tftypes.String, "http://a:1"), tftypes.NewValue(tftypes.String, "http://b:2/path"),
			}),
		}, "endpoints[1]", "has a path"},
		{"user without password", map[string]string{"ETCDCTL_ENDPOINTS": "http://a:1"}, map[string]tftypes.Value{
			"username": tftypes.NewValue(tftypes.String, "root"),
		}, "password", "set password or ETCDCTL_PASSWORD"},
		{"cert without key", map[string]string{"ETCDCTL_ENDPOINTS": "https://a:1", "ETCDCTL_CERT": "-----BEGIN CERTIFICATE-----"}, nil, "key", "no private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := configure(t, tc.env, tc.attrs)
			errs := resp.Diagnostics.Errors()
			if len(errs) != 1 {
				t.Fatalf("diagnostics = %v", resp.Diagnostics)
			}
			d, ok := errs[0].(diag.DiagnosticWithPath)
			if !ok || d.Path().String() != tc.path || !strings.Contains(d.Detail(), tc.want) {
				t.Fatalf("diagnostic %v (path %v), want path %s and detail containing %q", errs[0], pathOf(errs[0]), tc.path, tc.want)
			}
		})
	}
}

// No endpoints at all is not an error at Configure time: a provider block
// may serve only etcd_cluster, which reaches its nodes over SSH. The error,
// naming the attribute, comes when something needs the etcd client.
func TestConfigureNoEndpointsDefersToClient(t *testing.T) {
	resp := configure(t, nil, nil)
	if resp.Diagnostics.HasError() {
		t.Fatalf("Configure failed without endpoints: %v", resp.Diagnostics)
	}
	data := providerDataFrom(resp.ResourceData, &resp.Diagnostics)
	if data == nil {
		t.Fatal("no provider data")
	}
	_, diags := data.Client(context.Background())
	errs := diags.Errors()
	if len(errs) != 1 {
		t.Fatalf("Client() diagnostics = %v, want one error", diags)
	}
	want := "set endpoints in the provider block or ETCDCTL_ENDPOINTS"
	if pathOf(errs[0]) != "endpoints" || !strings.Contains(errs[0].Detail(), want) {
		t.Fatalf("Client() error %v (path %s), want path endpoints and detail containing %q", errs[0], pathOf(errs[0]), want)
	}
}

func pathOf(d diag.Diagnostic) string {
	if p, ok := d.(diag.DiagnosticWithPath); ok {
		return p.Path().String()
	}
	return "none"
}

func TestConfigureKnownResolvesOnly(t *testing.T) {
	// A valid configuration pointing nowhere: Configure succeeds without
	// waiting for a connection (it only starts one in the background).
	resp := configure(t, map[string]string{"ETCDCTL_ENDPOINTS": "http://127.0.0.1:1"}, nil)
	if resp.Diagnostics.HasError() {
		t.Fatal(resp.Diagnostics)
	}
	data := providerDataFrom(resp.ResourceData, &resp.Diagnostics)
	if data == nil || data.settings == nil || data.settings.Endpoints[0] != "http://127.0.0.1:1" || data.client != nil {
		t.Fatalf("provider data = %#v", data)
	}
}

func TestProviderDataFrom(t *testing.T) {
	var diags diag.Diagnostics
	if providerDataFrom(nil, &diags) != nil || diags.HasError() {
		t.Fatal("nil provider data must be accepted silently")
	}
	if providerDataFrom("oops", &diags) != nil || !diags.HasError() {
		t.Fatal("wrong provider data type not reported")
	}
	var none *providerData
	if _, d := none.Client(context.Background()); !d.HasError() {
		t.Fatal("Client on nil provider data did not fail")
	}
}

// Configure starts connecting in the background: the client is open before
// anything asks for it, and the first request uses that connection.
func TestConfigureWarmsUpTheClient(t *testing.T) {
	c := startCluster(t)
	resp := configure(t, nil, map[string]tftypes.Value{
		"endpoints": tftypes.NewValue(tftypes.List{ElementType: tftypes.String}, []tftypes.Value{tftypes.NewValue(tftypes.String, c.Endpoints()[0])}),
	})
	if resp.Diagnostics.HasError() {
		t.Fatal(resp.Diagnostics)
	}
	data := providerDataFrom(resp.ResourceData, &resp.Diagnostics)
	ctx := etcdCtx(t)
	p := warmedUp(t, ctx, data)
	if p.err != nil {
		t.Fatalf("warm-up: %v", p.err)
	}
	warm := p.c
	for warm.ActiveConnection().GetState() != connectivity.Ready {
		if !warm.ActiveConnection().WaitForStateChange(ctx, warm.ActiveConnection().GetState()) {
			t.Fatal("the warm client never connected")
		}
	}
	cl, diags := data.Client(ctx)
	if diags.HasError() {
		t.Fatal(diags)
	}
	if cl != warm {
		t.Fatal("the first request opened another client instead of using the warm one")
	}
}

// A failed connection attempt is not remembered: callers waiting for it
// get its error, and the next call connects again (a cluster that
// etcd_cluster brings up later in the same run is then reached). With a
// user name, opening a client authenticates, so an unreachable cluster
// fails it.
func TestSharedClientForgetsFailures(t *testing.T) {
	c := startCluster(t, testserver.WithAuth(), testserver.WithClientProxies())
	member := c.Members()[0].Name
	if err := c.Blackhole(member); err != nil {
		t.Fatal(err)
	}
	user, password := c.RootCredentials()
	cfg := client.Config{
		Endpoints:   []string{c.ProxyEndpoint(member)},
		Username:    user,
		Password:    password,
		DialTimeout: 300 * time.Millisecond,
		LookupEnv:   func(string) (string, bool) { return "", false },
	}
	s, err := cfg.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	ctx := etcdCtx(t)
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { _, errs[i] = sharedClient(ctx, s) })
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			t.Fatalf("caller %d connected through a black hole", i)
		}
	}
	if err := c.Unblackhole(member); err != nil {
		t.Fatal(err)
	}
	cl, err := sharedClient(ctx, s)
	if err != nil {
		t.Fatalf("after the cluster became reachable: %v", err)
	}
	if _, err := cl.Get(ctx, "/anything"); err != nil {
		t.Fatal(err)
	}
	again, err := sharedClient(ctx, s)
	if err != nil || again != cl {
		t.Fatalf("a second caller got %p, %v; want the open client %p", again, err, cl)
	}
}

// A provider configured before its cluster exists (an etcd_cluster created
// earlier in the same apply, endpoints written in the provider block):
// the warm-up's connection attempts fail and gRPC backs off, for longer
// each time. The first real request, once the cluster answers, must not
// wait that backoff out.
func TestWarmUpBeforeTheClusterExists(t *testing.T) {
	c := startCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there yet: connections are refused
	resp := configure(t, nil, map[string]tftypes.Value{
		"endpoints":       tftypes.NewValue(tftypes.List{ElementType: tftypes.String}, []tftypes.Value{tftypes.NewValue(tftypes.String, "http://"+addr)}),
		"request_timeout": tftypes.NewValue(tftypes.String, "3s"),
	})
	if resp.Diagnostics.HasError() {
		t.Fatal(resp.Diagnostics)
	}
	data := providerDataFrom(resp.ResourceData, &resp.Diagnostics)
	// The warm-up fails, and requests made meanwhile fail too, each
	// failed attempt making gRPC wait longer before the next (1 s, 1.6 s,
	// 2.56 s, 4.1 s, ...).
	warm := warmedUp(t, ctx, data).c
	for range 4 {
		rctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
		_, err := warm.Get(rctx, "/warm/early")
		cancel()
		if err == nil {
			t.Fatal("a read succeeded before the cluster existed")
		}
	}
	// The cluster comes up at that address.
	fwd, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer fwd.Close()
	target := strings.TrimPrefix(c.Endpoints()[0], "http://")
	go func() {
		for {
			in, err := fwd.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				in.Close()
				continue
			}
			go func() { _, _ = io.Copy(out, in); out.Close() }()
			go func() { _, _ = io.Copy(in, out); in.Close() }()
		}
	}()
	cl, diags := data.Client(ctx)
	if diags.HasError() {
		t.Fatal(diags)
	}
	if _, err := cl.GetKey(ctx, "/warm/absent"); !errors.Is(err, client.ErrKeyNotFound) {
		t.Fatalf("first read once the cluster is up: %v", err)
	}
}

// warmedUp waits until the warm-up that Configure started for data has
// opened its client, or failed to.
func warmedUp(t *testing.T, ctx context.Context, data *providerData) *pendingClient {
	t.Helper()
	for {
		if v, ok := processClients.Load(data.settings.Fingerprint()); ok {
			p := v.(*pendingClient)
			select {
			case <-p.done:
				return p
			default:
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("no client was opened after Configure")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// While the provider configuration is unknown, etcd_key's Read keeps a
// state it has applied (with the warning), but an imported key, whose state
// is only the key, is read: the error says why it cannot be.
func TestKeyReadUnconfigured(t *testing.T) {
	ctx := context.Background()
	resp := configure(t, nil, map[string]tftypes.Value{
		"endpoints": tftypes.NewValue(tftypes.List{ElementType: tftypes.String}, tftypes.UnknownValue),
	})
	r := &keyResource{provider: providerDataFrom(resp.ResourceData, &resp.Diagnostics)}
	var sresp resource.SchemaResponse
	r.Schema(ctx, resource.SchemaRequest{}, &sresp)
	read := func(m keyResourceModel) *resource.ReadResponse {
		state := tfsdk.State{Schema: sresp.Schema}
		if d := state.Set(ctx, m); d.HasError() {
			t.Fatal(d)
		}
		out := &resource.ReadResponse{State: state}
		r.Read(ctx, resource.ReadRequest{State: state}, out)
		return out
	}
	applied := keyResourceModel{ID: types.StringValue("/k"), Key: types.StringValue("/k"), Value: types.StringValue("v"),
		ValueBase64: types.StringValue("dg=="), Lease: types.StringNull(), CreateRevision: types.Int64Value(2),
		ModRevision: types.Int64Value(3), Version: types.Int64Value(1), ValueWO: types.StringNull(),
		ValueBase64WO: types.StringNull(), ValueWOVersion: types.Int64Null(), AdoptIfEqual: types.BoolValue(false),
		KeepOnDestroy: types.BoolValue(false)}
	kept := read(applied)
	var got keyResourceModel
	kept.State.Get(ctx, &got)
	if kept.Diagnostics.HasError() || kept.Diagnostics.WarningsCount() != 1 || got != applied {
		t.Fatalf("applied key: diagnostics %v, state %+v", kept.Diagnostics, got)
	}
	imported := keyResourceModel{ID: types.StringValue("/k"), Key: types.StringValue("/k"), Value: types.StringNull(),
		ValueBase64: types.StringNull(), Lease: types.StringNull(), CreateRevision: types.Int64Null(),
		ModRevision: types.Int64Null(), Version: types.Int64Null(), ValueWO: types.StringNull(),
		ValueBase64WO: types.StringNull(), ValueWOVersion: types.Int64Null(), AdoptIfEqual: types.BoolNull(),
		KeepOnDestroy: types.BoolNull()}
	failed := read(imported)
	if !failed.Diagnostics.HasError() || !strings.Contains(failed.Diagnostics.Errors()[0].Detail(), "not known until apply: endpoints") {
		t.Fatalf("imported key: diagnostics %v", failed.Diagnostics)
	}
}
