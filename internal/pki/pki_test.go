package pki

import (
	"crypto/x509"
	"net"
	"slices"
	"testing"
	"time"
)

func mustCA(t *testing.T) *CA {
	t.Helper()
	ca, err := NewCA(CAOptions{CommonName: "test-ca"})
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func TestWindowAtIsDeterministic(t *testing.T) {
	a := WindowAt(time.Date(2030, 5, 1, 10, 17, 3, 0, time.UTC), time.Hour*48)
	b := WindowAt(time.Date(2030, 5, 1, 10, 59, 59, 0, time.UTC), time.Hour*48)
	if a != b {
		t.Fatalf("same hour gave different windows: %v vs %v", a, b)
	}
	if want := time.Date(2030, 5, 1, 9, 0, 0, 0, time.UTC); !a.NotBefore.Equal(want) {
		t.Fatalf("NotBefore = %s, want %s", a.NotBefore, want)
	}
	if got := a.NotAfter.Sub(a.NotBefore); got != 48*time.Hour {
		t.Fatalf("validity = %s", got)
	}
}

func TestExplicitWindowIsUsed(t *testing.T) {
	w := Window{NotBefore: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2041, 1, 1, 0, 0, 0, 0, time.UTC)}
	ca, err := NewCA(CAOptions{Window: w})
	if err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.NotBefore.Equal(w.NotBefore) || !ca.Cert.NotAfter.Equal(w.NotAfter) {
		t.Fatalf("CA window = %s..%s, want %s..%s", ca.Cert.NotBefore, ca.Cert.NotAfter, w.NotBefore, w.NotAfter)
	}
	// A leaf asking for more than the CA covers is clipped to the CA.
	leaf, err := ca.Issue(LeafRequest{CommonName: "x", Window: Window{NotBefore: w.NotBefore, NotAfter: w.NotAfter.Add(time.Hour)}}, UsageClient)
	if err != nil {
		t.Fatal(err)
	}
	if !leaf.Cert.NotAfter.Equal(w.NotAfter) {
		t.Fatalf("leaf NotAfter = %s, want clipped to %s", leaf.Cert.NotAfter, w.NotAfter)
	}
	if _, err := NewCA(CAOptions{Window: Window{NotBefore: w.NotAfter, NotAfter: w.NotBefore}}); err == nil {
		t.Fatal("inverted window accepted")
	}
}

func TestMemberCertificates(t *testing.T) {
	ca := mustCA(t)
	if !ca.Cert.IsCA || ca.Cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Fatal("CA lacks CA:TRUE or certSign")
	}
	mc, err := ca.IssueMember(MemberRequest{Name: "m1", Hosts: []string{"10.1.2.3", "m1.example.test", "10.1.2.3", ""}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()

	// Server: SANs are the member's hosts plus loopback; both EKUs.
	s := mc.Server.Cert
	if s.Subject.CommonName != "m1" {
		t.Fatalf("CN = %q", s.Subject.CommonName)
	}
	wantEKU := []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	if !slices.Equal(s.ExtKeyUsage, wantEKU) {
		t.Fatalf("server EKU = %v, want serverAuth+clientAuth", s.ExtKeyUsage)
	}
	if !slices.Equal(s.DNSNames, []string{"m1.example.test", "localhost"}) {
		t.Fatalf("server DNS SANs = %v", s.DNSNames)
	}
	if len(s.IPAddresses) != 3 || !s.IPAddresses[0].Equal(net.ParseIP("10.1.2.3")) ||
		!s.IPAddresses[1].Equal(net.ParseIP("127.0.0.1")) || !s.IPAddresses[2].Equal(net.IPv6loopback) {
		t.Fatalf("server IP SANs = %v", s.IPAddresses)
	}
	for _, h := range []string{"10.1.2.3", "m1.example.test", "127.0.0.1", "localhost", "::1"} {
		if err := ca.Verify(mc.Server, UsageServer, h, now); err != nil {
			t.Errorf("server cert for %s: %v", h, err)
		}
	}
	// The server certificate is usable as a client certificate (etcd dials itself).
	if err := ca.Verify(mc.Server, UsageClient, "", now); err != nil {
		t.Errorf("server cert as client: %v", err)
	}
	if err := ca.Verify(mc.Server, UsageServer, "10.9.9.9", now); err == nil {
		t.Error("server cert verified for an address it does not name")
	}

	// Peer: member hosts only, both EKUs.
	p := mc.Peer.Cert
	if !slices.Equal(p.ExtKeyUsage, wantEKU) {
		t.Fatalf("peer EKU = %v", p.ExtKeyUsage)
	}
	if !slices.Equal(p.DNSNames, []string{"m1.example.test"}) || len(p.IPAddresses) != 1 {
		t.Fatalf("peer SANs = %v %v", p.DNSNames, p.IPAddresses)
	}
	if err := ca.Verify(mc.Peer, UsagePeer, "10.1.2.3", now); err != nil {
		t.Error(err)
	}
	if err := ca.Verify(mc.Peer, UsagePeer, "127.0.0.1", now); err == nil {
		t.Error("peer cert names loopback")
	}

	// Another CA does not vouch for these.
	other := mustCA(t)
	if err := other.Verify(mc.Server, UsageServer, "10.1.2.3", now); err == nil {
		t.Error("certificate verified against a foreign CA")
	}
	// Expired is rejected.
	if err := ca.Verify(mc.Server, UsageServer, "10.1.2.3", s.NotAfter.Add(time.Hour)); err == nil {
		t.Error("verified after NotAfter")
	}

	if _, err := ca.IssueMember(MemberRequest{Name: "nohosts"}); err == nil {
		t.Error("member without hosts accepted")
	}
}

func TestClientCertificate(t *testing.T) {
	ca := mustCA(t)
	c, err := ca.IssueClient("root", Window{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Cert.Subject.CommonName != "root" {
		t.Fatalf("CN = %q", c.Cert.Subject.CommonName)
	}
	if !slices.Equal(c.Cert.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) {
		t.Fatalf("EKU = %v", c.Cert.ExtKeyUsage)
	}
	if err := ca.Verify(c, UsageClient, "", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := ca.Verify(c, UsageServer, "", time.Now()); err == nil {
		t.Fatal("client-only certificate verified for serverAuth")
	}
	if _, err := ca.IssueClient("", Window{}); err == nil {
		t.Fatal("empty CN accepted")
	}
}

func TestPEMRoundTrip(t *testing.T) {
	ca := mustCA(t)
	loaded, err := LoadCA(ca.CertPEM, ca.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Cert.Equal(ca.Cert) || !loaded.Key.Equal(ca.Key) {
		t.Fatal("LoadCA did not round-trip")
	}
	leaf, err := loaded.IssueClient("u", Window{})
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Verify(leaf, UsageClient, "", time.Now()); err != nil {
		t.Fatalf("leaf from loaded CA: %v", err)
	}
	if _, err := leaf.TLSCertificate(); err != nil {
		t.Fatal(err)
	}
	// Bundle: two certificates, one key block in between is skipped.
	bundle := append(append(append([]byte{}, ca.CertPEM...), leaf.KeyPEM...), leaf.CertPEM...)
	certs, err := ParseCertificatesPEM(bundle)
	if err != nil || len(certs) != 2 {
		t.Fatalf("bundle: %d certs, %v", len(certs), err)
	}
	if _, err := ParsePrivateKeyPEM(ca.CertPEM); err == nil {
		t.Fatal("parsed a key out of a certificate")
	}
	if _, err := ParseCertificatePEM([]byte("junk")); err == nil {
		t.Fatal("parsed junk")
	}
	// Mismatched key.
	other := mustCA(t)
	if _, err := LoadCA(ca.CertPEM, other.KeyPEM); err == nil {
		t.Fatal("LoadCA accepted a key of another CA")
	}
	if _, err := LoadCA(leaf.CertPEM, leaf.KeyPEM); err == nil {
		t.Fatal("LoadCA accepted a leaf")
	}
}
