package provider

import (
	"context"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

func TestStateUnlessChanged(t *testing.T) {
	ctx := context.Background()
	sresp := &resource.SchemaResponse{}
	newKeyResource().Schema(ctx, resource.SchemaRequest{}, sresp)
	s := sresp.Schema
	typ := s.Type().TerraformType(ctx)

	obj := func(value, lease tftypes.Value, mod tftypes.Value) tftypes.Value {
		attrs := map[string]tftypes.Value{
			"id":              tftypes.NewValue(tftypes.String, "/k"),
			"key":             tftypes.NewValue(tftypes.String, "/k"),
			"value":           value,
			"lease":           lease,
			"create_revision": tftypes.NewValue(tftypes.Number, 5),
			"mod_revision":    mod,
			"version":         tftypes.NewValue(tftypes.Number, 2),
		}
		// Every other attribute of the schema (value_base64, the write-only
		// ones, adopt_if_equal, ...) is null, so that the test follows the
		// schema as it grows.
		for name, at := range typ.(tftypes.Object).AttributeTypes {
			if _, ok := attrs[name]; !ok {
				attrs[name] = tftypes.NewValue(at, nil)
			}
		}
		return tftypes.NewValue(typ, attrs)
	}
	str := func(s string) tftypes.Value { return tftypes.NewValue(tftypes.String, s) }
	null := tftypes.NewValue(tftypes.String, nil)
	unknownStr := tftypes.NewValue(tftypes.String, tftypes.UnknownValue)
	unknownNum := tftypes.NewValue(tftypes.Number, tftypes.UnknownValue)
	prior := obj(str("a"), null, tftypes.NewValue(tftypes.Number, 9))

	m := stateUnlessChanged(path.Root("value"), path.Root("value_base64"), path.Root("lease"))
	for _, tc := range []struct {
		name  string
		state tftypes.Value
		plan  tftypes.Value
		want  types.Int64
	}{
		{"unchanged keeps state", prior, obj(str("a"), null, unknownNum), types.Int64Value(9)},
		{"value changed", prior, obj(str("b"), null, unknownNum), types.Int64Unknown()},
		{"value unknown", prior, obj(unknownStr, null, unknownNum), types.Int64Unknown()},
		{"lease added", prior, obj(str("a"), str("1f"), unknownNum), types.Int64Unknown()},
		{"create", tftypes.NewValue(typ, nil), obj(str("a"), null, unknownNum), types.Int64Unknown()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := tfsdk.State{Schema: s, Raw: tc.state}
			plan := tfsdk.Plan{Schema: s, Raw: tc.plan}
			req := planmodifier.Int64Request{
				Path:      path.Root("mod_revision"),
				Plan:      plan,
				State:     state,
				PlanValue: types.Int64Unknown(),
			}
			if !tc.state.IsNull() {
				req.StateValue = types.Int64Value(9)
			}
			resp := &planmodifier.Int64Response{PlanValue: req.PlanValue}
			m.PlanModifyInt64(ctx, req, resp)
			if resp.Diagnostics.HasError() {
				t.Fatal(resp.Diagnostics)
			}
			if !resp.PlanValue.Equal(tc.want) {
				t.Fatalf("plan = %s, want %s", resp.PlanValue, tc.want)
			}
		})
	}
}

func TestStateUnlessChangedRootsOnly(t *testing.T) {
	typ := tftypes.Object{AttributeTypes: map[string]tftypes.Type{"value": tftypes.String}}
	v := tftypes.NewValue(typ, map[string]tftypes.Value{"value": tftypes.NewValue(tftypes.String, "a")})
	m := stateUnlessChangedModifier{attrs: []path.Path{path.Root("value").AtName("nested")}}
	if _, ok := m.rootsChanged(v, v); ok {
		t.Fatal("a nested path must be left to the framework")
	}
	m = stateUnlessChangedModifier{attrs: []path.Path{path.Root("missing")}}
	if _, ok := m.rootsChanged(v, v); ok {
		t.Fatal("an attribute missing from the objects must be left to the framework")
	}
	m = stateUnlessChangedModifier{attrs: []path.Path{path.Root("value")}}
	if changed, ok := m.rootsChanged(v, v); !ok || changed {
		t.Fatalf("equal values: changed %v, ok %v", changed, ok)
	}
}
