package provider

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"
)

// The refresh of an etcd_key is the one RPC a plan sends once per resource
// that does real work in the provider, and in a plan of a thousand keys the
// framework's generic path around it cost about three times the work of the
// Read itself: msgpack decoded into tftypes values and walked several times
// (schema-wide semantic equality, collection-block and write-only
// nullification, none of which can change an etcd_key), the resource built
// and configured again, and the result encoded through tftypes again.
//
// keyReadServer serves ReadResource for etcd_key itself: it decodes the
// state's msgpack straight into keyResourceModel, runs the same readKey as
// the framework path, and encodes the model back with the resource identity
// (the key). Everything else, and any etcd_key state it does not recognise
// exactly (private state, such as the framework's marker on the first read
// after an import or the HMAC of a write-only value, an identity naming
// another key, JSON state, an attribute set that is not the schema's), goes
// to the framework unchanged. TestKeyFastReadMatchesFramework compares the two
// paths on the same requests against a real cluster.

// protocolServer is everything the framework's protocol server implements;
// keyReadServer embeds it so that the plugin server still finds every
// optional RPC interface on the wrapper.
type protocolServer interface {
	tfprotov6.ProviderServer
	tfprotov6.ListResourceServer
	tfprotov6.ActionServer
	tfprotov6.StateStoreServer
}

type keyReadServer struct {
	protocolServer
	provider *etcdProvider
}

const keyTypeName = "etcd_key"

func (s *keyReadServer) ReadResource(ctx context.Context, req *tfprotov6.ReadResourceRequest) (*tfprotov6.ReadResourceResponse, error) {
	if resp, ok := s.readKey(ctx, req); ok {
		return resp, nil
	}
	return s.protocolServer.ReadResource(ctx, req)
}

// readKey serves req if it is an etcd_key refresh it recognises exactly;
// ok is false when the framework must serve it.
func (s *keyReadServer) readKey(ctx context.Context, req *tfprotov6.ReadResourceRequest) (*tfprotov6.ReadResourceResponse, bool) {
	if req.TypeName != keyTypeName || len(req.Private) > 0 ||
		req.CurrentState == nil || len(req.CurrentState.MsgPack) == 0 {
		return nil, false
	}
	data := s.provider.configured.Load()
	if data == nil {
		return nil, false
	}
	state, ok := decodeKeyState(req.CurrentState.MsgPack)
	if !ok {
		return nil, false
	}
	// The identity is the key. One that says otherwise is the framework's
	// to report.
	identity, err := encodeKeyIdentity(state.Key.ValueString())
	if err != nil || req.CurrentIdentity != nil && req.CurrentIdentity.IdentityData != nil &&
		!bytes.Equal(req.CurrentIdentity.IdentityData.MsgPack, identity) {
		return nil, false
	}
	resp := &tfprotov6.ReadResourceResponse{
		NewIdentity: &tfprotov6.ResourceIdentityData{IdentityData: &tfprotov6.DynamicValue{MsgPack: identity}},
	}
	found, diags := readKey(ctx, data, &state, nil)
	resp.Diagnostics = protoDiagnostics(diags)
	if diags.HasError() {
		// As the framework does: the state goes back as it came.
		resp.NewState = req.CurrentState
		return resp, true
	}
	if !found {
		resp.NewState = &tfprotov6.DynamicValue{MsgPack: []byte{msgpcode.Nil}}
		return resp, true
	}
	b, err := encodeKeyState(state)
	if err != nil {
		return nil, false // cannot happen with a bytes.Buffer; the framework would redo the read
	}
	resp.NewState = &tfprotov6.DynamicValue{MsgPack: b}
	return resp, true
}

// encodeKeyIdentity is the msgpack of etcd_key's identity object.
func encodeKeyIdentity(key string) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	if err := enc.EncodeMapLen(1); err != nil {
		return nil, err
	}
	if err := enc.EncodeString("key"); err != nil {
		return nil, err
	}
	if err := enc.EncodeString(key); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// keyStateAttributes is the number of attributes in etcd_key's schema.
const keyStateAttributes = 13

func (m *keyResourceModel) stringAttr(name string) *types.String {
	switch name {
	case "id":
		return &m.ID
	case "key":
		return &m.Key
	case "value":
		return &m.Value
	case "value_base64":
		return &m.ValueBase64
	case "lease":
		return &m.Lease
	case "value_wo":
		return &m.ValueWO
	case "value_base64_wo":
		return &m.ValueBase64WO
	}
	return nil
}

func (m *keyResourceModel) boolAttr(name string) *types.Bool {
	switch name {
	case "adopt_if_equal":
		return &m.AdoptIfEqual
	case "keep_on_destroy":
		return &m.KeepOnDestroy
	}
	return nil
}

func (m *keyResourceModel) int64Attr(name string) *types.Int64 {
	switch name {
	case "create_revision":
		return &m.CreateRevision
	case "mod_revision":
		return &m.ModRevision
	case "version":
		return &m.Version
	case "value_wo_version":
		return &m.ValueWOVersion
	}
	return nil
}

var keyStateOrder = [keyStateAttributes]string{
	"adopt_if_equal", "create_revision", "id", "keep_on_destroy", "key", "lease", "mod_revision",
	"value", "value_base64", "value_base64_wo", "value_wo", "value_wo_version", "version",
}

// decodeKeyState decodes the msgpack of a known, non-null etcd_key state
// object. ok is false for anything else: another attribute set, an unknown
// value, a number that is not an integer, trailing bytes.
func decodeKeyState(b []byte) (keyResourceModel, bool) {
	var m keyResourceModel
	r := bytes.NewReader(b)
	dec := msgpack.NewDecoder(r)
	n, err := dec.DecodeMapLen()
	if err != nil || n != keyStateAttributes {
		return m, false
	}
	var seen uint16 // bit i: keyStateOrder[i] was decoded
	for range n {
		name, err := dec.DecodeString()
		if err != nil {
			return m, false
		}
		at := slices.Index(keyStateOrder[:], name)
		if at < 0 || seen&(1<<at) != 0 {
			return m, false
		}
		seen |= 1 << at
		code, err := dec.PeekCode()
		if err != nil {
			return m, false
		}
		switch s, i, bl := m.stringAttr(name), m.int64Attr(name), m.boolAttr(name); {
		case code == msgpcode.Nil:
			if dec.DecodeNil() != nil {
				return m, false
			}
			switch {
			case s != nil:
				*s = types.StringNull()
			case i != nil:
				*i = types.Int64Null()
			default:
				*bl = types.BoolNull()
			}
		case bl != nil && (code == msgpcode.True || code == msgpcode.False):
			v, err := dec.DecodeBool()
			if err != nil {
				return m, false
			}
			*bl = types.BoolValue(v)
		case s != nil && msgpcode.IsString(code):
			v, err := dec.DecodeString()
			if err != nil {
				return m, false
			}
			*s = types.StringValue(v)
		case i != nil && isMsgpackInt(code):
			v, err := decodeInt64(dec, code)
			if err != nil {
				return m, false
			}
			*i = types.Int64Value(v)
		default:
			return m, false
		}
	}
	return m, r.Len() == 0
}

func isMsgpackInt(c byte) bool {
	return msgpcode.IsFixedNum(c) || (c >= msgpcode.Uint8 && c <= msgpcode.Uint64) || (c >= msgpcode.Int8 && c <= msgpcode.Int64)
}

var errIntRange = errors.New("integer out of int64 range")

func decodeInt64(dec *msgpack.Decoder, code byte) (int64, error) {
	if code == msgpcode.Uint64 {
		u, err := dec.DecodeUint64()
		if err != nil {
			return 0, err
		}
		if u > math.MaxInt64 {
			return 0, errIntRange
		}
		return int64(u), nil
	}
	return dec.DecodeInt64()
}

// encodeKeyState is the msgpack of m as the state object of etcd_key.
func encodeKeyState(m keyResourceModel) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(256)
	enc := msgpack.NewEncoder(&buf)
	if err := enc.EncodeMapLen(keyStateAttributes); err != nil {
		return nil, err
	}
	for _, name := range keyStateOrder {
		if err := enc.EncodeString(name); err != nil {
			return nil, err
		}
		var err error
		s, i, bl := m.stringAttr(name), m.int64Attr(name), m.boolAttr(name)
		switch {
		case s != nil && !s.IsNull() && !s.IsUnknown():
			err = enc.EncodeString(s.ValueString())
		case i != nil && !i.IsNull() && !i.IsUnknown():
			err = enc.EncodeInt(i.ValueInt64())
		case bl != nil && !bl.IsNull() && !bl.IsUnknown():
			err = enc.EncodeBool(bl.ValueBool())
		default:
			err = enc.EncodeNil()
		}
		if err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}

// protoDiagnostics converts diagnostics as the framework does.
func protoDiagnostics(diags diag.Diagnostics) []*tfprotov6.Diagnostic {
	if len(diags) == 0 {
		return nil
	}
	out := make([]*tfprotov6.Diagnostic, 0, len(diags))
	for _, d := range diags {
		pd := &tfprotov6.Diagnostic{
			Severity: tfprotov6.DiagnosticSeverityInvalid,
			Summary:  d.Summary(),
			Detail:   d.Detail(),
		}
		switch d.Severity() {
		case diag.SeverityError:
			pd.Severity = tfprotov6.DiagnosticSeverityError
		case diag.SeverityWarning:
			pd.Severity = tfprotov6.DiagnosticSeverityWarning
		}
		if wp, ok := d.(diag.DiagnosticWithPath); ok {
			pd.Attribute = attributePath(wp.Path())
		}
		out = append(out, pd)
	}
	return out
}

// attributePath converts the steps a diagnostic of etcd_key's flat schema
// can name; a step of another kind ends the path there.
func attributePath(p path.Path) *tftypes.AttributePath {
	steps := p.Steps()
	if len(steps) == 0 {
		return nil
	}
	ap := tftypes.NewAttributePath()
	for _, step := range steps {
		switch s := step.(type) {
		case path.PathStepAttributeName:
			ap = ap.WithAttributeName(string(s))
		case path.PathStepElementKeyString:
			ap = ap.WithElementKeyString(string(s))
		case path.PathStepElementKeyInt:
			ap = ap.WithElementKeyInt(int(s))
		default:
			return ap
		}
	}
	return ap
}
