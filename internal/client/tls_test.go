package client

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testPKI is a throwaway CA with one client certificate, as PEM.
type testPKI struct {
	caPEM, certPEM, keyPEM, otherKeyPEM string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	newKey := func() (*ecdsa.PrivateKey, string) {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return k, string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	}
	caKey, _ := newKey()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, leafKeyPEM := newKey()
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "client"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	_, other := newKey()
	return testPKI{
		caPEM:       string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})),
		certPEM:     string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER})),
		keyPEM:      leafKeyPEM,
		otherKeyPEM: other,
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTLSFromPEMAndFiles(t *testing.T) {
	pki := newTestPKI(t)
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"pem content", Config{CACert: pki.caPEM, Cert: pki.certPEM, Key: pki.keyPEM}},
		{"file paths", Config{CACert: writeFile(t, "ca.pem", pki.caPEM), Cert: writeFile(t, "c.pem", pki.certPEM), Key: writeFile(t, "k.pem", pki.keyPEM)}},
		{"env", Config{LookupEnv: env(map[string]string{
			EnvCACert: writeFile(t, "ca.pem", pki.caPEM), EnvCert: pki.certPEM, EnvKey: writeFile(t, "k.pem", pki.keyPEM),
		})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Endpoints = []string{"https://127.0.0.1:2379"}
			if tc.cfg.LookupEnv == nil {
				tc.cfg.LookupEnv = env(nil)
			}
			s, err := tc.cfg.Resolve()
			if err != nil {
				t.Fatal(err)
			}
			c := s.TLS.Config()
			if c.RootCAs == nil || len(c.Certificates) != 1 || c.InsecureSkipVerify {
				t.Fatalf("tls config incomplete: %+v", c)
			}
		})
	}
}

func TestTLSErrors(t *testing.T) {
	pki := newTestPKI(t)
	missing := filepath.Join(t.TempDir(), "nope.pem")
	notPEM := writeFile(t, "junk.pem", "hello")
	for _, tc := range []struct {
		name     string
		cfg      Config
		env      map[string]string
		attr     string
		contains []string
	}{
		{name: "unreadable CA file", cfg: Config{CACert: missing}, attr: AttrCACert,
			contains: []string{"ca_cert: cannot read CA certificate file", missing, "no such file"}},
		{name: "unreadable CA from env", env: map[string]string{EnvCACert: missing}, attr: AttrCACert,
			contains: []string{"ca_cert (from ETCDCTL_CACERT)", missing}},
		{name: "CA not PEM", cfg: Config{CACert: notPEM}, attr: AttrCACert,
			contains: []string{"no PEM certificate found", notPEM}},
		{name: "CA malformed PEM", cfg: Config{CACert: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}, attr: AttrCACert,
			contains: []string{"malformed certificate", "the PEM content"}},
		{name: "cert without key", cfg: Config{Cert: pki.certPEM}, attr: AttrKey,
			contains: []string{"no private key", "set key (or ETCDCTL_KEY)"}},
		{name: "key without cert", cfg: Config{Key: pki.keyPEM}, attr: AttrCert,
			contains: []string{"no client certificate", "ETCDCTL_CERT"}},
		{name: "cert is not a certificate", cfg: Config{Cert: pki.keyPEM, Key: pki.keyPEM}, attr: AttrCert,
			contains: []string{"no PEM certificate found"}},
		{name: "key is not a key", cfg: Config{Cert: pki.certPEM, Key: pki.certPEM}, attr: AttrKey,
			contains: []string{"no PEM private key found"}},
		{name: "key does not match", cfg: Config{Cert: pki.certPEM, Key: pki.otherKeyPEM}, attr: AttrKey,
			contains: []string{"does not fit the client certificate"}},
		{name: "TLS with http endpoint", cfg: Config{Endpoints: []string{"http://127.0.0.1:2379"}, CACert: pki.caPEM}, attr: AttrEndpoints,
			contains: []string{"endpoints[0]", "use https://"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cfg.Endpoints == nil {
				tc.cfg.Endpoints = []string{"https://127.0.0.1:2379"}
			}
			tc.cfg.LookupEnv = env(tc.env)
			_, err := tc.cfg.Resolve()
			var ce *ConfigError
			if !errors.As(err, &ce) || ce.Attribute != tc.attr {
				t.Fatalf("err = %v, want a ConfigError on %s", err, tc.attr)
			}
			for _, want := range tc.contains {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "PRIVATE KEY-----\n") || strings.Contains(err.Error(), strings.TrimSpace(strings.Split(pki.keyPEM, "\n")[1])) {
				t.Errorf("error leaks key material: %v", err)
			}
		})
	}
}
