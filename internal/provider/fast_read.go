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
// the framework path, and encodes the model back. Everything else, and any
// etcd_key state it does not recognise exactly (private state, such as the
// framework's marker on the first read after an import, a resource
// identity, JSON state, an attribute set that is not the schema's), goes to
// the framework unchanged. TestKeyFastReadMatchesFramework compares the two
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
	if req.TypeName != keyTypeName || len(req.Private) > 0 || req.CurrentIdentity != nil ||
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
	resp := &tfprotov6.ReadResourceResponse{}
	found, diags := readKey(ctx, data, &state)
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

// keyStateAttributes is the number of attributes in etcd_key's schema.
const keyStateAttributes = 8

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
	}
	return nil
}

var keyStateOrder = [keyStateAttributes]string{
	"create_revision", "id", "key", "lease", "mod_revision", "value", "value_base64", "version",
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
	var seen uint8 // bit i: keyStateOrder[i] was decoded
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
		switch s, i := m.stringAttr(name), m.int64Attr(name); {
		case code == msgpcode.Nil:
			if dec.DecodeNil() != nil {
				return m, false
			}
			if s != nil {
				*s = types.StringNull()
			} else {
				*i = types.Int64Null()
			}
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
		if s := m.stringAttr(name); s != nil {
			if s.IsNull() || s.IsUnknown() {
				err = enc.EncodeNil()
			} else {
				err = enc.EncodeString(s.ValueString())
			}
		} else {
			i := m.int64Attr(name)
			if i.IsNull() || i.IsUnknown() {
				err = enc.EncodeNil()
			} else {
				err = enc.EncodeInt(i.ValueInt64())
			}
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
