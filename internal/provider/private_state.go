package provider

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

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
	if err := json.Unmarshal(b, &revs); err != nil {
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

// encode is revs as a JSON object, in no particular order: encoding/json
// sorts the keys and reflects on every value, which for the 100,000 keys
// of a large prefix cost about 80 ms in every refresh.
func (revs prefixRevisions) encode() []byte {
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
