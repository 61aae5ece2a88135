package testserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// TLSInfo is the TLS material of a cluster started WithTLS. Cert and Key are
// a client certificate with common name "root" (usable for etcd's
// certificate authentication as user root). The files live in the cluster's
// temporary directory and are removed by Close.
type TLSInfo struct {
	CACertPEM, CertPEM, KeyPEM []byte
	CAFile, CertFile, KeyFile  string
}

// certValidity is long enough for a development cluster left running.
const certValidity = 365 * 24 * time.Hour

type certFiles struct{ cert, key string }

// pki is a throw-away certificate authority plus the certificates issued
// from it.
type pki struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caPEM  []byte
	caFile string
	pool   *x509.CertPool

	rootCert tls.Certificate

	mu          sync.Mutex
	memberFiles map[string]certFiles
}

func (c *Cluster) setupTLS() error {
	p, err := newPKI(filepath.Join(c.dir, "pki"))
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	certPEM, keyPEM, err := p.issue(rootUser, false)
	if err != nil {
		return fmt.Errorf("tls: root client certificate: %w", err)
	}
	p.rootCert, err = tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	info := &TLSInfo{
		CACertPEM: p.caPEM,
		CertPEM:   certPEM,
		KeyPEM:    keyPEM,
		CAFile:    p.caFile,
		CertFile:  filepath.Join(p.dir, "client.crt"),
		KeyFile:   filepath.Join(p.dir, "client.key"),
	}
	if err := writeFile(info.CertFile, certPEM); err != nil {
		return err
	}
	if err := writeFile(info.KeyFile, keyPEM); err != nil {
		return err
	}
	c.pki, c.tls = p, info
	return nil
}

func newPKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl, err := certTemplate("testserver CA")
	if err != nil {
		return nil, err
	}
	tmpl.IsCA = true
	tmpl.BasicConstraintsValid = true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	p := &pki{
		dir:         dir,
		ca:          ca,
		caKey:       key,
		caPEM:       pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		caFile:      filepath.Join(dir, "ca.crt"),
		pool:        x509.NewCertPool(),
		memberFiles: map[string]certFiles{},
	}
	p.pool.AddCert(ca)
	if err := writeFile(p.caFile, p.caPEM); err != nil {
		return nil, err
	}
	return p, nil
}

func certTemplate(cn string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: []string{"terraform-provider-etcd testserver"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
	}, nil
}

// issue signs a new certificate for cn. A member certificate serves and
// presents client certificates on loopback; any other is a client
// certificate only.
func (p *pki) issue(cn string, member bool) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl, err := certTemplate(cn)
	if err != nil {
		return nil, nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if member {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), nil
}

// ensureMemberFiles writes the serving certificate of member name once.
func (p *pki) ensureMemberFiles(name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.memberFiles[name]; ok {
		return nil
	}
	certPEM, keyPEM, err := p.issue(name, true)
	if err != nil {
		return fmt.Errorf("tls: member %s certificate: %w", name, err)
	}
	f := certFiles{cert: filepath.Join(p.dir, name+".crt"), key: filepath.Join(p.dir, name+".key")}
	if err := writeFile(f.cert, certPEM); err != nil {
		return err
	}
	if err := writeFile(f.key, keyPEM); err != nil {
		return err
	}
	p.memberFiles[name] = f
	return nil
}

func (p *pki) memberCertFiles(name string) certFiles {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.memberFiles[name]
}

// clientTLSConfig trusts the cluster CA and presents cert.
func (p *pki) clientTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		RootCAs:      p.pool,
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
}

func writeFile(name string, data []byte) error {
	if err := os.WriteFile(name, data, 0o600); err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	return nil
}

// TLS returns the cluster's TLS material, or nil without WithTLS.
func (c *Cluster) TLS() *TLSInfo {
	if c.tls == nil {
		return nil
	}
	info := *c.tls
	return &info
}

// IssueClientCert returns a new client certificate and key for commonName,
// signed by the cluster CA. With client certificate authentication etcd
// takes the common name as the user name. It needs WithTLS.
func (c *Cluster) IssueClientCert(commonName string) (certPEM, keyPEM []byte, err error) {
	if c.pki == nil {
		return nil, nil, errors.New("testserver: IssueClientCert needs WithTLS")
	}
	if commonName == "" {
		return nil, nil, errors.New("testserver: IssueClientCert: empty common name")
	}
	return c.pki.issue(commonName, false)
}
