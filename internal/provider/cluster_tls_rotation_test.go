package provider

import (
	"fmt"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/memberhost"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/pki"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver/sshhost"
)

// The test binary accepts certificates of a minute, so that the tests can
// watch them expire; a user cannot lower the minimum (an hour).
func init() { minCertValidity = time.Minute }

func tlsLine(extra string) string { return "  tls = { " + extra + " }\n" }

// nodeCertNotAfter reads the NotAfter of the certificate file name of the
// cluster named cluster on host h (the hosts share the file system).
func nodeCertNotAfter(h *sshhost.Host, cluster, name string) (time.Time, error) {
	b, err := os.ReadFile(path.Join(h.BaseDir, cluster, "opt", "pki", name))
	if err != nil {
		return time.Time{}, err
	}
	c, err := pki.ParseCertificatePEM(b)
	if err != nil {
		return time.Time{}, err
	}
	return c.NotAfter, nil
}

// stateNotAfter is the state's tls_not_after.
func stateNotAfter(s *terraform.State) (time.Time, error) {
	v := s.RootModule().Resources["etcd_cluster.c"].Primary.Attributes["tls_not_after"]
	return time.Parse(time.RFC3339, v)
}

// Certificates that are due are replaced one member at a time while a
// client keeps writing: no acknowledged write is lost and every member ends
// up with new ones. Here they are due because tls.validity was shortened
// below what they last (the renewal window is TestAccClusterCertExpired's).
func TestAccClusterCertRotation(t *testing.T) {
	hosts := clusterHosts(t, 3)
	resource.ParallelTest(t, certRotationCase(t, hosts, "rotate", binaryLine(t), nil, nil))
}

// certRotationCase is TestAccClusterCertRotation's scenario for the cluster
// name on hosts, with extra in its resource block. created runs after the
// checks of the first apply, rotated after those of the rotation (nil:
// none).
func certRotationCase(t *testing.T, hosts []*sshhost.Host, name, extra string, created, rotated resource.TestCheckFunc) resource.TestCase {
	cfg := func(validity string) string {
		return clusterHCL(name, hosts, 3, extra+tlsLine(`auto = true, validity = "`+validity+`", renew_before = "30m"`))
	}
	var (
		w           *ackWriter
		ackedBefore int
		before      = map[string]time.Time{}
	)
	certs := func(s *terraform.State, check func(k string, na time.Time) error) error {
		for i, h := range hosts {
			for _, f := range []string{memberhost.ServerCertFile, memberhost.PeerCertFile} {
				na, err := nodeCertNotAfter(h, name, f)
				if err != nil {
					return err
				}
				if err := check(fmt.Sprintf("n%d/%s", i+1, f), na); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: cfg("2h"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("tls_not_after"), knownvalue.NotNull()),
					statecheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("tls_certificates_not_after"), knownvalue.MapSizeExact(7)),
				},
				Check: resource.ComposeTestCheckFunc(checkClusterMembers("n1", "n2", "n3"), optionalCheck(created), func(s *terraform.State) error {
					err := certs(s, func(k string, na time.Time) error {
						if d := time.Until(na); d > 2*time.Hour || d < 90*time.Minute {
							return fmt.Errorf("%s expires in %s, want about tls.validity (2h)", k, d)
						}
						before[k] = na
						return nil
					})
					if err != nil {
						return err
					}
					w, err = startAckWriter(s, "/"+name+"/")
					if err != nil {
						return err
					}
					ackedBefore = w.acks()
					return nil
				}),
			},
			{
				Config: cfg("1h"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("etcd_cluster.c", plancheck.ResourceActionUpdate),
					plancheck.ExpectUnknownValue("etcd_cluster.c", tfjsonpath.New("client_cert_pem")),
				}},
				Check: resource.ComposeTestCheckFunc(func(s *terraform.State) error {
					if err := w.verifyState(s, t, ackedBefore); err != nil {
						return err
					}
					return certs(s, func(k string, na time.Time) error {
						if !na.Before(before[k]) || time.Until(na) > time.Hour {
							return fmt.Errorf("%s not renewed: expires %s (before: %s)", k, na, before[k])
						}
						// Nothing staged is left behind.
						h := hosts[k[1]-'1']
						f := strings.TrimPrefix(k[2:], "/")
						if _, err := os.Stat(path.Join(h.BaseDir, name, "opt", "pki", f+".next")); err == nil {
							return fmt.Errorf("%s: staged %s.next left behind", k, f)
						}
						return nil
					})
				}, checkClusterMembers("n1", "n2", "n3"), optionalCheck(rotated)),
			},
		},
	}
}

// optionalCheck is check, or a check that passes when check is nil.
func optionalCheck(check resource.TestCheckFunc) resource.TestCheckFunc {
	if check == nil {
		return func(*terraform.State) error { return nil }
	}
	return check
}

// Certificates of a minute expire: clients are refused and the cluster is
// down for them. The plan (same configuration) renews them, and one apply
// brings the cluster back.
func TestAccClusterCertExpired(t *testing.T) {
	hosts := clusterHosts(t, 3)
	resource.ParallelTest(t, certExpiredCase(t, hosts, "expired", binaryLine(t), nil, nil))
}

// certExpiredCase is TestAccClusterCertExpired's scenario for the cluster
// name on hosts, with extra in its resource block. expired runs once the
// certificates have expired, renewed after the checks of the apply that
// renews them (nil: none).
func certExpiredCase(t *testing.T, hosts []*sshhost.Host, name, extra string, expired, renewed resource.TestCheckFunc) resource.TestCase {
	short := clusterHCL(name, hosts, 3, extra+tlsLine(`auto = true, validity = "1m", renew_before = "1s"`))
	long := clusterHCL(name, hosts, 3, extra+tlsLine(`auto = true`))
	return resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: short,
				// The check waits until the certificates have expired, so
				// the plans after the apply renew them.
				ExpectNonEmptyPlan: true,
				Check: resource.ComposeTestCheckFunc(checkClusterMembers("n1", "n2", "n3"), func(s *terraform.State) error {
					expiry, err := stateNotAfter(s)
					if err != nil {
						return err
					}
					if d := time.Until(expiry); d > time.Minute {
						return fmt.Errorf("tls_not_after %s is more than a minute away", expiry)
					}
					for !time.Now().After(expiry.Add(time.Second)) {
						time.Sleep(200 * time.Millisecond)
					}
					// The cluster is down for clients.
					err = checkClusterMembers("n1", "n2", "n3")(s)
					if err == nil {
						return fmt.Errorf("the cluster still answers with expired certificates")
					}
					t.Logf("a client after expiry: %v", err)
					return nil
				}, optionalCheck(expired)),
			},
			{
				Config: long,
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("etcd_cluster.c", plancheck.ResourceActionUpdate),
				}},
				Check: resource.ComposeTestCheckFunc(checkClusterMembers("n1", "n2", "n3"), func(s *terraform.State) error {
					for i, h := range hosts {
						for _, f := range []string{memberhost.ServerCertFile, memberhost.PeerCertFile} {
							na, err := nodeCertNotAfter(h, name, f)
							if err != nil {
								return err
							}
							if time.Until(na) < 300*24*time.Hour {
								return fmt.Errorf("n%d %s expires %s, want about a year from now", i+1, f, na)
							}
						}
					}
					earliest, err := stateNotAfter(s)
					if err == nil && time.Until(earliest) < 300*24*time.Hour {
						err = fmt.Errorf("tls_not_after %s, want about a year from now", earliest)
					}
					return err
				}, optionalCheck(renewed)),
			},
		},
	}
}

// Bad lifetimes and a CA key that is not the CA certificate's are refused
// at plan time, each naming its attribute; nothing is touched.
func TestAccClusterTLSLifetimeBadInput(t *testing.T) {
	hosts := clusterHosts(t, 1)
	bin := binaryLine(t)
	ca1, err := pki.NewCA(pki.CAOptions{CommonName: "one"})
	if err != nil {
		t.Fatal(err)
	}
	ca2, err := pki.NewCA(pki.CAOptions{CommonName: "two"})
	if err != nil {
		t.Fatal(err)
	}
	cfg := func(tls string) string { return clusterHCL("tlsbad", hosts, 1, bin+tlsLine(tls)) }
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config:      cfg(`auto = true, validity = "30d", renew_before = "30d"`),
				ExpectError: regexp.MustCompile(`tls\.renew_before \(30d\) must be shorter than tls\.validity \(30d\)`),
			},
			{
				Config:      cfg(`auto = true, validity = "30s"`),
				ExpectError: regexp.MustCompile(`tls\.validity "30s" is shorter than`),
			},
			{
				Config:      cfg(`auto = true, validity = "one year"`),
				ExpectError: regexp.MustCompile(`tls\.validity: "one year" is not a duration`),
			},
			{
				Config:      cfg(`auto = true, renew_before = "-1h"`),
				ExpectError: regexp.MustCompile(`tls\.renew_before: "-1h" is negative`),
			},
			{
				Config:      cfg(fmt.Sprintf(`ca_cert_pem = %s, ca_key_pem = %s`, hclString(string(ca1.CertPEM)), hclString(string(ca2.KeyPEM)))),
				ExpectError: regexp.MustCompile(`tls\.ca_cert_pem and tls\.ca_key_pem: pki: CA private key does not match`),
			},
		},
	})
	checkHostsEmpty(t, hosts)
}

// Your own CA with its key as a write-only argument: the cluster is
// created, and its certificates renewed (which needs the key), without the
// key ever landing in a state file. A key that does not match the
// certificate is refused at plan time.
func TestAccClusterCAKeyWriteOnly(t *testing.T) {
	hosts := clusterHosts(t, 3)
	bin := binaryLine(t)
	ca, err := pki.NewCA(pki.CAOptions{CommonName: "wo-test-ca"})
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA(pki.CAOptions{CommonName: "other"})
	if err != nil {
		t.Fatal(err)
	}
	const name = "cawo"
	// Secrets to look for: every base64 line of the key's PEM.
	var keyLines []string
	for _, l := range strings.Split(string(ca.KeyPEM), "\n") {
		if len(l) > 20 && !strings.HasPrefix(l, "-----") {
			keyLines = append(keyLines, l)
		}
	}
	cfg := func(key *pki.CA, validity string) string {
		return clusterHCL(name, hosts, 3, bin+tlsLine(fmt.Sprintf(`ca_cert_pem = %s, ca_key_pem_wo = %s, ca_key_pem_wo_version = 1, validity = %q`,
			hclString(string(ca.CertPEM)), hclString(string(key.KeyPEM)), validity)))
	}
	workDir := t.TempDir()
	var before time.Time
	resource.ParallelTest(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		ProtoV6ProviderFactories: testAccProviders,
		WorkingDir:               workDir,
		Steps: []resource.TestStep{
			{
				Config:      cfg(other, "365d"),
				ExpectError: regexp.MustCompile(`tls\.ca_cert_pem and tls\.ca_key_pem_wo: pki: CA private key does not match`),
			},
			{
				Config: clusterHCL(name, hosts, 3, bin+tlsLine(fmt.Sprintf(`ca_cert_pem = %s, ca_key_pem_wo = %s`,
					hclString(string(ca.CertPEM)), hclString(string(ca.KeyPEM))))),
				ExpectError: errorText("Set tls.ca_key_pem_wo_version"),
			},
			{
				Config: cfg(ca, "365d"),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("tls").AtMapKey("ca_key_pem_wo"), knownvalue.Null()),
					statecheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("tls").AtMapKey("ca_key_pem"), knownvalue.Null()),
				},
				Check: resource.ComposeTestCheckFunc(
					checkClusterMembers("n1", "n2", "n3"),
					checkStateFilesFree(workDir, name, keyLines...),
					func(s *terraform.State) error {
						before, err = nodeCertNotAfter(hosts[0], name, memberhost.ServerCertFile)
						return err
					},
				),
			},
			{
				// A shorter validity renews every certificate, issued
				// with the write-only key.
				Config: cfg(ca, "90d"),
				Check: resource.ComposeTestCheckFunc(
					checkClusterMembers("n1", "n2", "n3"),
					checkStateFilesFree(workDir, name, keyLines...),
					func(s *terraform.State) error {
						after, err := nodeCertNotAfter(hosts[0], name, memberhost.ServerCertFile)
						if err == nil && (!after.Before(before) || time.Until(after) > 91*24*time.Hour) {
							err = fmt.Errorf("n1's server certificate expires %s (before: %s), want within 90 days", after, before)
						}
						return err
					},
				),
			},
		},
	})
}

// Old CLIs cannot send write-only arguments.
func TestAccClusterCAKeyWriteOnlyOldCLI(t *testing.T) {
	hosts := clusterHosts(t, 1)
	ca, err := pki.NewCA(pki.CAOptions{CommonName: "wo-old"})
	if err != nil {
		t.Fatal(err)
	}
	resource.ParallelTest(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipAbove(tfversion.Version1_10_0)},
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{{
			Config: clusterHCL("cawoold", hosts, 1, binaryLine(t)+tlsLine(fmt.Sprintf(`ca_cert_pem = %s, ca_key_pem_wo = %s, ca_key_pem_wo_version = 1`,
				hclString(string(ca.CertPEM)), hclString(string(ca.KeyPEM))))),
			ExpectError: errorText("Write-only attributes are only supported in Terraform 1.11 and later"),
		}},
	})
}

func TestUnitCertDurations(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "365d": 365 * 24 * time.Hour, "90m": 90 * time.Minute, "1h30m": 90 * time.Minute} {
		got, err := parseCertDuration(in)
		if err != nil || got != want {
			t.Errorf("parseCertDuration(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "1y", "-1d", "x d", "-5m"} {
		if _, err := parseCertDuration(in); err == nil {
			t.Errorf("parseCertDuration(%q) did not fail", in)
		}
	}
	keys := []string{}
	for k := range clusterTLSAttributes() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != "auto,auto_ca_version,ca_cert_pem,ca_key_pem,ca_key_pem_wo,ca_key_pem_wo_version,renew_before,validity" {
		t.Errorf("tls attributes: %v", keys)
	}
}

// A cluster made with tls.ca_key_pem moves to tls.ca_key_pem_wo in place;
// once the state before the move is no longer the backup, no state file
// holds the key, and renewals still work.
func TestAccClusterCAKeyToWriteOnly(t *testing.T) {
	hosts := clusterHosts(t, 1)
	bin := binaryLine(t)
	ca, err := pki.NewCA(pki.CAOptions{CommonName: "to-wo-ca"})
	if err != nil {
		t.Fatal(err)
	}
	const name = "towo"
	var keyLines []string
	for _, l := range strings.Split(string(ca.KeyPEM), "\n") {
		if len(l) > 20 && !strings.HasPrefix(l, "-----") {
			keyLines = append(keyLines, l)
		}
	}
	cfg := func(key, validity string) string {
		return clusterHCL(name, hosts, 1, bin+tlsLine(fmt.Sprintf(`ca_cert_pem = %s, %s, validity = %q`, hclString(string(ca.CertPEM)), key, validity)))
	}
	plain := "ca_key_pem = " + hclString(string(ca.KeyPEM))
	wo := "ca_key_pem_wo = " + hclString(string(ca.KeyPEM)) + ", ca_key_pem_wo_version = 1"
	workDir := t.TempDir()
	resource.ParallelTest(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_11_0)},
		ProtoV6ProviderFactories: testAccProviders,
		WorkingDir:               workDir,
		Steps: []resource.TestStep{
			{
				Config: cfg(plain, "365d"),
				Check:  checkClusterMembers("n1"),
			},
			{
				Config: cfg(wo, "365d"),
				ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
					plancheck.ExpectResourceAction("etcd_cluster.c", plancheck.ResourceActionUpdate),
				}},
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("tls").AtMapKey("ca_key_pem"), knownvalue.Null()),
				},
				Check: checkClusterMembers("n1"),
			},
			{
				Config: cfg(wo, "90d"),
				Check: resource.ComposeTestCheckFunc(checkClusterMembers("n1"), checkStateFilesFree(workDir, name, keyLines...),
					func(*terraform.State) error {
						na, err := nodeCertNotAfter(hosts[0], name, memberhost.ServerCertFile)
						if err == nil && time.Until(na) > 91*24*time.Hour {
							err = fmt.Errorf("n1's server certificate expires %s, want within 90 days", na)
						}
						return err
					}),
			},
		},
	})
}

// TestAccClusterCertRotation on three hosts with systemd as PID 1: the
// rotation restarts every member's unit through systemd (a new main
// process, active, NRestarts 0), one member at a time while the client
// keeps writing, and nothing it acknowledged is lost.
func TestAccClusterSystemdCertRotation(t *testing.T) {
	systemdTLSTest(t, "sdrotate", certRotationCase, true)
}

// TestAccClusterCertExpired on three hosts with systemd as PID 1: the
// members' units stay active while their certificates are expired, and the
// apply that renews them restarts every unit through systemd (all at once:
// no member answers, there is no quorum to protect).
func TestAccClusterSystemdCertExpired(t *testing.T) {
	systemdTLSTest(t, "sdexpired", certExpiredCase, false)
}

// systemdTLSTest runs scenario (certRotationCase, certExpiredCase) for the
// cluster name on three systemd hosts, the bundled server in units: before
// the certificates change the units are checked and their main processes
// noted, after it each must have been restarted through systemd, one at a
// time when inTurn.
func systemdTLSTest(t *testing.T, name string, scenario func(t *testing.T, hosts []*sshhost.Host, name, extra string, before, after resource.TestCheckFunc) resource.TestCase, inTurn bool) {
	hosts := systemdHosts(t, 3)
	ctx := stepsContext(t)
	units, restarted := bundledUnitRestarts(ctx, hosts, name)
	if inTurn {
		restarted = resource.ComposeTestCheckFunc(restarted, units.inTurn)
	}
	resource.ParallelTest(t, scenario(t, hosts, name, binaryLine(t)+systemdLine, units.record, restarted))
}
