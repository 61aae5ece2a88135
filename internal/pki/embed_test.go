package pki

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEmbeddedEtcdWithIssuedCertificates starts a real single-member etcd
// with client and peer TLS and client-cert auth, using certificates from
// this package, and talks to it with and without a client certificate.
func TestEmbeddedEtcdWithIssuedCertificates(t *testing.T) {
	if testing.Short() {
		t.Skip("starts etcd")
	}
	ca := mustCA(t)
	mc, err := ca.IssueMember(MemberRequest{Name: "solo", Hosts: []string{"127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	client, err := ca.IssueClient("root", Window{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile := writeFile(t, dir, "ca.pem", ca.CertPEM)
	server := transport.TLSInfo{
		CertFile:       writeFile(t, dir, "server.pem", mc.Server.CertPEM),
		KeyFile:        writeFile(t, dir, "server-key.pem", mc.Server.KeyPEM),
		TrustedCAFile:  caFile,
		ClientCertAuth: true,
	}
	peer := transport.TLSInfo{
		CertFile:       writeFile(t, dir, "peer.pem", mc.Peer.CertPEM),
		KeyFile:        writeFile(t, dir, "peer-key.pem", mc.Peer.KeyPEM),
		TrustedCAFile:  caFile,
		ClientCertAuth: true,
	}

	cu, _ := url.Parse(fmt.Sprintf("https://127.0.0.1:%d", freePort(t)))
	pu, _ := url.Parse(fmt.Sprintf("https://127.0.0.1:%d", freePort(t)))
	cfg := embed.NewConfig()
	cfg.Name = "solo"
	cfg.Dir = filepath.Join(dir, "data")
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = "solo=" + pu.String()
	cfg.ClientTLSInfo = server
	cfg.PeerTLSInfo = peer
	cfg.UnsafeNoFsync = true
	cfg.LogLevel = "error"

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("etcd not ready after 30s")
	}

	clientTLS, err := transport.TLSInfo{
		CertFile:      writeFile(t, dir, "client.pem", client.CertPEM),
		KeyFile:       writeFile(t, dir, "client-key.pem", client.KeyPEM),
		TrustedCAFile: caFile,
	}.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	cli, err := clientv3.New(clientv3.Config{Logger: zap.NewNop(), Endpoints: []string{cu.String()}, TLS: clientTLS, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, err := cli.Put(ctx, "k", "v"); err != nil {
		t.Fatalf("put with client certificate: %v", err)
	}
	got, err := cli.Get(ctx, "k")
	if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "v" {
		t.Fatalf("get = %v, %v", got, err)
	}

	// Same CA, no client certificate: the server refuses the handshake.
	noCert := &tls.Config{RootCAs: ca.Pool(), MinVersion: tls.VersionTLS12}
	bare, err := clientv3.New(clientv3.Config{Logger: zap.NewNop(), Endpoints: []string{cu.String()}, TLS: noCert, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	defer cancelShort()
	if _, err := bare.Get(short, "k"); err == nil {
		t.Fatal("get without a client certificate succeeded")
	} else {
		t.Logf("without client certificate: %v", err)
	}

	// A client certificate from another CA is refused too.
	other := mustCA(t)
	foreign, err := other.IssueClient("root", Window{})
	if err != nil {
		t.Fatal(err)
	}
	fc, err := foreign.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	fcli, err := clientv3.New(clientv3.Config{Logger: zap.NewNop(), Endpoints: []string{cu.String()}, DialTimeout: 2 * time.Second,
		TLS: &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{fc}, MinVersion: tls.VersionTLS12}})
	if err != nil {
		t.Fatal(err)
	}
	defer fcli.Close()
	short2, cancel2 := context.WithTimeout(ctx, 3*time.Second)
	defer cancel2()
	if _, err := fcli.Get(short2, "k"); err == nil {
		t.Fatal("get with a foreign client certificate succeeded")
	}
}
