package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/cluster"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/memberhost"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/pki"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver/sshhost"
)

// A cluster on one CA (your own) moves to another in three applies while a
// client keeps writing: after each, clients with a certificate of the old
// CA and of the new one are both accepted (trusting both CAs, as
// ca_cert_pem tells them to), until the last phase, after which only the
// new one is; no acknowledged write is lost, and the plan after the last
// phase is empty. A second change of CA during the rotation, and a new CA
// whose key does not match, are refused at plan time.
func TestAccClusterCARotation(t *testing.T) {
	hosts := clusterHosts(t, 3)
	bin := binaryLine(t)
	const name = "carot"
	cas := map[string]*pki.CA{}
	for _, cn := range []string{"old", "new", "third"} {
		ca, err := pki.NewCA(pki.CAOptions{CommonName: cn})
		if err != nil {
			t.Fatal(err)
		}
		cas[cn] = ca
	}
	cfg := func(cert, key *pki.CA) string {
		return clusterHCL(name, hosts, 3, bin+tlsLine(fmt.Sprintf(`ca_cert_pem = %s, ca_key_pem = %s`,
			hclString(string(cert.CertPEM)), hclString(string(key.KeyPEM)))))
	}
	// Clients the test makes itself: a certificate of either CA, trusting
	// both.
	both := x509.NewCertPool()
	both.AddCert(cas["old"].Cert)
	both.AddCert(cas["new"].Cert)
	clientOf := func(ca *pki.CA) tls.Certificate {
		kp, err := ca.IssueClient("probe", pki.Window{})
		if err != nil {
			t.Fatal(err)
		}
		pair, err := kp.TLSCertificate()
		if err != nil {
			t.Fatal(err)
		}
		return pair
	}
	oldClient, newClient := clientOf(cas["old"]), clientOf(cas["new"])

	var (
		w           *ackWriter
		ackedBefore int
	)
	startWriter := func(s *terraform.State) error {
		var err error
		if w, err = startAckWriter(s, fmt.Sprintf("/%s/%d/", name, time.Now().UnixNano())); err == nil {
			ackedBefore = w.acks()
		}
		return err
	}
	// after checks the cluster once phase has been applied (0: created).
	after := func(phase cluster.CAPhase) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			if w != nil {
				if err := w.verifyState(s, t, ackedBefore); err != nil {
					return fmt.Errorf("after phase %d: %w", phase, err)
				}
			}
			trusted, issuer := []string{"old"}, "old"
			switch phase {
			case cluster.CATrustBoth:
				trusted = []string{"new", "old"}
			case cluster.CANewLeaves:
				trusted, issuer = []string{"new", "old"}, "new"
			case cluster.CADropOld:
				trusted, issuer = []string{"new"}, "new"
			}
			if got := pemNames(s.RootModule().Resources["etcd_cluster.c"].Primary.Attributes["ca_cert_pem"]); !slices.Equal(got, trusted) {
				return fmt.Errorf("after phase %d: ca_cert_pem holds %v, want %v", phase, got, trusted)
			}
			for i, h := range hosts {
				if err := checkNodePKI(h, name, trusted, issuer); err != nil {
					return fmt.Errorf("after phase %d: n%d: %w", phase, i+1, err)
				}
			}
			if phase > 0 {
				ctx := stepsContext(t)
				if err := putWith(ctx, s, both, newClient, 10*time.Second); err != nil {
					return fmt.Errorf("after phase %d: a client with a certificate of the new CA: %w", phase, err)
				}
				// Refused: the write can only time out; a shorter limit.
				limit := 10 * time.Second
				if phase == cluster.CADropOld {
					limit = 4 * time.Second
				}
				err := putWith(ctx, s, both, oldClient, limit)
				if phase < cluster.CADropOld && err != nil {
					return fmt.Errorf("after phase %d: a client with a certificate of the old CA: %w", phase, err)
				}
				if phase == cluster.CADropOld && err == nil {
					return fmt.Errorf("after phase %d: a client with a certificate of the old CA is still accepted", phase)
				}
			}
			if phase == cluster.CADropOld {
				return nil
			}
			return startWriter(s)
		}
	}
	next := func(phase int64) []plancheck.PlanCheck {
		return []plancheck.PlanCheck{
			plancheck.ExpectResourceAction("etcd_cluster.c", plancheck.ResourceActionUpdate),
			plancheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("tls_ca_rotation_phase"), knownvalue.Int64Exact(phase)),
		}
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: cfg(cas["old"], cas["old"]),
				Check:  resource.ComposeTestCheckFunc(checkClusterMembers("n1", "n2", "n3"), after(0)),
			},
			{
				Config:      cfg(cas["new"], cas["old"]),
				ExpectError: errorText("tls.ca_cert_pem and tls.ca_key_pem: pki: CA private key does not match"),
			},
			{
				Config:             cfg(cas["new"], cas["new"]),
				ConfigPlanChecks:   resource.ConfigPlanChecks{PreApply: next(1), PostApplyPostRefresh: next(2)},
				ExpectNonEmptyPlan: true,
				Check:              after(cluster.CATrustBoth),
			},
			{
				Config:      cfg(cas["third"], cas["third"]),
				ExpectError: errorText("phase 1 of 3 (trust both CAs) is applied"),
			},
			{
				Config:             cfg(cas["new"], cas["new"]),
				ConfigPlanChecks:   resource.ConfigPlanChecks{PreApply: next(2), PostApplyPostRefresh: next(3)},
				ExpectNonEmptyPlan: true,
				Check:              after(cluster.CANewLeaves),
			},
			{
				Config: cfg(cas["new"], cas["new"]),
				ConfigPlanChecks: resource.ConfigPlanChecks{
					PreApply:             next(3),
					PostApplyPostRefresh: []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()},
				},
				Check: resource.ComposeTestCheckFunc(after(cluster.CADropOld), checkClusterMembers("n1", "n2", "n3")),
			},
		},
	})
}

// pemNames are the common names of the certificates in a PEM bundle.
func pemNames(b string) []string {
	certs, err := pki.ParseCertificatesPEM([]byte(b))
	if err != nil {
		return nil
	}
	var out []string
	for _, c := range certs {
		out = append(out, c.Subject.CommonName)
	}
	return out
}

// checkNodePKI checks the CA file of cluster on h (the common names in it,
// in order) and the issuer of its server and peer certificates.
func checkNodePKI(h *sshhost.Host, cluster string, trusted []string, issuer string) error {
	dir := path.Join(h.BaseDir, cluster, "opt", "pki")
	b, err := os.ReadFile(path.Join(dir, memberhost.CAFile))
	if err != nil {
		return err
	}
	if got := pemNames(string(b)); !slices.Equal(got, trusted) {
		return fmt.Errorf("CA file holds %v, want %v", got, trusted)
	}
	for _, f := range []string{memberhost.ServerCertFile, memberhost.PeerCertFile} {
		b, err := os.ReadFile(path.Join(dir, f))
		if err != nil {
			return err
		}
		c, err := pki.ParseCertificatePEM(b)
		if err != nil {
			return err
		}
		if c.Issuer.CommonName != issuer {
			return fmt.Errorf("%s issued by %q, want %q", f, c.Issuer.CommonName, issuer)
		}
	}
	return nil
}

// putWith writes a key through a client of the cluster in the state that
// trusts roots and presents cert, within limit.
func putWith(ctx context.Context, s *terraform.State, roots *x509.CertPool, cert tls.Certificate, limit time.Duration) error {
	eps, err := stateEndpoints(s)
	if err != nil {
		return err
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second, Logger: zap.NewNop(),
		TLS: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}})
	if err != nil {
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	_, err = cli.Put(ctx, "/acc/ca-rotation-probe", "ok")
	return err
}

// TestAccClusterCARotation with tls.auto on three systemd hosts: a new
// tls.auto_ca_version rolls a CA the provider generates (its key in private
// state) out in three applies. After each, the members' CA files and
// certificates, and the certificates they present over TLS, are those of
// the phase (the old and the new CA share a common name: they are told
// apart by their bytes and signatures); systemd restarted every member's
// unit, one at a time; a background writer lost no acknowledged write; and
// a provider wired to the cluster's outputs in the same configuration
// writes a key, so clients that follow ca_cert_pem and client_cert_pem keep
// working. The plan after each phase names the next one, and is empty after
// the last, after which the first client certificate (old CA) is refused.
func TestAccClusterSystemdAutoCARotation(t *testing.T) {
	hosts := systemdHosts(t, 3)
	ctx := stepsContext(t)
	const name = "sdautoca"
	units, restarted := bundledUnitRestarts(ctx, hosts, name)
	restarted = resource.ComposeTestCheckFunc(restarted, units.inTurn)
	extra := binaryLine(t) + systemdLine
	cfg := func(version int, value string) string {
		return clusterHCL(name, hosts, 3, extra+tlsLine(fmt.Sprintf("auto = true, auto_ca_version = %d", version))) + wiredProviderHCL + fmt.Sprintf(`
resource "etcd_key" "wired" {
  provider = etcdwired
  key      = "/wired/%s"
  value    = %q
}
`, name, value)
	}
	var (
		oldCA, newCA *x509.Certificate
		oldClient    tls.Certificate
		w            *ackWriter
		ackedBefore  int
	)
	after := func(phase cluster.CAPhase) resource.TestCheckFunc {
		return func(s *terraform.State) error {
			if w != nil {
				if err := w.verifyState(s, t, ackedBefore); err != nil {
					return fmt.Errorf("after phase %d: %w", phase, err)
				}
				w = nil
			}
			a := s.RootModule().Resources["etcd_cluster.c"].Primary.Attributes
			cas, err := pki.ParseCertificatesPEM([]byte(a["ca_cert_pem"]))
			if err != nil {
				return err
			}
			switch {
			case phase == 0 && len(cas) == 1:
				oldCA = cas[0]
				if oldClient, err = tls.X509KeyPair([]byte(a["client_cert_pem"]), []byte(a["client_key_pem"])); err != nil {
					return err
				}
			case phase == cluster.CATrustBoth && len(cas) == 2 && cas[1].Equal(oldCA) && !cas[0].Equal(oldCA):
				newCA = cas[0]
			case phase == cluster.CANewLeaves && len(cas) == 2 && cas[0].Equal(newCA) && cas[1].Equal(oldCA):
			case phase == cluster.CADropOld && len(cas) == 1 && cas[0].Equal(newCA):
			default:
				return fmt.Errorf("after phase %d: ca_cert_pem holds %d certificates, not the CAs of the phase (old %v, new %v)", phase, len(cas), oldCA != nil, newCA != nil)
			}
			if got := a["tls_ca_rotation_phase"]; phase > 0 && got != fmt.Sprint(int(phase)) {
				return fmt.Errorf("after phase %d: tls_ca_rotation_phase is %q", phase, got)
			}
			issuer := oldCA
			if phase >= cluster.CANewLeaves {
				issuer = newCA
			}
			if err := signedBy("client_cert_pem", []byte(a["client_cert_pem"]), issuer); err != nil {
				return fmt.Errorf("after phase %d: %w", phase, err)
			}
			for i, h := range hosts {
				if err := checkNodeCAs(h, name, cas, issuer); err != nil {
					return fmt.Errorf("after phase %d: n%d: %w", phase, i+1, err)
				}
				for _, u := range []string{"client_urls", "peer_urls"} {
					url := a[fmt.Sprintf("members.%d.%s.0", i, u)]
					leaf, err := presentedCert(ctx, url)
					if err == nil {
						err = leaf.CheckSignatureFrom(issuer)
					}
					if err != nil {
						return fmt.Errorf("after phase %d: member %d's %s %s: %w", phase, i, u, url, err)
					}
				}
			}
			// The wired provider wrote this phase's value, after the
			// cluster's phase (it depends on its outputs).
			want := fmt.Sprintf("phase %d", phase)
			err = withClusterClient(s, 10*time.Second, func(ctx context.Context, cli *clientv3.Client) error {
				r, err := cli.Get(ctx, "/wired/"+name)
				if err == nil && (len(r.Kvs) != 1 || string(r.Kvs[0].Value) != want) {
					err = fmt.Errorf("/wired/%s holds %v, want %q", name, r.Kvs, want)
				}
				return err
			})
			if err != nil {
				return fmt.Errorf("after phase %d: %w", phase, err)
			}
			if phase == cluster.CADropOld {
				// Refused: the write can only time out.
				roots := x509.NewCertPool()
				roots.AddCert(newCA)
				if putWith(ctx, s, roots, oldClient, 4*time.Second) == nil {
					return fmt.Errorf("after phase %d: a client with the first client certificate (old CA) is still accepted", phase)
				}
				return nil
			}
			if w, err = startAckWriter(s, fmt.Sprintf("/%s/%d/", name, phase)); err == nil {
				ackedBefore = w.acks()
			}
			return err
		}
	}
	next := func(phase int64) []plancheck.PlanCheck {
		return []plancheck.PlanCheck{
			plancheck.ExpectResourceAction("etcd_cluster.c", plancheck.ResourceActionUpdate),
			plancheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("tls_ca_rotation_phase"), knownvalue.Int64Exact(phase)),
		}
	}
	phaseStep := func(phase cluster.CAPhase) resource.TestStep {
		step := resource.TestStep{
			Config: cfg(2, fmt.Sprintf("phase %d", phase)),
			ConfigPlanChecks: resource.ConfigPlanChecks{
				PreApply: append(next(int64(phase)), plancheck.ExpectResourceAction("etcd_key.wired", plancheck.ResourceActionUpdate)),
			},
			Check: resource.ComposeTestCheckFunc(after(phase), restarted),
		}
		if phase < cluster.CADropOld {
			step.ExpectNonEmptyPlan = true
			step.ConfigPlanChecks.PostApplyPostRefresh = next(int64(phase) + 1)
		} else {
			step.ConfigPlanChecks.PostApplyPostRefresh = []plancheck.PlanCheck{plancheck.ExpectEmptyPlan()}
		}
		return step
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: map[string]func() (tfprotov6.ProviderServer, error){
			"etcd":      NewProtocol6Server("test"),
			"etcdwired": NewProtocol6Server("test"),
		},
		Steps: []resource.TestStep{
			{
				Config: cfg(1, "phase 0"),
				Check:  resource.ComposeTestCheckFunc(checkClusterMembers("n1", "n2", "n3"), units.record, after(0)),
			},
			phaseStep(cluster.CATrustBoth),
			phaseStep(cluster.CANewLeaves),
			phaseStep(cluster.CADropOld),
		},
	})
}

// signedBy checks that the PEM certificate what was issued by issuer.
func signedBy(what string, certPEM []byte, issuer *x509.Certificate) error {
	c, err := pki.ParseCertificatePEM(certPEM)
	if err == nil {
		err = c.CheckSignatureFrom(issuer)
	}
	if err != nil {
		return fmt.Errorf("%s: not issued by the expected CA: %w", what, err)
	}
	return nil
}

// checkNodeCAs checks the CA file of cluster on h (exactly trusted, in
// order) and that issuer signed its server and peer certificates: the
// byte-level checkNodePKI, for CAs with the same common name.
func checkNodeCAs(h *sshhost.Host, cluster string, trusted []*x509.Certificate, issuer *x509.Certificate) error {
	dir := path.Join(h.BaseDir, cluster, "opt", "pki")
	b, err := os.ReadFile(path.Join(dir, memberhost.CAFile))
	if err != nil {
		return err
	}
	got, err := pki.ParseCertificatesPEM(b)
	if err != nil {
		return err
	}
	if !slices.EqualFunc(got, trusted, (*x509.Certificate).Equal) {
		return fmt.Errorf("CA file holds %d certificates, not the %d of ca_cert_pem", len(got), len(trusted))
	}
	for _, f := range []string{memberhost.ServerCertFile, memberhost.PeerCertFile} {
		b, err := os.ReadFile(path.Join(dir, f))
		if err != nil {
			return err
		}
		if err := signedBy(f, b, issuer); err != nil {
			return err
		}
	}
	return nil
}

// presentedCert is the certificate a TLS server at url (https://host:port)
// presents in a handshake. The handshake may fail after that (the server
// wants a client certificate): that is no error here.
func presentedCert(ctx context.Context, url string) (*x509.Certificate, error) {
	var leaf *x509.Certificate
	// Not verified here: the caller checks who issued it.
	conf := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12,
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) > 0 {
				c, err := x509.ParseCertificate(raw[0])
				leaf = c
				return err
			}
			return nil
		}}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	d := tls.Dialer{Config: conf}
	conn, err := d.DialContext(ctx, "tcp", strings.TrimPrefix(url, "https://"))
	if conn != nil {
		_ = conn.Close()
	}
	if leaf == nil {
		return nil, fmt.Errorf("no certificate presented: %v", err)
	}
	return leaf, nil
}
