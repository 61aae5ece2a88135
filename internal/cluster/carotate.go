package cluster

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/pki"
)

// CA rotation.
//
// Moving a cluster to a new certificate authority takes three phases, each
// one apply that restarts the members one at a time (restartOne's quorum
// checks), so that every member can talk to every other at each step:
//
//  1. CATrustBoth: every member's CA file (trusted-ca-file and
//     peer-trusted-ca-file) becomes the bundle old + new; the leaves stay
//     the old CA's.
//  2. CANewLeaves: every member gets server and peer certificates from the
//     new CA, still trusting both.
//  3. CADropOld: the CA file becomes the new CA alone.
//
// Between the phases, members on either step accept each other: in phase 1
// every leaf is the old CA's, which every member trusts; in phase 2 every
// member trusts both; in phase 3 every leaf is the new CA's. Clients with
// a certificate of either CA are accepted until phase 3.
//
// Rotation fills TLS.CA (the CA that issues leaves) and TLS.Trust (the CA
// file) for a phase; the rest is the usual convergence: memberFiles
// rewrites what differs, and converge restarts those members in turn.

// CAPhase is a phase of a CA rotation; 0 is none.
type CAPhase int

// The phases of a CA rotation, in order.
const (
	CATrustBoth CAPhase = 1
	CANewLeaves CAPhase = 2
	CADropOld   CAPhase = 3
)

// CAPhases is the number of phases.
const CAPhases = 3

// String describes the phase.
func (p CAPhase) String() string {
	switch p {
	case CATrustBoth:
		return "trust both CAs"
	case CANewLeaves:
		return "new leaves"
	case CADropOld:
		return "drop the old CA"
	}
	return fmt.Sprintf("phase %d", int(p))
}

// NextCAPhase is the phase the next apply performs, given the last phase
// applied (0, or CADropOld once a rotation is complete) and whether the
// configured CA differs from the cluster's: a rotation under way goes on
// whatever the configuration says (the caller refuses a second change of
// CA during one); a new CA starts one. 0: nothing to do.
func NextCAPhase(applied CAPhase, caChanged bool) CAPhase {
	switch {
	case applied == CATrustBoth || applied == CANewLeaves:
		return applied + 1
	case caChanged:
		return CATrustBoth
	}
	return 0
}

// ErrNoCAKey means a certificate had to be issued by a CA whose key the
// provider does not have (the old CA of a rotation, given as a write-only
// key).
var ErrNoCAKey = errors.New("the CA's key is not available")

// Rotation returns t's CA and Trust for phase of a rotation from old to
// next: the issuer of new leaves and the CA file's content. old may lack
// its key (pki.CA with only the certificate): it issues in phase 1 only,
// and only for a member whose certificates are missing or due.
func Rotation(phase CAPhase, old, next *pki.CA) (issuer *pki.CA, trust []byte) {
	switch phase {
	case CATrustBoth:
		return old, Bundle(next.CertPEM, old.CertPEM)
	case CANewLeaves:
		return next, Bundle(next.CertPEM, old.CertPEM)
	}
	return next, nil
}

// Bundle concatenates PEM certificates, each ending in one newline, in
// the given order, leaving out empty ones and repeats.
func Bundle(certs ...[]byte) []byte {
	var b bytes.Buffer
	var seen [][]byte
	for _, c := range certs {
		c = bytes.TrimSpace(c)
		if len(c) == 0 || containsBytes(seen, c) {
			continue
		}
		seen = append(seen, c)
		b.Write(c)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func containsBytes(list [][]byte, b []byte) bool {
	for _, x := range list {
		if bytes.Equal(x, b) {
			return true
		}
	}
	return false
}

// TrustPEM is the CA file's content, which is also what a client must
// trust: Trust, or the CA's certificate.
func (t *TLS) TrustPEM() []byte {
	if len(t.Trust) > 0 {
		return t.Trust
	}
	return t.CA.CertPEM
}

// trustPool is TrustPEM as a pool.
func (t *TLS) trustPool() (*x509.CertPool, error) {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(t.TrustPEM()) {
		return nil, errors.New("the trusted CA certificates hold no certificate")
	}
	return p, nil
}
