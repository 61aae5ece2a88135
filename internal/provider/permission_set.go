package provider

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/attr/xattr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types/basetypes"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// permissionSetType is the type of etcd_role's permissions: a set of
// permission objects, as basetypes.SetType, but with its three set-wide
// operations in linear time instead of quadratic.
//
// A role may hold a thousand permissions. The framework's set type checks
// for duplicate elements by comparing every pair, on every read of the
// attribute (each ValueAtPath, each model conversion), and SetValue.Equal
// looks every element up in the other set the same way. Its semantic
// equality step in ReadResource compares every new element with every
// prior one, and stringifies the element's path for logging each time.
// Together that made a plan of one role with 1,000 permissions take about
// a minute of CPU (`make bench BENCH_ARGS='-users 1'`). Here each element
// is keyed by a canonical encoding (valueKey), and the operations compare
// keys.
type permissionSetType struct {
	basetypes.SetType
}

var (
	_ basetypes.SetTypable = permissionSetType{}
	//nolint:staticcheck // xattr.TypeWithValidate is deprecated, but it is what the framework calls for sets.
	_ xattr.TypeWithValidate                  = permissionSetType{}
	_ basetypes.SetValuableWithSemanticEquals = permissionSetValue{}
)

// permissionSet is the type of the permissions attribute.
var permissionSet = permissionSetType{basetypes.SetType{ElemType: permissionObjectType}}

func (t permissionSetType) Equal(o attr.Type) bool {
	other, ok := o.(permissionSetType)
	return ok && t.SetType.Equal(other.SetType)
}

func (t permissionSetType) String() string { return "provider.permissionSetType" }

func (t permissionSetType) ValueType(context.Context) attr.Value {
	return permissionSetValue{SetValue: basetypes.NewSetNull(t.ElemType)}
}

func (t permissionSetType) ValueFromSet(_ context.Context, in basetypes.SetValue) (basetypes.SetValuable, diag.Diagnostics) {
	return permissionSetValue{SetValue: in}, nil
}

func (t permissionSetType) ValueFromTerraform(ctx context.Context, in tftypes.Value) (attr.Value, error) {
	v, err := t.SetType.ValueFromTerraform(ctx, in)
	if err != nil {
		return nil, err
	}
	set, ok := v.(basetypes.SetValue)
	if !ok {
		return nil, fmt.Errorf("unexpected value type %T for %s", v, t)
	}
	return permissionSetValue{SetValue: set}, nil
}

// Validate reports duplicate elements, as basetypes.SetType.Validate does,
// with a map of element keys instead of comparing every pair.
func (t permissionSetType) Validate(ctx context.Context, in tftypes.Value, p path.Path) diag.Diagnostics {
	var diags diag.Diagnostics
	if in.Type() == nil || !in.IsKnown() || in.IsNull() {
		return diags
	}
	var elems []tftypes.Value
	if err := in.As(&elems); err != nil {
		diags.AddAttributeError(p, "Set Type Validation Error", "The permissions could not be read: "+err.Error()+". This is a provider bug; please report it.")
		return diags
	}
	seen := make(map[string]bool, len(elems))
	for _, e := range elems {
		if !e.IsFullyKnown() {
			continue
		}
		key, ok := valueKey(e)
		if !ok {
			// Not a shape valueKey knows: leave the check to the
			// framework's own type.
			return t.SetType.Validate(ctx, in, p)
		}
		if seen[key] {
			diags.AddAttributeError(p, "Duplicate Set Element", fmt.Sprintf("This attribute contains duplicate values of: %s", e))
			continue
		}
		seen[key] = true
	}
	return diags
}

// permissionSetValue is a value of permissionSetType.
type permissionSetValue struct {
	basetypes.SetValue
}

func (v permissionSetValue) Type(context.Context) attr.Type { return permissionSet }

// Equal is basetypes.SetValue.Equal in linear time: same state, element
// type and elements, in any order.
func (v permissionSetValue) Equal(o attr.Value) bool {
	other, ok := o.(permissionSetValue)
	if !ok {
		return false
	}
	if v.IsNull() != other.IsNull() || v.IsUnknown() != other.IsUnknown() {
		return false
	}
	if v.IsNull() || v.IsUnknown() {
		return v.SetValue.Equal(other.SetValue)
	}
	same, ok := sameElements(v.SetValue, other.SetValue)
	if !ok {
		return v.SetValue.Equal(other.SetValue)
	}
	return same
}

// SetSemanticEquals tells the framework to keep the prior value when the
// new one has the same elements, so that it does not compare every element
// with every prior one.
func (v permissionSetValue) SetSemanticEquals(_ context.Context, prior basetypes.SetValuable) (bool, diag.Diagnostics) {
	p, ok := prior.(permissionSetValue)
	if !ok || p.IsNull() || p.IsUnknown() || v.IsNull() || v.IsUnknown() {
		return false, nil
	}
	same, ok := sameElements(v.SetValue, p.SetValue)
	return ok && same, nil
}

// sameElements reports whether a and b, both known, hold the same
// elements; ok is false when an element cannot be keyed (not fully known).
func sameElements(a, b basetypes.SetValue) (same, ok bool) {
	ae, be := a.Elements(), b.Elements()
	if len(ae) != len(be) {
		return false, true
	}
	if !a.ElementType(context.Background()).Equal(b.ElementType(context.Background())) {
		return false, true
	}
	keys := make(map[string]int, len(ae))
	for _, e := range ae {
		k, ok := elementKey(e)
		if !ok {
			return false, false
		}
		keys[k]++
	}
	for _, e := range be {
		k, ok := elementKey(e)
		if !ok {
			return false, false
		}
		if keys[k] == 0 {
			return false, true
		}
		keys[k]--
	}
	return true, true
}

// elementKey is the canonical encoding of a fully known element.
func elementKey(e attr.Value) (string, bool) {
	tv, err := e.ToTerraformValue(context.Background())
	if err != nil || !tv.IsFullyKnown() {
		return "", false
	}
	return valueKey(tv)
}

// valueKey encodes a fully known object of strings and bools (a
// permission) so that two values have the same key exactly when they are
// equal: attributes in name order, each null or its quoted value. ok is
// false for any other shape.
func valueKey(v tftypes.Value) (string, bool) {
	var b strings.Builder
	ok := appendValueKey(&b, v)
	return b.String(), ok
}

func appendValueKey(b *strings.Builder, v tftypes.Value) bool {
	switch {
	case v.IsNull():
		b.WriteString("n")
	case v.Type().Is(tftypes.String):
		var s string
		if v.As(&s) != nil {
			return false
		}
		b.WriteString(strconv.Quote(s))
	case v.Type().Is(tftypes.Bool):
		var t bool
		if v.As(&t) != nil {
			return false
		}
		b.WriteString(strconv.FormatBool(t))
	case v.Type().Is(tftypes.Object{}):
		var attrs map[string]tftypes.Value
		if v.As(&attrs) != nil {
			return false
		}
		b.WriteByte('{')
		for _, name := range slices.Sorted(maps.Keys(attrs)) {
			b.WriteString(strconv.Quote(name))
			b.WriteByte(':')
			if !appendValueKey(b, attrs[name]) {
				return false
			}
			b.WriteByte(',')
		}
		b.WriteByte('}')
	default:
		return false
	}
	return true
}
