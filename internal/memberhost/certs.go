package memberhost

import (
	"fmt"
	"path"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/etcdconf"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/pki"
)

// The certificate files of a TLS member, in its Layout's PKIDir.
const (
	CAFile         = "ca.pem"
	ServerCertFile = "server.pem" // the client port's
	ServerKeyFile  = "server-key.pem"
	PeerCertFile   = "peer.pem" // the peer port's, also presented when dialing peers
	PeerKeyFile    = "peer-key.pem"
)

// PKIFiles are all of them.
var PKIFiles = []string{CAFile, ServerCertFile, ServerKeyFile, PeerCertFile, PeerKeyFile}

// RenewBefore is how long certificates on a machine must stay valid to be
// kept; closer to their expiry they are issued again.
const RenewBefore = 30 * 24 * time.Hour

// Render renders the member's etcd config file c with the layout's data dir
// and, with tls, client and peer TLS from the certificate files in l.PKIDir
// (client certificate authentication on both ports).
func (l Layout) Render(c etcdconf.Config, tls bool) ([]byte, error) {
	c.DataDir = l.DataDir
	if tls {
		l.wireTLS(&c)
	}
	return etcdconf.Render(c)
}

func (l Layout) wireTLS(c *etcdconf.Config) {
	f := func(name string) string { return path.Join(l.PKIDir, name) }
	c.ClientTLS = &etcdconf.TLS{CertFile: f(ServerCertFile), KeyFile: f(ServerKeyFile), TrustedCAFile: f(CAFile), ClientCertAuth: true}
	c.PeerTLS = &etcdconf.TLS{CertFile: f(PeerCertFile), KeyFile: f(PeerKeyFile), TrustedCAFile: f(CAFile), ClientCertAuth: true}
}

// CertFiles is the content of the PKI dir for certs and the CA certificate
// caPEM, by file name.
func CertFiles(caPEM []byte, certs *pki.MemberCerts) map[string][]byte {
	return map[string][]byte{
		CAFile:         caPEM,
		ServerCertFile: certs.Server.CertPEM,
		ServerKeyFile:  certs.Server.KeyPEM,
		PeerCertFile:   certs.Peer.CertPEM,
		PeerKeyFile:    certs.Peer.KeyPEM,
	}
}

// loadKeyPair parses a certificate and its key and checks that they match.
func loadKeyPair(what string, certPEM, keyPEM []byte) (*pki.KeyPair, error) {
	cert, err := pki.ParseCertificatePEM(certPEM)
	if err != nil {
		return nil, fmt.Errorf("%s certificate: %w", what, err)
	}
	key, err := pki.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%s key: %w", what, err)
	}
	kp := &pki.KeyPair{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}
	if _, err := kp.TLSCertificate(); err != nil {
		return nil, fmt.Errorf("%s certificate and key do not match: %w", what, err)
	}
	return kp, nil
}

// CheckCerts checks the member's certificates against ca at each of the
// times: both chain to ca with the key usages etcd needs (serverAuth and
// clientAuth: members dial each other, and themselves, with them), the
// server certificate names every host in serverHosts and the peer
// certificate every host in peerHosts.
func CheckCerts(ca *pki.CA, certs *pki.MemberCerts, serverHosts, peerHosts []string, at ...time.Time) error {
	check := func(what string, kp *pki.KeyPair, usage pki.Usage, hosts []string, t time.Time) error {
		if err := ca.Verify(kp, usage, "", t); err != nil {
			return fmt.Errorf("%s certificate: %w (it needs both the serverAuth and the clientAuth extended key usage: etcd members dial each other, and themselves, with it)", what, err)
		}
		for _, h := range hosts {
			if err := ca.Verify(kp, usage, h, t); err != nil {
				return fmt.Errorf("%s certificate has no subject alternative name for %s, an address the member is reached at: %w", what, h, err)
			}
		}
		return nil
	}
	for _, t := range at {
		if err := check("server", certs.Server, pki.UsageServer, serverHosts, t); err != nil {
			return err
		}
		if err := check("peer", certs.Peer, pki.UsagePeer, peerHosts, t); err != nil {
			return err
		}
	}
	return nil
}

// CertsOnMachineValid tells whether the certificates already on a machine
// (files: the PKI dir's content by name) can stay: matching keys, and
// CheckCerts holds now and RenewBefore from now.
func CertsOnMachineValid(ca *pki.CA, files map[string][]byte, serverHosts, peerHosts []string, now time.Time) bool {
	return CertsOnMachineValidFor(ca, files, serverHosts, peerHosts, now, RenewBefore)
}

// CertsOnMachineValidFor is CertsOnMachineValid with a renewal window of
// renewBefore instead of RenewBefore.
func CertsOnMachineValidFor(ca *pki.CA, files map[string][]byte, serverHosts, peerHosts []string, now time.Time, renewBefore time.Duration) bool {
	server, err := loadKeyPair("server", files[ServerCertFile], files[ServerKeyFile])
	if err != nil {
		return false
	}
	peer, err := loadKeyPair("peer", files[PeerCertFile], files[PeerKeyFile])
	if err != nil {
		return false
	}
	certs := &pki.MemberCerts{Server: server, Peer: peer}
	return CheckCerts(ca, certs, serverHosts, peerHosts, now, now.Add(renewBefore)) == nil
}
