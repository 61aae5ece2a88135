package memberhost

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/etcdconf"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/pki"
)

func validSpec(t *testing.T) Spec {
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(bin, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	return Spec{
		Name:        "m4",
		SSH:         node.SSHConfig{Host: "10.0.0.4", Agent: true, InsecureIgnoreHostKey: true},
		PeerURLs:    []string{"http://10.0.0.4:2380"},
		ClientURLs:  []string{"http://10.0.0.4:2379"},
		LocalBinary: bin,
	}
}

func TestValidate(t *testing.T) {
	if err := validSpec(t).Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*Spec){
		"name":         func(s *Spec) { s.Name = "bad name" },
		"peer url":     func(s *Spec) { s.PeerURLs = []string{"10.0.0.4:2380"} },
		"client url":   func(s *Spec) { s.ClientURLs = []string{"ftp://10.0.0.4:2379"} },
		"data dir":     func(s *Spec) { s.DataDir = "/data" },
		"binary":       func(s *Spec) { s.LocalBinary = "/does/not/exist" },
		"host key":     func(s *Spec) { s.SSH.InsecureIgnoreHostKey = false },
		"settings":     func(s *Spec) { s.Settings = map[string]string{"snapshot-cout": "1"} },
		"https no tls": func(s *Spec) { s.PeerURLs = []string{"https://10.0.0.4:2380"} },
		"manager":      func(s *Spec) { s.ServiceManager = "upstart" },
	} {
		s := validSpec(t)
		mutate(&s)
		if err := s.Validate(); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func tlsSpec(t *testing.T) (Spec, *pki.CA) {
	ca, err := pki.NewCA(pki.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s := validSpec(t)
	s.PeerURLs = []string{"https://10.0.0.4:2380"}
	s.ClientURLs = []string{"https://10.0.0.4:2379"}
	s.TLS = &TLS{CACertPEM: ca.CertPEM}
	return s, ca
}

func TestCertificates(t *testing.T) {
	// Issued from the CA key: both usages, the member's address.
	s, ca := tlsSpec(t)
	s.TLS.CAKeyPEM = ca.KeyPEM
	certs, err := s.certificates(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Verify(certs.Peer, pki.UsagePeer, "10.0.0.4", time.Now()); err != nil {
		t.Fatal(err)
	}

	// Given certificates are checked.
	member, err := ca.IssueMember(pki.MemberRequest{Name: "m4", Hosts: []string{"10.0.0.4"}})
	if err != nil {
		t.Fatal(err)
	}
	s, _ = tlsSpec(t)
	s.TLS.CACertPEM = ca.CertPEM
	s.TLS.ServerCertPEM, s.TLS.ServerKeyPEM = member.Server.CertPEM, member.Server.KeyPEM
	s.TLS.PeerCertPEM, s.TLS.PeerKeyPEM = member.Peer.CertPEM, member.Peer.KeyPEM
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}

	// One usage only (clientAuth): members also serve with the peer certificate.
	oneUsage, err := ca.Issue(pki.LeafRequest{CommonName: "m4", Hosts: []string{"10.0.0.4"}}, pki.UsageClient)
	if err != nil {
		t.Fatal(err)
	}
	bad := s
	badTLS := *s.TLS
	badTLS.PeerCertPEM, badTLS.PeerKeyPEM = oneUsage.CertPEM, oneUsage.KeyPEM
	bad.TLS = &badTLS
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "serverAuth and the clientAuth") {
		t.Fatalf("peer certificate without serverAuth: %v", err)
	}

	// Wrong address.
	other, err := ca.IssueMember(pki.MemberRequest{Name: "m4", Hosts: []string{"10.0.0.99"}})
	if err != nil {
		t.Fatal(err)
	}
	badTLS = *s.TLS
	badTLS.PeerCertPEM, badTLS.PeerKeyPEM = other.Peer.CertPEM, other.Peer.KeyPEM
	bad.TLS = &badTLS
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "no subject alternative name for 10.0.0.4") {
		t.Fatalf("peer certificate for another address: %v", err)
	}

	// Another CA.
	ca2, _ := pki.NewCA(pki.CAOptions{})
	badTLS = *s.TLS
	badTLS.CACertPEM = ca2.CertPEM
	bad.TLS = &badTLS
	if err := bad.Validate(); err == nil {
		t.Fatal("certificates of another CA accepted")
	}

	// Mismatched key.
	badTLS = *s.TLS
	badTLS.ServerKeyPEM = other.Server.KeyPEM
	bad.TLS = &badTLS
	if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), "do not match") {
		t.Fatalf("mismatched key: %v", err)
	}
}

func TestConfigJoinsExisting(t *testing.T) {
	s := validSpec(t)
	s.PeerURLs = []string{"http://etcd-4.example:2380"}
	h := &Host{spec: s.withDefaults()}
	out, err := h.Config([]etcdconf.Member{{Name: "m1", PeerURLs: []string{"http://10.0.0.1:2380"}}, {Name: "m4", PeerURLs: s.PeerURLs}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := etcdconf.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if c.InitialClusterState != etcdconf.StateExisting || c.DataDir != DefaultDataDir || len(c.InitialCluster) != 2 {
		t.Fatalf("config %+v", c)
	}
	if c.ListenPeerURLs[0] != "http://0.0.0.0:2380" || c.AdvertisePeerURLs[0] != "http://etcd-4.example:2380" {
		t.Fatalf("peer URLs: listen %v advertise %v", c.ListenPeerURLs, c.AdvertisePeerURLs)
	}
}
