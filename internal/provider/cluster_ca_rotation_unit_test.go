package provider

import (
	"context"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/cluster"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/pki"
)

// tlsObject is etcd_cluster's tls attribute holding t.
func tlsObject(t *testing.T, m clusterTLSModel) types.Object {
	t.Helper()
	ctx := context.Background()
	var resp resource.SchemaResponse
	(&clusterResource{}).Schema(ctx, resource.SchemaRequest{}, &resp)
	typ := resp.Schema.Attributes["tls"].GetType().(attr.TypeWithAttributeTypes)
	obj, d := types.ObjectValueFrom(ctx, typ.AttributeTypes(), m)
	if d.HasError() {
		t.Fatal(d)
	}
	return obj
}

// Which phase a plan performs, for tls.auto and for your own CA; and a
// second change of CA during a rotation is an error naming the attribute.
func TestUnitNextCAPhase(t *testing.T) {
	ca1, _ := pki.NewCA(pki.CAOptions{CommonName: "one"})
	ca2, _ := pki.NewCA(pki.CAOptions{CommonName: "two"})
	auto := func(version int64) clusterTLSModel {
		m := clusterTLSModel{Auto: types.BoolValue(true), AutoCAVersion: types.Int64Null(), CAKeyPEMWOVersion: types.Int64Null()}
		if version > 0 {
			m.AutoCAVersion = types.Int64Value(version)
		}
		return m
	}
	own := func(ca *pki.CA, pemText string) clusterTLSModel {
		if pemText == "" {
			pemText = string(ca.CertPEM)
		}
		return clusterTLSModel{Auto: types.BoolNull(), AutoCAVersion: types.Int64Null(), CAKeyPEMWOVersion: types.Int64Null(),
			CACertPEM: types.StringValue(pemText), CAKeyPEM: types.StringValue(string(ca.KeyPEM))}
	}
	unknownCert := own(ca2, "")
	unknownCert.CACertPEM = types.StringUnknown()
	for _, c := range []struct {
		name         string
		state, plan  clusterTLSModel
		applied      int64 // 0: null
		want         cluster.CAPhase
		unknown      bool
		errAttribute string
	}{
		{name: "auto unchanged", state: auto(0), plan: auto(0), want: 0},
		{name: "auto_ca_version set", state: auto(0), plan: auto(1), want: cluster.CATrustBoth},
		{name: "auto_ca_version changed after a rotation", state: auto(1), plan: auto(2), applied: 3, want: cluster.CATrustBoth},
		{name: "auto after phase 1", state: auto(1), plan: auto(1), applied: 1, want: cluster.CANewLeaves},
		{name: "auto after phase 2", state: auto(1), plan: auto(1), applied: 2, want: cluster.CADropOld},
		{name: "auto done", state: auto(1), plan: auto(1), applied: 3, want: 0},
		{name: "own CA unchanged", state: own(ca1, ""), plan: own(ca1, ""), want: 0},
		{name: "own CA rewritten, same certificate", state: own(ca1, ""), plan: own(ca1, "\n"+string(ca1.CertPEM)+"\n"), want: 0},
		{name: "own CA changed", state: own(ca1, ""), plan: own(ca2, ""), want: cluster.CATrustBoth},
		{name: "auto to own CA", state: auto(0), plan: own(ca2, ""), want: cluster.CATrustBoth},
		{name: "own CA not known yet", state: own(ca1, ""), plan: unknownCert, unknown: true},
		{name: "own CA changed during a rotation", state: own(ca2, ""), plan: own(ca1, ""), applied: 1, errAttribute: "tls.ca_cert_pem"},
		{name: "auto_ca_version changed during a rotation", state: auto(1), plan: auto(2), applied: 2, errAttribute: "tls.auto_ca_version"},
	} {
		state := clusterModel{Name: types.StringValue("c"), TLS: tlsObject(t, c.state), TLSCARotationPhase: types.Int64Null()}
		if c.applied > 0 {
			state.TLSCARotationPhase = types.Int64Value(c.applied)
		}
		plan := clusterModel{Name: types.StringValue("c"), TLS: tlsObject(t, c.plan)}
		var diags diag.Diagnostics
		got, unknown := nextCAPhase(context.Background(), plan, state, &diags)
		if c.errAttribute != "" {
			if !diags.HasError() || !strings.Contains(diags.Errors()[0].Detail(), "CA rotation") {
				t.Errorf("%s: diagnostics %v, want a CA rotation error", c.name, diags)
				continue
			}
			if p := diags.Errors()[0].(diag.DiagnosticWithPath).Path().String(); p != c.errAttribute {
				t.Errorf("%s: error on %s, want %s", c.name, p, c.errAttribute)
			}
			continue
		}
		if diags.HasError() || got != c.want || unknown != c.unknown {
			t.Errorf("%s: nextCAPhase = %d, %v (%v); want %d, %v", c.name, got, unknown, diags, c.want, c.unknown)
		}
	}
}
