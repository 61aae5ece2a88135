package provider

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// randomPermissions draws n permission objects from a small space, so that
// sets of them collide, and spell the same range in different forms (null
// and "" range_end, null and false prefix).
func randomPermissions(t *testing.T, r *rand.Rand, n int) []attr.Value {
	t.Helper()
	out := make([]attr.Value, n)
	for i := range out {
		m := permissionModel{
			Key:      types.StringValue(fmt.Sprintf("/k%d", r.IntN(3))),
			RangeEnd: []types.String{types.StringNull(), types.StringValue(""), types.StringValue("n")}[r.IntN(3)],
			Prefix:   []types.Bool{types.BoolNull(), types.BoolValue(false), types.BoolValue(true)}[r.IntN(3)],
			Access:   types.StringValue([]string{"read", "write"}[r.IntN(2)]),
		}
		obj, diags := types.ObjectValueFrom(context.Background(), permissionAttrTypes, m)
		if diags.HasError() {
			t.Fatal(diags)
		}
		out[i] = obj
	}
	return out
}

// The linear-time operations of permissionSetType give exactly the
// answers of the framework's quadratic ones, on random sets: Equal and
// SetSemanticEquals as basetypes.SetValue.Equal, and Validate's duplicate
// count as basetypes.SetType.Validate's.
func TestPermissionSetMatchesFramework(t *testing.T) {
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2))
	equalSeen, dupSeen := 0, 0
	for range 2000 {
		a := randomPermissions(t, r, r.IntN(9))
		b := randomPermissions(t, r, r.IntN(9))
		if r.IntN(3) == 0 {
			b = append([]attr.Value{}, a...)
			r.Shuffle(len(b), func(i, j int) { b[i], b[j] = b[j], b[i] })
		}
		// Sets in the framework's own form (which dedupes nothing) and in ours.
		fa, fb := types.SetValueMust(permissionObjectType, a), types.SetValueMust(permissionObjectType, b)
		pa, pb := permissionSetValue{SetValue: fa}, permissionSetValue{SetValue: fb}
		want := fa.Equal(fb) && fb.Equal(fa)
		if got := pa.Equal(pb); got != want {
			t.Fatalf("Equal(%s, %s) = %t, framework %t", fa, fb, got, want)
		}
		if got, _ := pb.SetSemanticEquals(ctx, pa); got != want {
			t.Fatalf("SetSemanticEquals(%s, %s) = %t, want %t", fa, fb, got, want)
		}
		if want {
			equalSeen++
		}

		tv, err := fa.ToTerraformValue(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p := path.Root("permissions")
		wantDiags := permissionSet.SetType.Validate(ctx, tv, p)
		gotDiags := permissionSet.Validate(ctx, tv, p)
		if len(gotDiags) != len(wantDiags) {
			t.Fatalf("Validate(%s): %d diagnostics, framework %d: %v / %v", fa, len(gotDiags), len(wantDiags), gotDiags, wantDiags)
		}
		if len(wantDiags) > 0 {
			dupSeen++
		}
	}
	// The draws must have covered both answers of each check.
	if equalSeen < 100 || dupSeen < 100 {
		t.Fatalf("only %d equal pairs and %d sets with duplicates drawn", equalSeen, dupSeen)
	}
}

// Null, unknown and known sets are told apart, and a set of another type
// is never equal.
func TestPermissionSetStates(t *testing.T) {
	ctx := context.Background()
	known := permissionSetValue{SetValue: types.SetValueMust(permissionObjectType, nil)}
	null := permissionSetValue{SetValue: types.SetNull(permissionObjectType)}
	unknown := permissionSetValue{SetValue: types.SetUnknown(permissionObjectType)}
	vals := []permissionSetValue{known, null, unknown}
	for i, a := range vals {
		for j, b := range vals {
			if got := a.Equal(b); got != (i == j) {
				t.Errorf("%s.Equal(%s) = %t", a, b, got)
			}
		}
		if a.Equal(a.SetValue) {
			t.Errorf("%s equals its framework form", a)
		}
	}
	if got, _ := known.SetSemanticEquals(ctx, null); got {
		t.Error("an empty set is semantically equal to a null one")
	}
	if !permissionSet.Equal(known.Type(ctx)) || permissionSet.Equal(types.SetType{ElemType: permissionObjectType}) {
		t.Error("type equality")
	}
	v, err := permissionSet.ValueFromTerraform(ctx, tftypes.NewValue(permissionSet.TerraformType(ctx), nil))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := v.(permissionSetValue); !ok || !v.IsNull() {
		t.Fatalf("ValueFromTerraform(null) = %#v", v)
	}
}
