package provider

import (
	"context"
	"reflect"
	"sync"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// getState and setState are tfsdk.State's Get and Set (getPlan and
// getConfig: tfsdk.Plan's and tfsdk.Config's Get) for the models of
// resources handled once per resource in every plan and refresh (etcd_key,
// etcd_lease),
// without the framework's per-call struct reflection: framework v1.19
// parses the struct tags, compiling a regular expression per field, on
// every Get and Set, which costs about as much CPU as the rest of a Read.
// The field layout of each model type is worked out once and cached.
//
// Only structs whose fields are all types.String, types.Int64 or types.Bool
// with a tfsdk tag take the fast path; anything else, or a value whose
// attributes do not match the struct, goes through the framework unchanged.

type codecKind int

const (
	codecString codecKind = iota
	codecInt64
	codecBool
)

type codecField struct {
	index int
	name  string
	kind  codecKind
}

// codecCache maps a struct type to its []codecField, or nil when the type
// is not supported.
var codecCache sync.Map

var (
	stringType = reflect.TypeFor[types.String]()
	int64Type  = reflect.TypeFor[types.Int64]()
	boolType   = reflect.TypeFor[types.Bool]()
)

func codecFields(t reflect.Type) []codecField {
	if cached, ok := codecCache.Load(t); ok {
		return cached.([]codecField)
	}
	var fields []codecField
	if t.Kind() == reflect.Struct {
		for i := range t.NumField() {
			f := t.Field(i)
			name := f.Tag.Get("tfsdk")
			kind := codecString
			switch f.Type {
			case stringType:
			case int64Type:
				kind = codecInt64
			case boolType:
				kind = codecBool
			default:
				name = ""
			}
			if name == "" || name == "-" || !f.IsExported() {
				fields = nil
				break
			}
			fields = append(fields, codecField{index: i, name: name, kind: kind})
		}
	}
	codecCache.Store(t, fields)
	return fields
}

// getState is s.Get(ctx, target) for a pointer to a model struct.
func getState(ctx context.Context, s tfsdk.State, target any) diag.Diagnostics {
	if decodeModel(ctx, s.Raw, target) {
		return nil
	}
	return s.Get(ctx, target)
}

// getPlan is p.Get(ctx, target), as getState.
func getPlan(ctx context.Context, p tfsdk.Plan, target any) diag.Diagnostics {
	if decodeModel(ctx, p.Raw, target) {
		return nil
	}
	return p.Get(ctx, target)
}

// getConfig is c.Get(ctx, target), as getState.
func getConfig(ctx context.Context, c tfsdk.Config, target any) diag.Diagnostics {
	if decodeModel(ctx, c.Raw, target) {
		return nil
	}
	return c.Get(ctx, target)
}

// decodeModel fills the model struct target points to from raw, and
// reports whether it could; when it could not, target may be partly
// filled and the framework must do the work.
func decodeModel(ctx context.Context, raw tftypes.Value, target any) bool {
	v := reflect.ValueOf(target)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return false
	}
	v = v.Elem()
	fields := codecFields(v.Type())
	var attrs map[string]tftypes.Value
	if fields == nil || !raw.IsKnown() || raw.IsNull() || raw.As(&attrs) != nil || len(attrs) != len(fields) {
		return false
	}
	for _, f := range fields {
		raw, ok := attrs[f.name]
		if !ok {
			return false
		}
		var (
			val attr.Value
			err error
		)
		switch f.kind {
		case codecString:
			val, err = types.StringType.ValueFromTerraform(ctx, raw)
		case codecInt64:
			val, err = types.Int64Type.ValueFromTerraform(ctx, raw)
		case codecBool:
			val, err = types.BoolType.ValueFromTerraform(ctx, raw)
		}
		if err != nil {
			return false
		}
		v.Field(f.index).Set(reflect.ValueOf(val))
	}
	return true
}

// setState is s.Set(ctx, value) for a model struct. s.Raw must already hold
// a value of the schema's type (as a Read's response state does); otherwise
// the framework does the work.
func setState(ctx context.Context, s *tfsdk.State, value any) diag.Diagnostics {
	v := reflect.ValueOf(value)
	fields := codecFields(v.Type())
	obj, ok := s.Raw.Type().(tftypes.Object)
	if fields == nil || !ok || len(obj.AttributeTypes) != len(fields) {
		return s.Set(ctx, value)
	}
	vals := make(map[string]tftypes.Value, len(fields))
	for _, f := range fields {
		typ, ok := obj.AttributeTypes[f.name]
		if !ok {
			return s.Set(ctx, value)
		}
		tv, err := v.Field(f.index).Interface().(attr.Value).ToTerraformValue(ctx)
		if err != nil || !tv.Type().Equal(typ) {
			return s.Set(ctx, value)
		}
		vals[f.name] = tv
	}
	s.Raw = tftypes.NewValue(obj, vals)
	return nil
}
