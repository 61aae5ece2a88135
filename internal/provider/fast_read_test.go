package provider

import (
	"context"
	"fmt"
	"net"
	"reflect"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

// configuredServer is a protocol server configured for endpoints, and the
// etcd_key state type it uses.
func configuredServer(t *testing.T, srv tfprotov6.ProviderServer, endpoints []string, extra map[string]tftypes.Value) tftypes.Object {
	t.Helper()
	ctx := context.Background()
	schemas, err := srv.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil {
		t.Fatal(err)
	}
	providerType := schemas.Provider.ValueType().(tftypes.Object)
	attrs := map[string]tftypes.Value{}
	for name, typ := range providerType.AttributeTypes {
		attrs[name] = tftypes.NewValue(typ, nil)
	}
	eps := make([]tftypes.Value, len(endpoints))
	for i, e := range endpoints {
		eps[i] = tftypes.NewValue(tftypes.String, e)
	}
	attrs["endpoints"] = tftypes.NewValue(tftypes.List{ElementType: tftypes.String}, eps)
	for name, v := range extra {
		attrs[name] = v
	}
	cfg, err := tfprotov6.NewDynamicValue(providerType, tftypes.NewValue(providerType, attrs))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.ConfigureProvider(ctx, &tfprotov6.ConfigureProviderRequest{Config: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range resp.Diagnostics {
		t.Fatalf("configure: %s: %s", d.Summary, d.Detail)
	}
	return schemas.ResourceSchemas[keyTypeName].ValueType().(tftypes.Object)
}

func keyStateValue(typ tftypes.Object, set map[string]any) tftypes.Value {
	attrs := map[string]tftypes.Value{}
	for name, at := range typ.AttributeTypes {
		attrs[name] = tftypes.NewValue(at, set[name])
	}
	return tftypes.NewValue(typ, attrs)
}

// The protocol-level etcd_key refresh (fast_read.go) answers exactly as the
// framework does, on the same requests against the same cluster: every
// branch of Read (value and value_base64, invalid UTF-8, lease spellings, a
// freshly imported state, a deleted key) and a failing read.
func TestKeyFastReadMatchesFramework(t *testing.T) {
	c := accCluster(t)
	t.Parallel()
	ctx := etcdCtx(t)
	prefix := keyPrefix(t)

	fast, err := NewProtocol6Server("test")()
	if err != nil {
		t.Fatal(err)
	}
	framework, err := providerserver.NewProtocol6WithError(New("test")())()
	if err != nil {
		t.Fatal(err)
	}
	typ := configuredServer(t, fast, c.Endpoints(), nil)
	configuredServer(t, framework, c.Endpoints(), nil)

	lease, err := c.Client().Grant(ctx, 600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = c.Client().Revoke(context.Background(), lease.ID) })
	mustPut(t, prefix+"text", "hello")
	mustPut(t, prefix+"empty", "")
	mustPut(t, prefix+"binary", "\xff\x00\xfe")
	mustPut(t, prefix+"leased", "x", clientv3.WithLease(lease.ID))
	leaseHex := client.FormatLeaseID(int64(lease.ID))

	cases := []struct {
		name  string
		state map[string]any
	}{
		{"stale text", map[string]any{"id": prefix + "text", "key": prefix + "text", "value": "old",
			"create_revision": 1, "mod_revision": 2, "version": 1}},
		{"empty value", map[string]any{"id": prefix + "empty", "key": prefix + "empty", "value": "",
			"create_revision": 1, "mod_revision": 1, "version": 1}},
		{"binary into value", map[string]any{"id": prefix + "binary", "key": prefix + "binary", "value": "abc"}},
		{"kept as base64", map[string]any{"id": prefix + "text", "key": prefix + "text", "value_base64": "aGVsbG8="}},
		{"lease spelled by the user", map[string]any{"id": prefix + "leased", "key": prefix + "leased", "value": "x",
			"lease": fmt.Sprintf("0x%X", lease.ID)}},
		{"lease unset in state", map[string]any{"id": prefix + "leased", "key": prefix + "leased", "value": "x"}},
		{"lease on an unleased key", map[string]any{"id": prefix + "text", "key": prefix + "text", "value": "hello",
			"lease": leaseHex}},
		{"just imported", map[string]any{"id": prefix + "text", "key": prefix + "text"}},
		{"write-only, record lost", map[string]any{"id": prefix + "text", "key": prefix + "text", "value_wo_version": 2,
			"keep_on_destroy": true, "create_revision": 1, "mod_revision": 1, "version": 1}},
		{"deleted", map[string]any{"id": prefix + "gone", "key": prefix + "gone", "value": "v",
			"create_revision": 5, "mod_revision": 5, "version": 1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			state, err := tfprotov6.NewDynamicValue(typ, keyStateValue(typ, tc.state))
			if err != nil {
				t.Fatal(err)
			}
			req := func() *tfprotov6.ReadResourceRequest {
				s := state // each server gets its own copy of the request
				return &tfprotov6.ReadResourceRequest{TypeName: keyTypeName, CurrentState: &s}
			}
			got, ok := fast.(*keyReadServer).readKey(ctx, req())
			if !ok {
				t.Fatal("the fast path declined a plain etcd_key state")
			}
			want, err := framework.ReadResource(ctx, req())
			if err != nil {
				t.Fatal(err)
			}
			compareReadResponses(t, typ, got, want)
		})
	}

	// A read that fails: both name the key attribute with the same error.
	t.Run("unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := []string{l.Addr().String()}
		l.Close()
		timeouts := map[string]tftypes.Value{
			"dial_timeout":    tftypes.NewValue(tftypes.String, "300ms"),
			"request_timeout": tftypes.NewValue(tftypes.String, "300ms"),
		}
		fast, _ := NewProtocol6Server("test")()
		framework, _ := providerserver.NewProtocol6WithError(New("test")())()
		configuredServer(t, fast, dead, timeouts)
		configuredServer(t, framework, dead, timeouts)
		state, err := tfprotov6.NewDynamicValue(typ, keyStateValue(typ, map[string]any{"id": "/k", "key": "/k", "value": "v"}))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := fast.(*keyReadServer).readKey(ctx, &tfprotov6.ReadResourceRequest{TypeName: keyTypeName, CurrentState: &state})
		if !ok {
			t.Fatal("the fast path declined a plain etcd_key state")
		}
		want, err := framework.ReadResource(ctx, &tfprotov6.ReadResourceRequest{TypeName: keyTypeName, CurrentState: &state})
		if err != nil {
			t.Fatal(err)
		}
		if len(want.Diagnostics) == 0 {
			t.Fatal("the framework path read from a closed port without an error")
		}
		compareReadResponses(t, typ, got, want)
	})
}

func compareReadResponses(t *testing.T, typ tftypes.Object, got, want *tfprotov6.ReadResourceResponse) {
	t.Helper()
	gotState, err := got.NewState.Unmarshal(typ)
	if err != nil {
		t.Fatalf("fast path state: %v", err)
	}
	wantState, err := want.NewState.Unmarshal(typ)
	if err != nil {
		t.Fatal(err)
	}
	if !gotState.Equal(wantState) {
		t.Errorf("state:\nfast path: %s\nframework: %s", gotState, wantState)
	}
	if got.NewIdentity == nil || want.NewIdentity == nil {
		t.Fatalf("identity: fast path %v, framework %v", got.NewIdentity, want.NewIdentity)
	}
	identityType := tftypes.Object{AttributeTypes: map[string]tftypes.Type{"key": tftypes.String}}
	gotID, err := got.NewIdentity.IdentityData.Unmarshal(identityType)
	if err != nil {
		t.Fatalf("fast path identity: %v", err)
	}
	wantID, err := want.NewIdentity.IdentityData.Unmarshal(identityType)
	if err != nil {
		t.Fatal(err)
	}
	if !gotID.Equal(wantID) {
		t.Errorf("identity:\nfast path: %s\nframework: %s", gotID, wantID)
	}
	if len(got.Private) != 0 || len(want.Private) != 0 {
		t.Errorf("private state: fast path %q, framework %q", got.Private, want.Private)
	}
	if len(got.Diagnostics) != len(want.Diagnostics) {
		t.Fatalf("diagnostics: fast path %v, framework %v", got.Diagnostics, want.Diagnostics)
	}
	for i := range got.Diagnostics {
		g, w := *got.Diagnostics[i], *want.Diagnostics[i]
		// The error text carries the remote address and timing; the
		// structure must be the same.
		if g.Severity != w.Severity || g.Summary != w.Summary || !reflect.DeepEqual(g.Attribute, w.Attribute) {
			t.Errorf("diagnostic %d:\nfast path: %+v\nframework: %+v", i, g, w)
		}
	}
}

// The fast path takes only states it recognises exactly and leaves the rest
// to the framework; its codec round-trips what the framework encodes.
func TestKeyFastReadCodec(t *testing.T) {
	srv, err := NewProtocol6Server("test")()
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens there; a request that the fast path takes fails fast.
	typ := configuredServer(t, srv, []string{"127.0.0.1:1"}, map[string]tftypes.Value{
		"dial_timeout":    tftypes.NewValue(tftypes.String, "100ms"),
		"request_timeout": tftypes.NewValue(tftypes.String, "100ms"),
	})
	if len(typ.AttributeTypes) != keyStateAttributes {
		t.Fatalf("etcd_key has %d attributes, the fast path knows %d: update fast_read.go", len(typ.AttributeTypes), keyStateAttributes)
	}
	for name := range typ.AttributeTypes {
		var m keyResourceModel
		if m.stringAttr(name) == nil && m.int64Attr(name) == nil && m.boolAttr(name) == nil {
			t.Errorf("attribute %s unknown to the fast path", name)
		}
	}

	full := keyStateValue(typ, map[string]any{"id": "/a", "key": "/a", "value": "é\x00", "lease": "694d7c8c1f0c7a0b",
		"create_revision": 1 << 40, "mod_revision": 7, "version": -1, "value_wo_version": 3,
		"adopt_if_equal": true, "keep_on_destroy": false})
	sparse := keyStateValue(typ, map[string]any{"id": "/a", "key": "/a"})
	for _, v := range []tftypes.Value{full, sparse} {
		dv, err := tfprotov6.NewDynamicValue(typ, v)
		if err != nil {
			t.Fatal(err)
		}
		m, ok := decodeKeyState(dv.MsgPack)
		if !ok {
			t.Fatalf("declined %s", v)
		}
		b, err := encodeKeyState(m)
		if err != nil {
			t.Fatal(err)
		}
		back, err := (&tfprotov6.DynamicValue{MsgPack: b}).Unmarshal(typ)
		if err != nil {
			t.Fatal(err)
		}
		if !back.Equal(v) {
			t.Errorf("round trip:\n got %s\nwant %s", back, v)
		}
	}

	// What it must leave to the framework.
	other := tftypes.Object{AttributeTypes: map[string]tftypes.Type{"id": tftypes.String}}
	unknown := keyStateValue(typ, map[string]any{"id": "/a", "key": "/a", "value": tftypes.UnknownValue})
	fraction := keyStateValue(typ, map[string]any{"id": "/a", "key": "/a", "version": 1.5})
	for name, v := range map[string]tftypes.Value{
		"another schema": tftypes.NewValue(other, map[string]tftypes.Value{"id": tftypes.NewValue(tftypes.String, "x")}),
		"unknown value":  unknown,
		"fraction":       fraction,
		"null object":    tftypes.NewValue(typ, nil),
	} {
		dv, err := tfprotov6.NewDynamicValue(v.Type(), v)
		if err != nil {
			t.Fatal(name, err)
		}
		if _, ok := decodeKeyState(dv.MsgPack); ok {
			t.Errorf("%s: the fast path took it", name)
		}
	}
	fs := srv.(*keyReadServer)
	dv, _ := tfprotov6.NewDynamicValue(typ, full)
	if _, ok := fs.readKey(context.Background(), &tfprotov6.ReadResourceRequest{TypeName: keyTypeName, CurrentState: &dv}); !ok {
		t.Fatal("the fast path declined a plain etcd_key state")
	}
	otherID, err := encodeKeyIdentity("/other")
	if err != nil {
		t.Fatal(err)
	}
	for name, req := range map[string]*tfprotov6.ReadResourceRequest{
		"identity of another key": {TypeName: keyTypeName, CurrentState: &dv,
			CurrentIdentity: &tfprotov6.ResourceIdentityData{IdentityData: &tfprotov6.DynamicValue{MsgPack: otherID}}},
		"private state": {TypeName: keyTypeName, CurrentState: &dv, Private: []byte(`{".import_before_read":"dHJ1ZQ=="}`)},
		"json state":    {TypeName: keyTypeName, CurrentState: &tfprotov6.DynamicValue{JSON: []byte(`{"id":"/a"}`)}},
		"other type":    {TypeName: "etcd_lease", CurrentState: &dv},
	} {
		if _, ok := fs.readKey(context.Background(), req); ok {
			t.Errorf("%s: the fast path took it", name)
		}
	}
}
