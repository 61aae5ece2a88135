package provider

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/diag"
)

// Private state is what a resource keeps in Terraform's state without
// showing it in plans: etcd_key_prefix's mod_revisions, etcd_cluster's
// generated CA key and, as private data, the lease and lock of the
// ephemeral resources. The
// framework's type for it lives in one of its internal packages, so code
// that is handed req.Private or resp.Private takes these interfaces.

// prefixRevisions is suffix → mod_revision, as etcd_key_prefix records them
// under privateRevisions and privateUnmanaged.
type prefixRevisions map[string]int64

type privateGetter interface {
	GetKey(ctx context.Context, key string) ([]byte, diag.Diagnostics)
}

type privateSetter interface {
	SetKey(ctx context.Context, key string, value []byte) diag.Diagnostics
}

func getRevisions(ctx context.Context, p privateGetter, key string) (prefixRevisions, diag.Diagnostics) {
	revs := prefixRevisions{}
	if p == nil {
		return revs, nil
	}
	b, diags := p.GetKey(ctx, key)
	if diags.HasError() || len(b) == 0 {
		return revs, diags
	}
	revs, err := decodeRevisions(b)
	if err != nil {
		revs = prefixRevisions{}
		diags.AddError("Corrupt private state", fmt.Sprintf("The key revisions recorded for etcd_key_prefix cannot be read (%v); run terraform apply -refresh-only to read them again.", err))
	}
	return revs, diags
}

func setRevisions(ctx context.Context, p privateSetter, key string, revs prefixRevisions) diag.Diagnostics {
	if len(revs) == 0 {
		return p.SetKey(ctx, key, nil)
	}
	return p.SetKey(ctx, key, revs.encode())
}

// compactFrom is the number of revisions from which they are recorded in
// the compact form. Every Terraform command copies, encodes and decodes
// private state several times over (it is base64 in the state file), so
// the 100,000 revisions of a large prefix (a 1.4 MB JSON object with
// six-digit suffixes) cost the CLI time in every plan and apply; compact,
// the same take 16 KB. Below it the JSON object is small, and readable in
// a state dump.
const compactFrom = 256

// compactTag begins the compact form: a JSON string holding compactTag and
// the base64 of the DEFLATE of, for each suffix in sorted order: how many
// bytes it shares with the suffix before, how many follow, the difference
// of its revision from the one before (varints), and those following
// bytes. Keys written in one transaction share a revision, and sorted
// suffixes share their beginnings, so this is small before it is compressed.
const compactTag = "z1:"

// encode is revs as private state: a JSON object (in no particular order:
// encoding/json sorts the keys and reflects on every value, which for the
// 100,000 keys of a large prefix cost about 80 ms in every refresh) or,
// from compactFrom revisions on, the compact form.
func (revs prefixRevisions) encode() []byte {
	if len(revs) >= compactFrom {
		return revs.encodeCompact()
	}
	return revs.encodeObject()
}

// encodeObject is revs as a JSON object.
func (revs prefixRevisions) encodeObject() []byte {
	b := make([]byte, 0, len(revs)*24)
	b = append(b, '{')
	first := true
	for s, rev := range revs {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, s)
		b = append(b, ':')
		b = strconv.AppendInt(b, rev, 10)
	}
	return append(b, '}')
}

func (revs prefixRevisions) encodeCompact() []byte {
	suffixes := slices.Sorted(maps.Keys(revs))
	size := 0
	for _, s := range suffixes {
		size += len(s) + 4
	}
	raw := make([]byte, 0, size)
	var prev int64
	last := ""
	for _, s := range suffixes {
		shared := 0
		for shared < len(s) && shared < len(last) && s[shared] == last[shared] {
			shared++
		}
		raw = binary.AppendUvarint(raw, uint64(shared))
		raw = binary.AppendUvarint(raw, uint64(len(s)-shared))
		raw = binary.AppendVarint(raw, revs[s]-prev)
		raw = append(raw, s[shared:]...)
		prev, last = revs[s], s
	}
	var z bytes.Buffer
	w, _ := flate.NewWriter(&z, flate.BestSpeed) // the level is valid: no error
	_, _ = w.Write(raw)                          // a bytes.Buffer does not fail
	_ = w.Close()
	out := make([]byte, 0, len(compactTag)+base64.StdEncoding.EncodedLen(z.Len())+2)
	out = append(out, '"')
	out = append(out, compactTag...)
	out = base64.StdEncoding.AppendEncode(out, z.Bytes())
	return append(out, '"')
}

// decodeRevisions reads either form of encode.
func decodeRevisions(b []byte) (prefixRevisions, error) {
	revs := prefixRevisions{}
	if len(b) == 0 || b[0] != '"' {
		if err := json.Unmarshal(b, &revs); err != nil {
			return nil, err
		}
		return revs, nil
	}
	var text string
	if err := json.Unmarshal(b, &text); err != nil {
		return nil, err
	}
	enc, ok := strings.CutPrefix(text, compactTag)
	if !ok {
		return nil, fmt.Errorf("unknown form %.8q", text)
	}
	z, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return nil, err
	}
	raw, err := io.ReadAll(flate.NewReader(bytes.NewReader(z)))
	if err != nil {
		return nil, err
	}
	var prev int64
	var last []byte
	for len(raw) > 0 {
		shared, k := binary.Uvarint(raw)
		if k <= 0 || shared > uint64(len(last)) {
			return nil, errors.New("bad shared length")
		}
		raw = raw[k:]
		n, k := binary.Uvarint(raw)
		if k <= 0 {
			return nil, errors.New("truncated length")
		}
		raw = raw[k:]
		d, k := binary.Varint(raw)
		if k <= 0 {
			return nil, errors.New("truncated revision")
		}
		raw = raw[k:]
		if n > uint64(len(raw)) {
			return nil, errors.New("truncated suffix")
		}
		last = append(last[:shared], raw[:n]...)
		prev += d
		revs[string(last)] = prev
		raw = raw[n:]
	}
	return revs, nil
}
