package provider

import (
	"context"
	"encoding/json"
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

// fakePrivate is private state in a map.
type fakePrivate map[string][]byte

func (p fakePrivate) GetKey(_ context.Context, key string) ([]byte, diag.Diagnostics) {
	return p[key], nil
}

// The material of each phase of a tls.auto rotation, as the applies hand
// it to internal/cluster: phase 1 generates the new CA (into private
// state) and keeps issuing from the old one, phase 2 issues from the new
// one and a new client certificate, phase 3 trusts the new one alone.
func TestUnitAutoCARotationMaterial(t *testing.T) {
	ctx := context.Background()
	model := func(version int64) clusterModel {
		m := clusterTLSModel{Auto: types.BoolValue(true), AutoCAVersion: types.Int64Value(version)}
		return clusterModel{Name: types.StringValue("c"), TLS: tlsObject(t, m), ClientCertPEM: types.StringNull(), ClientKeyPEM: types.StringNull()}
	}
	// The cluster as created.
	state := model(1)
	created, key, diags := state.tlsMaterial(ctx, nil, nil, 0)
	if diags.HasError() {
		t.Fatal(diags)
	}
	state.setTLSOutputs(created)
	private := fakePrivate{privateCAKey: key}
	oldCA := created.CA

	plan := model(2)
	plan.ClientCertPEM, plan.ClientKeyPEM = state.ClientCertPEM, state.ClientKeyPEM
	var newCA *pki.CA
	for _, step := range []struct {
		phase         cluster.CAPhase
		issuerIsNew   bool
		trusted       int // CAs in the CA file
		newClientCert bool
	}{
		{cluster.CATrustBoth, false, 2, false},
		{cluster.CANewLeaves, true, 2, true},
		{cluster.CADropOld, true, 1, false},
	} {
		if step.newClientCert {
			plan.ClientCertPEM, plan.ClientKeyPEM = types.StringUnknown(), types.StringUnknown() // as planCARotation plans it
		}
		m, key, diags := plan.tlsMaterial(ctx, &state, private, step.phase)
		if diags.HasError() {
			t.Fatalf("phase %d: %v", step.phase, diags)
		}
		if step.phase == cluster.CATrustBoth {
			var p privateCA
			if err := json.Unmarshal(key, &p); err != nil || p.CertPEM == "" || p.KeyPEM == "" {
				t.Fatalf("phase 1: private state %q (%v), want the new CA", key, err)
			}
			ca, err := pki.LoadCA([]byte(p.CertPEM), []byte(p.KeyPEM))
			if err != nil {
				t.Fatal(err)
			}
			newCA = ca
		}
		if newCA.Cert.Equal(oldCA.Cert) {
			t.Fatal("no new CA")
		}
		wantIssuer := oldCA
		if step.issuerIsNew {
			wantIssuer = newCA
		}
		if !m.CA.Cert.Equal(wantIssuer.Cert) || m.CA.Key == nil {
			t.Errorf("phase %d: issuer %q (key %v), want %q", step.phase, m.CA.Cert.Subject.CommonName, m.CA.Key != nil, wantIssuer.Cert.Subject.CommonName)
		}
		certs, err := pki.ParseCertificatesPEM(m.TrustPEM())
		if err != nil || len(certs) != step.trusted || !certs[0].Equal(newCA.Cert) {
			t.Errorf("phase %d: CA file holds %d certificates (%v), want %d, the new CA first", step.phase, len(certs), err, step.trusted)
		}
		clientNew := trusts(newCA.CertPEM, m.Client.Cert)
		if step.phase >= cluster.CANewLeaves != clientNew {
			t.Errorf("phase %d: client certificate from the new CA: %v", step.phase, clientNew)
		}
		// Recorded as Update records it.
		if key != nil {
			private[privateCAKey] = key
		}
		state = plan
		state.setTLSOutputs(m)
		state.TLSCARotationPhase = types.Int64Value(int64(step.phase))
		plan.ClientCertPEM, plan.ClientKeyPEM = state.ClientCertPEM, state.ClientKeyPEM
	}
}
