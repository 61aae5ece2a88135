// Package pki issues the certificates an etcd cluster needs: a CA, a server
// and a peer certificate per member, and client certificates.
//
// Every key is ECDSA P-256. Validity windows are explicit (Window) so that a
// caller that stores certificates, such as a Terraform resource, gets the same
// NotBefore/NotAfter for the same input and can decide on renewal itself.
//
// Server certificates carry both the serverAuth and the clientAuth extended
// key usage: etcd dials its own client port with its server certificate (the
// gRPC gateway and the member's internal client), and a server-only
// certificate then fails with "tls: bad certificate". Peer certificates carry
// both usages too, because every member is the client of every other member.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strings"
	"time"
)

// Default validity periods, used when a Window has a zero NotAfter.
const (
	DefaultCAValidity   = 10 * 365 * 24 * time.Hour
	DefaultLeafValidity = 5 * 365 * 24 * time.Hour
)

// Window is a certificate's validity period.
type Window struct {
	NotBefore time.Time
	NotAfter  time.Time
}

// WindowAt returns a window that starts one hour before the hour that
// contains start (to tolerate clock skew between nodes) and lasts validity
// from there. The same start hour always yields the same window.
func WindowAt(start time.Time, validity time.Duration) Window {
	nb := start.UTC().Truncate(time.Hour).Add(-time.Hour)
	return Window{NotBefore: nb, NotAfter: nb.Add(validity)}
}

func (w Window) orDefault(validity time.Duration) (Window, error) {
	if w.NotBefore.IsZero() {
		return WindowAt(time.Now(), validity), nil
	}
	if w.NotAfter.IsZero() {
		w.NotAfter = w.NotBefore.Add(validity)
	}
	if !w.NotAfter.After(w.NotBefore) {
		return w, fmt.Errorf("pki: validity window ends (%s) before it starts (%s)", w.NotAfter, w.NotBefore)
	}
	return Window{NotBefore: w.NotBefore.UTC(), NotAfter: w.NotAfter.UTC()}, nil
}

// KeyPair is a certificate with its private key, parsed and PEM encoded.
type KeyPair struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PrivateKey
	CertPEM []byte
	KeyPEM  []byte
}

// TLSCertificate returns the pair as a tls.Certificate.
func (kp *KeyPair) TLSCertificate() (tls.Certificate, error) {
	return tls.X509KeyPair(kp.CertPEM, kp.KeyPEM)
}

// CA is a certificate authority that can issue certificates.
type CA struct {
	KeyPair
}

// CAOptions configures NewCA.
type CAOptions struct {
	// CommonName of the CA; "etcd-ca" when empty.
	CommonName string
	// Organization is optional.
	Organization string
	// Window defaults to WindowAt(now, DefaultCAValidity).
	Window Window
}

// NewCA generates a self-signed CA.
func NewCA(opts CAOptions) (*CA, error) {
	cn := opts.CommonName
	if cn == "" {
		cn = "etcd-ca"
	}
	w, err := opts.Window.orDefault(DefaultCAValidity)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate CA key: %w", err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject(cn, opts.Organization),
		NotBefore:             w.NotBefore,
		NotAfter:              w.NotAfter,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		SubjectKeyId:          keyID(&key.PublicKey),
	}
	kp, err := sign(tmpl, tmpl, &key.PublicKey, key, key)
	if err != nil {
		return nil, err
	}
	return &CA{KeyPair: *kp}, nil
}

// LoadCA parses a CA certificate and its key from PEM, as stored by a caller
// from an earlier NewCA.
func LoadCA(certPEM, keyPEM []byte) (*CA, error) {
	cert, err := ParseCertificatePEM(certPEM)
	if err != nil {
		return nil, err
	}
	if !cert.IsCA {
		return nil, errors.New("pki: certificate is not a CA (basicConstraints CA:FALSE)")
	}
	key, err := ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, errors.New("pki: CA private key does not match the CA certificate")
	}
	return &CA{KeyPair: KeyPair{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}}, nil
}

// Pool returns a cert pool holding only this CA.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.Cert)
	return p
}

// LeafRequest describes a certificate to issue.
type LeafRequest struct {
	// CommonName of the subject. Required.
	CommonName string
	// Organization is optional (etcd ignores it; Kubernetes maps it to groups).
	Organization string
	// Hosts are the subject alternative names: each entry that parses as an
	// IP address becomes an IP SAN, every other entry a DNS SAN. Duplicates
	// are dropped.
	Hosts []string
	// Window defaults to WindowAt(now, DefaultLeafValidity), clipped to the
	// CA's NotAfter.
	Window Window
}

// Usage selects the extended key usages of an issued certificate.
type Usage int

const (
	// UsageServer is serverAuth + clientAuth: an etcd member's client-port
	// certificate (etcd also uses it as a client of itself).
	UsageServer Usage = iota
	// UsagePeer is serverAuth + clientAuth: members dial each other.
	UsagePeer
	// UsageClient is clientAuth only.
	UsageClient
)

func (u Usage) extKeyUsage() []x509.ExtKeyUsage {
	if u == UsageClient {
		return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
}

// Issue signs a new certificate for req with the given usage.
func (ca *CA) Issue(req LeafRequest, usage Usage) (*KeyPair, error) {
	if strings.TrimSpace(req.CommonName) == "" {
		return nil, errors.New("pki: a certificate needs a common name")
	}
	w, err := req.Window.orDefault(DefaultLeafValidity)
	if err != nil {
		return nil, err
	}
	if w.NotAfter.After(ca.Cert.NotAfter) {
		w.NotAfter = ca.Cert.NotAfter
	}
	if w.NotBefore.Before(ca.Cert.NotBefore) {
		w.NotBefore = ca.Cert.NotBefore
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("pki: generate key for %q: %w", req.CommonName, err)
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	ips, dns := SplitHosts(req.Hosts)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject(req.CommonName, req.Organization),
		NotBefore:             w.NotBefore,
		NotAfter:              w.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           usage.extKeyUsage(),
		BasicConstraintsValid: true,
		IPAddresses:           ips,
		DNSNames:              dns,
		SubjectKeyId:          keyID(&key.PublicKey),
		AuthorityKeyId:        ca.Cert.SubjectKeyId,
	}
	return sign(tmpl, ca.Cert, &key.PublicKey, key, ca.Key)
}

// MemberRequest describes one etcd member for IssueMember.
type MemberRequest struct {
	// Name is the member name, used as the common name.
	Name string
	// Hosts are the member's addresses and DNS names (peer and client).
	// With client-cert auth on the peer port, etcd also checks that a
	// peer's source address is one of its certificate's IP SANs, so list
	// every address the member connects from.
	Hosts  []string
	Window Window
}

// MemberCerts is what one member needs on disk.
type MemberCerts struct {
	Server *KeyPair
	Peer   *KeyPair
}

// LocalHosts are added to every server certificate, so that a member and
// tools on the node can reach the client port on loopback.
var LocalHosts = []string{"127.0.0.1", "::1", "localhost"}

// IssueMember issues a server certificate (member hosts plus LocalHosts) and
// a peer certificate (member hosts) for one member.
func (ca *CA) IssueMember(req MemberRequest) (*MemberCerts, error) {
	if len(req.Hosts) == 0 {
		return nil, fmt.Errorf("pki: member %q: at least one host (address or DNS name) is required", req.Name)
	}
	server, err := ca.Issue(LeafRequest{
		CommonName: req.Name,
		Hosts:      append(slices.Clone(req.Hosts), LocalHosts...),
		Window:     req.Window,
	}, UsageServer)
	if err != nil {
		return nil, err
	}
	peer, err := ca.Issue(LeafRequest{
		CommonName: req.Name,
		Hosts:      req.Hosts,
		Window:     req.Window,
	}, UsagePeer)
	if err != nil {
		return nil, err
	}
	return &MemberCerts{Server: server, Peer: peer}, nil
}

// IssueClient issues a client certificate whose common name is the etcd user
// name when the cluster authenticates by certificate (e.g. "root").
func (ca *CA) IssueClient(commonName string, w Window) (*KeyPair, error) {
	return ca.Issue(LeafRequest{CommonName: commonName, Window: w}, UsageClient)
}

// Verify checks that kp chains to the CA and is valid at t for every
// extended key usage that usage stands for, and, when host is not empty,
// that host (an IP address or DNS name) is one of its SANs.
func (ca *CA) Verify(kp *KeyPair, usage Usage, host string, t time.Time) error {
	// VerifyOptions.KeyUsages accepts a chain that has any one of the
	// usages, so check every required usage on its own.
	for _, eku := range usage.extKeyUsage() {
		opts := x509.VerifyOptions{
			Roots:       ca.Pool(),
			CurrentTime: t,
			KeyUsages:   []x509.ExtKeyUsage{eku},
			DNSName:     host,
		}
		if _, err := kp.Cert.Verify(opts); err != nil {
			return fmt.Errorf("pki: certificate %q: %w", kp.Cert.Subject.CommonName, err)
		}
	}
	return nil
}

// SplitHosts separates IP addresses from DNS names and drops duplicates and
// empty entries, keeping the order of first appearance.
func SplitHosts(hosts []string) ([]net.IP, []string) {
	var ips []net.IP
	var dns []string
	seen := map[string]bool{}
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if ip4 := ip.To4(); ip4 != nil {
				ip = ip4
			}
			k := "ip:" + ip.String()
			if !seen[k] {
				seen[k] = true
				ips = append(ips, ip)
			}
			continue
		}
		k := "dns:" + strings.ToLower(h)
		if !seen[k] {
			seen[k] = true
			dns = append(dns, h)
		}
	}
	return ips, dns
}

func subject(cn, org string) pkix.Name {
	n := pkix.Name{CommonName: cn}
	if org != "" {
		n.Organization = []string{org}
	}
	return n
}

func newSerial() (*big.Int, error) {
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("pki: serial number: %w", err)
	}
	return s.Add(s, big.NewInt(1)), nil
}

func keyID(pub *ecdsa.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(der)
	return sum[:20]
}

func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, key, signer *ecdsa.PrivateKey) (*KeyPair, error) {
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
	if err != nil {
		return nil, fmt.Errorf("pki: sign %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("pki: parse signed %q: %w", tmpl.Subject.CommonName, err)
	}
	keyPEM, err := EncodePrivateKeyPEM(key)
	if err != nil {
		return nil, err
	}
	return &KeyPair{Cert: cert, Key: key, CertPEM: EncodeCertificatePEM(cert), KeyPEM: keyPEM}, nil
}

// LeafWindow is the window of a leaf certificate issued at now that must
// last validity: it ends validity after now and starts up to an hour
// earlier (never more than validity earlier), so that a node whose clock
// is a little behind accepts it. Unlike WindowAt, the end is exact, which a
// caller that renews certificates before they expire needs.
func LeafWindow(now time.Time, validity time.Duration) Window {
	now = now.UTC().Truncate(time.Second)
	back := min(time.Hour, validity)
	return Window{NotBefore: now.Add(-back), NotAfter: now.Add(validity)}
}
