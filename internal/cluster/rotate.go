package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/memberhost"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/pki"
)

// Certificate rotation.
//
// A member's server and peer certificates are issued again when they are
// due (CertDue): inside the renewal window, already expired, or lasting
// longer than the configured validity (the validity was shortened). Apply
// then stages the new files next to the live ones and moves them into
// place right before that member's restart, one member at a time behind
// the quorum checks of a rolling restart (restartOne); certificates from
// the same CA are interchangeable, so members on old and new certificates
// keep talking to each other. When no member answers (the certificates
// expired and clients are refused), every member gets its new certificates
// and is restarted at once: there is no quorum to protect.

// CertDue tells whether a certificate that expires at notAfter must be
// issued again at now: it expires within renewBefore (or has expired), or
// it outlasts validity from now (validity was shortened since it was
// issued). A zero validity or renewBefore skips that part of the check.
func CertDue(notAfter, now time.Time, validity, renewBefore time.Duration) bool {
	if !notAfter.After(now.Add(renewBefore)) {
		return true
	}
	return validity > 0 && notAfter.After(now.Add(validity))
}

// renewBefore is the spec's renewal window.
func (t *TLS) renewBefore() time.Duration {
	if t.RenewBefore > 0 {
		return t.RenewBefore
	}
	return memberhost.RenewBefore
}

// window is the validity window of certificates issued at now; the zero
// window (pki's defaults) without a configured validity.
func (t *TLS) window(now time.Time) pki.Window {
	if t.Validity <= 0 {
		return pki.Window{}
	}
	return pki.LeafWindow(now, t.Validity)
}

// remoteCertsValid checks the certificates on the node: server and peer
// certificates from the spec's CA that cover the member's hosts, and
// neither is due (CertDue). The CA file is memberFiles' to compare.
func (c *Cluster) remoteCertsValid(st *nodeState) bool {
	t := c.spec.TLS
	hosts := []string{st.n.peerAddress(), st.n.clientAddress()}
	now := time.Now()
	if !memberhost.CertsOnMachineValidFor(t.CA, st.files, hosts, hosts, now, t.renewBefore()) {
		return false
	}
	for _, f := range []string{memberhost.ServerCertFile, memberhost.PeerCertFile} {
		cert, err := pki.ParseCertificatePEM(st.files[f])
		if err != nil || CertDue(cert.NotAfter, now, t.Validity, t.renewBefore()) {
			return false
		}
	}
	return true
}

// CertKind names a member certificate in CertExpiry's answer.
type CertKind string

// The member certificates.
const (
	CertServer CertKind = "server"
	CertPeer   CertKind = "peer"
)

// CertExpiry returns the NotAfter of every member's server and peer
// certificate, keyed "<node>/server" and "<node>/peer". Each is what the
// member presents in a TLS handshake on its client and peer port (etcd
// reads its certificate files for every new connection, so that is the
// file on the node); for a member that does not answer, the files are read
// over SSH. Expired or untrusted certificates are reported all the same.
// A node reached neither way is left out, and err says why; the map holds
// what could be read.
func (c *Cluster) CertExpiry(ctx context.Context) (map[string]time.Time, error) {
	if c.spec.TLS == nil {
		return nil, nil
	}
	out := map[string]time.Time{}
	var mu sync.Mutex
	err := parallel(c.spec.Nodes, func(n Node) error {
		got := map[CertKind]time.Time{}
		for kind, port := range map[CertKind]int{CertServer: c.spec.clientPort(), CertPeer: c.spec.peerPort()} {
			addr := n.clientAddress()
			if kind == CertPeer {
				addr = n.peerAddress()
			}
			if cert, err := c.presentedCert(ctx, net.JoinHostPort(addr, strconv.Itoa(port))); err == nil {
				got[kind] = cert.NotAfter
			}
		}
		if len(got) < 2 {
			files, err := c.readCertFiles(ctx, n)
			if err != nil {
				return err
			}
			for kind, f := range map[CertKind]string{CertServer: memberhost.ServerCertFile, CertPeer: memberhost.PeerCertFile} {
				if _, ok := got[kind]; ok {
					continue
				}
				cert, err := pki.ParseCertificatePEM(files[f])
				if err != nil {
					return fmt.Errorf("%s certificate on the node: %w", kind, err)
				}
				got[kind] = cert.NotAfter
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for kind, t := range got {
			out[n.Name+"/"+string(kind)] = t.UTC()
		}
		return nil
	})
	return out, err
}

// presentedCert is the leaf certificate the TLS server at addr presents.
// It is not verified: an expired one is what the caller wants to see.
func (c *Cluster) presentedCert(ctx context.Context, addr string) (*x509.Certificate, error) {
	var leaf *x509.Certificate
	cfg := &tls.Config{
		InsecureSkipVerify: true, //nolint:gosec // the certificate is read, not trusted: nothing is sent over this connection
		MinVersion:         tls.VersionTLS12,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) > 0 {
				leaf = cs.PeerCertificates[0]
			}
			return nil
		},
	}
	if cl := c.spec.TLS.Client; cl != nil && cl.Key != nil {
		if pair, err := cl.TLSCertificate(); err == nil {
			cfg.Certificates = []tls.Certificate{pair}
		}
	}
	dctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	d := tls.Dialer{Config: cfg, NetDialer: &net.Dialer{}}
	conn, err := d.DialContext(dctx, "tcp", addr)
	if conn != nil {
		_ = conn.Close()
	}
	if leaf != nil {
		return leaf, nil // the server may still refuse our certificate
	}
	if err == nil {
		err = errors.New("no certificate presented")
	}
	return nil, err
}

// readCertFiles reads n's server and peer certificates over SSH.
func (c *Cluster) readCertFiles(ctx context.Context, n Node) (map[string][]byte, error) {
	cl, err := c.conn(ctx, n)
	if err != nil {
		return nil, err
	}
	dir := c.spec.layout(n).PKIDir
	out := map[string][]byte{}
	for _, f := range []string{memberhost.ServerCertFile, memberhost.PeerCertFile} {
		s, err := cl.Run(ctx, "cat "+node.Quote(path.Join(dir, f)))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path.Join(dir, f), err)
		}
		out[f] = []byte(s)
	}
	return out, nil
}

// pkiStaged reports whether f stages certificates (see installFiles).
func pkiStaged(f files) bool { return len(f.pki) > 0 }

// stagedPKIMoves is the shell that moves staged certificates into place.
func stagedPKIMoves(dir string) string {
	var cmds []string
	for _, f := range memberhost.PKIFiles {
		p := path.Join(dir, f)
		cmds = append(cmds, fmt.Sprintf("if [ -f %[1]s ]; then mv -f %[1]s %[2]s; fi", node.Quote(p+stagedSuffix), node.Quote(p)))
	}
	return strings.Join(cmds, "\n")
}

// stageNames renames the certificate files to their staged names.
func stageNames(pkiFiles map[string][]byte) map[string][]byte {
	out := make(map[string][]byte, len(pkiFiles))
	for n, b := range pkiFiles {
		out[n+stagedSuffix] = b
	}
	return out
}

// startOrRenew starts st's member; a member that runs but got new
// certificates while no member answered (expired certificates, say) is
// restarted instead, so that it serves and trusts only the new files.
func (c *Cluster) startOrRenew(ctx context.Context, st *nodeState) error {
	if st.running && st.renewed {
		c.progress("restarting member with renewed certificates (no member answered)", "node", st.n.Name)
		return st.svc.Restart(ctx)
	}
	return st.svc.Start(ctx)
}
