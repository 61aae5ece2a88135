package testserver_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// rawClient is a client with exactly cfg plus the cluster's endpoints: no
// credentials or certificates are filled in.
func rawClient(t *testing.T, c *testserver.Cluster, cfg clientv3.Config) *clientv3.Client {
	t.Helper()
	cfg.Endpoints = c.Endpoints()
	cfg.Logger = zap.NewNop()
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// shortCtx is for requests that are expected to fail by hanging.
func shortCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
	t.Cleanup(cancel)
	return ctx
}

func TestTLS(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := testserver.Start(t, testserver.WithTLS())

	for _, m := range c.Members() {
		for _, u := range append(m.ClientURLs, m.PeerURLs...) {
			if !strings.HasPrefix(u, "https://127.0.0.1:") {
				t.Errorf("member %s: URL %s is not https on loopback", m.Name, u)
			}
		}
	}
	if _, err := c.Client().Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}

	info := c.TLS()
	if info == nil {
		t.Fatal("TLS() is nil")
	}
	for _, f := range []struct {
		name string
		pem  []byte
	}{{info.CAFile, info.CACertPEM}, {info.CertFile, info.CertPEM}, {info.KeyFile, info.KeyPEM}} {
		b, err := os.ReadFile(f.name)
		if err != nil || string(b) != string(f.pem) {
			t.Fatalf("%s does not hold the PEM TLS() returns (err %v)", f.name, err)
		}
	}

	// The files work the way a user would load them.
	tc, err := transport.TLSInfo{CertFile: info.CertFile, KeyFile: info.KeyFile, TrustedCAFile: info.CAFile}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	mustGet(ctx, t, rawClient(t, c, clientv3.Config{TLS: tc}), "k", "v")

	// The client certificate names root.
	cert, err := tls.X509KeyPair(info.CertPEM, info.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if x, _ := x509.ParseCertificate(cert.Certificate[0]); x == nil || x.Subject.CommonName != "root" {
		t.Fatalf("client certificate subject %v, want CN root", x)
	}

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(info.CACertPEM)

	// Trusting the CA without presenting a certificate is rejected.
	noCert := rawClient(t, c, clientv3.Config{TLS: &tls.Config{RootCAs: pool}})
	if _, err := noCert.Get(shortCtx(t), "k"); err == nil {
		t.Fatal("client without certificate could read")
	}

	// Neither is plain text.
	plain := rawClient(t, c, clientv3.Config{})
	if _, err := plain.Get(shortCtx(t), "k"); err == nil {
		t.Fatal("plain-text client could read")
	}

	// A certificate issued for another name works too.
	certPEM, keyPEM, err := c.IssueClientCert("alice")
	if err != nil {
		t.Fatal(err)
	}
	alice, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	if x, _ := x509.ParseCertificate(alice.Certificate[0]); x == nil || x.Subject.CommonName != "alice" {
		t.Fatalf("issued certificate subject %v, want CN alice", x)
	}
	mustGet(ctx, t, rawClient(t, c, clientv3.Config{TLS: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{alice}}}), "k", "v")
}

func TestWithoutTLS(t *testing.T) {
	t.Parallel()
	c := testserver.Start(t, testserver.WithMembers(1))
	if c.TLS() != nil {
		t.Error("TLS() is not nil without WithTLS")
	}
	if _, _, err := c.IssueClientCert("alice"); err == nil {
		t.Error("IssueClientCert works without WithTLS")
	}
	if user, password := c.RootCredentials(); user != "" || password != "" {
		t.Errorf("RootCredentials() = %q, %q without WithAuth", user, password)
	}
	if _, err := c.Client().AuthStatus(testCtx(t)); err != nil {
		t.Fatal(err)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := testserver.Start(t, testserver.WithAuth())

	user, password := c.RootCredentials()
	if user != "root" || len(password) < 16 {
		t.Fatalf("RootCredentials() = %q, %q", user, password)
	}
	status, err := c.Client().AuthStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !status.Enabled {
		t.Fatal("auth is not enabled")
	}
	if _, err := c.Client().Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}

	anon := rawClient(t, c, clientv3.Config{})
	if _, err := anon.Get(ctx, "k"); !errors.Is(err, rpctypes.ErrUserEmpty) {
		t.Fatalf("unauthenticated get: %v, want %v", err, rpctypes.ErrUserEmpty)
	}

	// NewClient fills in root's credentials.
	cli, err := c.NewClient(clientv3.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	mustGet(ctx, t, cli, "k", "v")

	if _, err := c.NewClient(clientv3.Config{Username: "root", Password: "wrong"}); !errors.Is(err, rpctypes.ErrAuthFailed) {
		t.Fatalf("wrong password: %v, want %v", err, rpctypes.ErrAuthFailed)
	}
}

func TestTLSCertAuth(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	c := testserver.Start(t, testserver.WithMembers(1), testserver.WithTLS(), testserver.WithAuth())
	if _, err := c.Client().Put(ctx, "k", "v"); err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.TLS().CACertPEM)
	certClient := func(cn string) *clientv3.Client {
		certPEM, keyPEM, err := c.IssueClientCert(cn)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return rawClient(t, c, clientv3.Config{TLS: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}})
	}
	// Without a password the certificate's common name is the user.
	mustGet(ctx, t, certClient("root"), "k", "v")
	if _, err := certClient("nobody").Get(ctx, "k"); !errors.Is(err, rpctypes.ErrPermissionDenied) {
		t.Fatalf("unknown user: %v, want %v", err, rpctypes.ErrPermissionDenied)
	}
}
