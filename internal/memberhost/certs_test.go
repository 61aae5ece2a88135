package memberhost

import (
	"path"
	"testing"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/etcdconf"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/pki"
)

func TestRenderTLS(t *testing.T) {
	l := NewLayout("/srv/etcd", "/srv/data", "")
	out, err := l.Render(etcdconf.Config{
		Name: "m4", ListenPeerURLs: []string{"https://10.0.0.4:2380"}, AdvertisePeerURLs: []string{"https://10.0.0.4:2380"},
		ListenClientURLs: []string{"https://10.0.0.4:2379"}, AdvertiseClientURLs: []string{"https://10.0.0.4:2379"},
		InitialCluster:      []etcdconf.Member{{Name: "m4", PeerURLs: []string{"https://10.0.0.4:2380"}}},
		InitialClusterState: etcdconf.StateNew, InitialClusterToken: "c",
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	c, err := etcdconf.Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if c.DataDir != "/srv/data" {
		t.Errorf("data dir %q", c.DataDir)
	}
	for _, tc := range []struct {
		tls       *etcdconf.TLS
		cert, key string
		what      string
	}{{c.ClientTLS, ServerCertFile, ServerKeyFile, "client"}, {c.PeerTLS, PeerCertFile, PeerKeyFile, "peer"}} {
		want := etcdconf.TLS{CertFile: path.Join("/srv/etcd/pki", tc.cert), KeyFile: path.Join("/srv/etcd/pki", tc.key),
			TrustedCAFile: "/srv/etcd/pki/ca.pem", ClientCertAuth: true}
		if tc.tls == nil || *tc.tls != want {
			t.Errorf("%s TLS %+v, want %+v", tc.what, tc.tls, want)
		}
	}
}

func TestCertsOnMachineValid(t *testing.T) {
	ca, err := pki.NewCA(pki.CAOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	hosts := []string{"10.0.0.4"}
	issue := func(hosts []string, w pki.Window) map[string][]byte {
		certs, err := ca.IssueMember(pki.MemberRequest{Name: "m4", Hosts: hosts, Window: w})
		if err != nil {
			t.Fatal(err)
		}
		return CertFiles(ca.CertPEM, certs)
	}
	good := issue(hosts, pki.Window{})
	if len(good) != len(PKIFiles) {
		t.Fatalf("CertFiles wrote %d files, PKIFiles names %d", len(good), len(PKIFiles))
	}
	if !CertsOnMachineValid(ca, good, hosts, hosts, now) {
		t.Fatal("freshly issued certificates are not kept")
	}
	other, _ := pki.NewCA(pki.CAOptions{})
	expiring := issue(hosts, pki.WindowAt(now, RenewBefore/2))
	mismatched := issue(hosts, pki.Window{})
	mismatched[PeerKeyFile] = good[PeerKeyFile]
	missing := issue(hosts, pki.Window{})
	delete(missing, ServerKeyFile)
	for name, tc := range map[string]struct {
		ca    *pki.CA
		files map[string][]byte
		hosts []string
	}{
		"another CA":         {other, good, hosts},
		"another address":    {ca, good, []string{"10.0.0.5"}},
		"expires soon":       {ca, expiring, hosts},
		"key of another":     {ca, mismatched, hosts},
		"server key missing": {ca, missing, hosts},
	} {
		if CertsOnMachineValid(tc.ca, tc.files, tc.hosts, tc.hosts, now) {
			t.Errorf("%s: kept", name)
		}
	}
}
