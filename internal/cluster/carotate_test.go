package cluster

import (
	"crypto/x509"
	"errors"
	"slices"
	"sort"
	"testing"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/memberhost"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/pki"
)

func TestNextCAPhase(t *testing.T) {
	for _, c := range []struct {
		applied CAPhase
		changed bool
		want    CAPhase
	}{
		{0, false, 0},
		{0, true, CATrustBoth},
		{CATrustBoth, false, CANewLeaves},
		{CATrustBoth, true, CANewLeaves}, // the caller refuses this
		{CANewLeaves, false, CADropOld},
		{CADropOld, false, 0},          // done: the plan is empty
		{CADropOld, true, CATrustBoth}, // the next rotation
	} {
		if got := NextCAPhase(c.applied, c.changed); got != c.want {
			t.Errorf("NextCAPhase(%d, %v) = %d, want %d", c.applied, c.changed, got, c.want)
		}
	}
}

// bundleNames parses a CA file and returns the common names in it.
func bundleNames(t *testing.T, b []byte) []string {
	t.Helper()
	certs, err := pki.ParseCertificatesPEM(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range certs {
		out = append(out, c.Subject.CommonName)
	}
	return out
}

// A member taken through the three phases: the CA file and the leaves
// change in the phase that changes them, and only then; at each step its
// certificates verify against everything the others trust at that step.
func TestCARotationPhases(t *testing.T) {
	oldCA, err := pki.NewCA(pki.CAOptions{CommonName: "old"})
	if err != nil {
		t.Fatal(err)
	}
	newCA, err := pki.NewCA(pki.CAOptions{CommonName: "new"})
	if err != nil {
		t.Fatal(err)
	}
	n := Node{Name: "a", Host: "10.0.0.1"}
	spec := Spec{Name: "c", Nodes: []Node{n}, Binary: Binary{RemotePath: "/usr/bin/etcd"}}
	client, err := oldCA.IssueClient("root", pki.Window{})
	if err != nil {
		t.Fatal(err)
	}

	// The member as the cluster was created: the old CA's files.
	spec.TLS = &TLS{CA: oldCA, Client: client}
	c := New(spec)
	st := &nodeState{n: n, files: map[string][]byte{}}
	f, err := c.memberFiles(st, spec.bootstrapCluster(), "new")
	if err != nil {
		t.Fatal(err)
	}
	node := f.pki

	// A CA without its key (a write-only old key) only checks.
	keyless := &pki.CA{KeyPair: pki.KeyPair{Cert: oldCA.Cert, CertPEM: oldCA.CertPEM}}

	for _, step := range []struct {
		phase   CAPhase
		old     *pki.CA
		trusted []string // the CA file's common names, in order
		issuer  string
		changed []string // files memberFiles writes
	}{
		{CATrustBoth, keyless, []string{"new", "old"}, "old", []string{memberhost.CAFile}},
		{CANewLeaves, oldCA, []string{"new", "old"}, "new", memberhost.PKIFiles},
		{CADropOld, oldCA, []string{"new"}, "new", []string{memberhost.CAFile}},
		{0, oldCA, []string{"new"}, "new", nil}, // done: nothing changes
	} {
		issuer, trust := Rotation(step.phase, step.old, newCA)
		spec.TLS = &TLS{CA: issuer, Client: client, Trust: trust}
		if step.phase == 0 {
			spec.TLS = &TLS{CA: newCA, Client: client}
		}
		if got := bundleNames(t, spec.TLS.TrustPEM()); !slices.Equal(got, step.trusted) {
			t.Fatalf("phase %d: CA file holds %v, want %v", step.phase, got, step.trusted)
		}
		c := New(spec)
		st := &nodeState{n: n, files: node}
		st.certsValid = c.remoteCertsValid(st)
		f, err := c.memberFiles(st, spec.bootstrapCluster(), "new")
		if err != nil {
			t.Fatalf("phase %d: %v", step.phase, err)
		}
		var changed []string
		next := map[string][]byte{}
		for k, v := range node {
			next[k] = v
		}
		for k, v := range f.pki {
			changed = append(changed, k)
			next[k] = v
		}
		sort.Strings(changed)
		want := append([]string(nil), step.changed...)
		sort.Strings(want)
		if !slices.Equal(changed, want) {
			t.Fatalf("phase %d (%s): writes %v, want %v", step.phase, step.phase, changed, want)
		}
		node = next
		// The leaves are the issuer's and verify against the CA file.
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(node[memberhost.CAFile])
		for _, name := range []string{memberhost.ServerCertFile, memberhost.PeerCertFile} {
			cert, err := pki.ParseCertificatePEM(node[name])
			if err != nil {
				t.Fatal(err)
			}
			if cert.Issuer.CommonName != step.issuer {
				t.Errorf("phase %d: %s issued by %q, want %q", step.phase, name, cert.Issuer.CommonName, step.issuer)
			}
			if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Errorf("phase %d: %s does not verify against the CA file: %v", step.phase, name, err)
			}
		}
	}
}

// In phase 1 the old CA issues; without its key, a member that needs new
// certificates is an error that says so, not a panic.
func TestCARotationKeylessOldCA(t *testing.T) {
	oldCA, _ := pki.NewCA(pki.CAOptions{CommonName: "old"})
	newCA, _ := pki.NewCA(pki.CAOptions{CommonName: "new"})
	client, _ := newCA.IssueClient("root", pki.Window{})
	keyless := &pki.CA{KeyPair: pki.KeyPair{Cert: oldCA.Cert, CertPEM: oldCA.CertPEM}}
	issuer, trust := Rotation(CATrustBoth, keyless, newCA)
	n := Node{Name: "a", Host: "10.0.0.1"}
	spec := Spec{Name: "c", Nodes: []Node{n}, Binary: Binary{RemotePath: "/usr/bin/etcd"}, TLS: &TLS{CA: issuer, Client: client, Trust: trust}}
	c := New(spec)
	_, err := c.memberFiles(&nodeState{n: n, files: map[string][]byte{}}, spec.bootstrapCluster(), "new")
	if !errors.Is(err, ErrNoCAKey) {
		t.Fatalf("memberFiles = %v, want ErrNoCAKey", err)
	}
}

func TestBundle(t *testing.T) {
	got := string(Bundle([]byte("A\n"), nil, []byte("B"), []byte("A")))
	if got != "A\nB\n" {
		t.Fatalf("Bundle = %q", got)
	}
}
