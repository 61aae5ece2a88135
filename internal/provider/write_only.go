package provider

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
)

// Drift detection for write-only values (etcd_key.value_wo and
// value_base64_wo, etcd_key_prefix.values_wo). The provider never sees a
// write-only value again after the apply that writes it, and must not keep
// it, nor a plain hash of it (a plain hash of a guessable secret is as good
// as the secret). It keeps, in private state, an HMAC-SHA-256 of each value
// written, keyed by a random salt of the resource's own. A refresh computes
// the HMAC of what etcd holds and compares: a difference means the value was
// changed outside Terraform, and the refresh drops value_wo_version (or
// values_wo_version) from the state so that the plan writes the configured
// value again.
//
// The salt is stored next to the HMACs, so whoever can read the state can
// still test guesses of the value offline, one guess per HMAC computation:
// what the salt prevents is precomputed tables and telling that two
// resources hold the same value. Use values that are not guessable.

// privateWriteOnly is the private state key of the woRecord.
const privateWriteOnly = "write_only_hmac"

// woRecord is salt and, per key suffix ("" for etcd_key), the HMAC of the
// value last written.
type woRecord struct {
	Salt []byte            `json:"salt"`
	MACs map[string][]byte `json:"macs"`
}

const woSaltBytes = 32

// newWORecord keeps prior's salt when there is one, so that a resource has
// one salt for its life, and starts with no HMACs.
func newWORecord(prior *woRecord) (*woRecord, error) {
	r := &woRecord{MACs: map[string][]byte{}}
	if prior != nil && len(prior.Salt) == woSaltBytes {
		r.Salt = prior.Salt
		return r, nil
	}
	r.Salt = make([]byte, woSaltBytes)
	if _, err := rand.Read(r.Salt); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *woRecord) mac(value []byte) []byte { return saltedMAC(r.Salt, value) }

// saltedMAC is the HMAC-SHA-256 of value keyed by salt.
func saltedMAC(salt, value []byte) []byte {
	h := hmac.New(sha256.New, salt)
	h.Write(value)
	return h.Sum(nil)
}

// record notes that suffix now holds value.
func (r *woRecord) record(suffix string, value []byte) { r.MACs[suffix] = r.mac(value) }

// matches tells whether value is what was recorded for suffix.
func (r *woRecord) matches(suffix string, value []byte) bool {
	want, ok := r.MACs[suffix]
	return ok && hmac.Equal(want, r.mac(value))
}

// getWORecord reads the record; nil when the resource has none (it holds
// no write-only value).
func getWORecord(ctx context.Context, p privateGetter) (*woRecord, diag.Diagnostics) {
	if p == nil {
		return nil, nil
	}
	b, diags := p.GetKey(ctx, privateWriteOnly)
	if diags.HasError() || len(b) == 0 {
		return nil, diags
	}
	var r woRecord
	if err := json.Unmarshal(b, &r); err != nil || len(r.Salt) != woSaltBytes {
		diags.AddError("Corrupt private state", fmt.Sprintf("The record of the write-only values cannot be read (%v); "+
			"change value_wo_version (values_wo_version for etcd_key_prefix) to write them again.", err))
		return nil, diags
	}
	if r.MACs == nil {
		r.MACs = map[string][]byte{}
	}
	return &r, diags
}

// setWORecord stores r, or removes the record when r is nil.
func setWORecord(ctx context.Context, p privateSetter, r *woRecord) diag.Diagnostics {
	if r == nil {
		return p.SetKey(ctx, privateWriteOnly, nil)
	}
	b, err := json.Marshal(r)
	if err != nil {
		var diags diag.Diagnostics
		diags.AddError("Cannot record write-only values", err.Error())
		return diags
	}
	return p.SetKey(ctx, privateWriteOnly, b)
}
