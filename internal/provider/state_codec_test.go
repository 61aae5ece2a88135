package provider

import (
	"context"
	"reflect"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

func resourceState(t testing.TB, r resource.Resource) tfsdk.State {
	t.Helper()
	var resp resource.SchemaResponse
	r.Schema(context.Background(), resource.SchemaRequest{}, &resp)
	typ := resp.Schema.Type().TerraformType(context.Background())
	return tfsdk.State{Schema: resp.Schema, Raw: tftypes.NewValue(typ, nil)}
}

// The fast path gives exactly what the framework's Get and Set give.
func TestStateCodecMatchesFramework(t *testing.T) {
	ctx := context.Background()
	keyModels := []keyResourceModel{
		{
			ID: types.StringValue("/k"), Key: types.StringValue("/k"), Value: types.StringValue("v"),
			ValueBase64: types.StringNull(), Lease: types.StringValue("1f"),
			CreateRevision: types.Int64Value(2), ModRevision: types.Int64Value(1 << 40), Version: types.Int64Value(3),
		},
		{
			ID: types.StringValue(""), Key: types.StringUnknown(), Value: types.StringNull(),
			ValueBase64: types.StringValue("/w=="), Lease: types.StringNull(),
			CreateRevision: types.Int64Null(), ModRevision: types.Int64Unknown(), Version: types.Int64Value(-1),
		},
	}
	for _, m := range keyModels {
		fast, slow := resourceState(t, newKeyResource()), resourceState(t, newKeyResource())
		// A Read's response state holds the prior state.
		if d := slow.Set(ctx, m); d.HasError() {
			t.Fatal(d)
		}
		fast.Raw = slow.Raw.Copy()
		if d := setState(ctx, &fast, m); d.HasError() {
			t.Fatal(d)
		}
		if !fast.Raw.Equal(slow.Raw) {
			t.Fatalf("setState:\n%v\nframework:\n%v", fast.Raw, slow.Raw)
		}
		var got, want keyResourceModel
		if d := getState(ctx, fast, &got); d.HasError() {
			t.Fatal(d)
		}
		if d := slow.Get(ctx, &want); d.HasError() {
			t.Fatal(d)
		}
		if got != want || got != m {
			t.Fatalf("getState: %+v\nframework: %+v\nwant %+v", got, want, m)
		}
	}

	lease := leaseResourceModel{ID: types.StringValue("00000000000000ff"), TTL: types.Int64Value(60), GrantedTTL: types.Int64Value(61)}
	fast, slow := resourceState(t, newLeaseResource()), resourceState(t, newLeaseResource())
	_ = slow.Set(ctx, lease)
	fast.Raw = slow.Raw.Copy()
	if d := setState(ctx, &fast, lease); d.HasError() || !fast.Raw.Equal(slow.Raw) {
		t.Fatalf("lease: %v %v", d, fast.Raw)
	}
	var back leaseResourceModel
	if d := getState(ctx, fast, &back); d.HasError() || back != lease {
		t.Fatalf("lease: %v %+v", d, back)
	}
}

// Models the fast path does not handle, and states without a type, go
// through the framework.
func TestStateCodecFallsBack(t *testing.T) {
	ctx := context.Background()
	if codecFields(reflect.TypeOf(keyPrefixModel{})) != nil {
		t.Fatal("a model with a map attribute took the fast path")
	}
	// A null state (no prior value): Set must still produce the object.
	s := resourceState(t, newLeaseResource())
	s.Raw = tftypes.Value{}
	m := leaseResourceModel{ID: types.StringValue("1"), TTL: types.Int64Value(5), GrantedTTL: types.Int64Value(5)}
	if d := setState(ctx, &s, m); d.HasError() {
		t.Fatal(d)
	}
	var back leaseResourceModel
	if d := getState(ctx, s, &back); d.HasError() || back != m {
		t.Fatalf("%v %+v", d, back)
	}
}

func BenchmarkStateCodec(b *testing.B) {
	ctx := context.Background()
	m := keyResourceModel{
		ID: types.StringValue("/k"), Key: types.StringValue("/k"), Value: types.StringValue("v"),
		ValueBase64: types.StringNull(), Lease: types.StringNull(),
		CreateRevision: types.Int64Value(2), ModRevision: types.Int64Value(5), Version: types.Int64Value(3),
	}
	s := resourceState(b, newKeyResource())
	_ = s.Set(ctx, m)
	b.Run("framework", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got keyResourceModel
			_ = s.Get(ctx, &got)
			out := s
			_ = out.Set(ctx, got)
		}
	})
	b.Run("codec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var got keyResourceModel
			_ = getState(ctx, s, &got)
			out := s
			_ = setState(ctx, &out, got)
		}
	})
}
