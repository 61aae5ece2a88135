package memberhost

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/etcdconf"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/membership"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/pki"
)

// Errors; returned errors wrap one of them.
var (
	// ErrInvalidSpec: the spec is wrong; nothing was touched.
	ErrInvalidSpec = errors.New("invalid member node configuration")
	// ErrDataDirInUse: the data dir holds a member from an earlier start.
	// A member that is added must start from an empty data dir: with old
	// data etcd restarts the old member (its old ID, which the cluster no
	// longer knows or knows under another name), ignoring initial-cluster.
	ErrDataDirInUse = errors.New("data dir holds an earlier member")
)

// Spec is one member on one machine.
type Spec struct {
	// Name is the member name (etcd's --name).
	Name string
	// SSH reaches the machine.
	SSH node.SSHConfig
	// PeerURLs and ClientURLs are advertised; the member listens on the
	// same addresses (0.0.0.0 for a URL with a DNS name) and ports.
	PeerURLs, ClientURLs []string
	// InstallDir and DataDir default to DefaultInstallDir and DefaultDataDir.
	InstallDir, DataDir string
	// LocalBinary is a terraform-provider-etcd binary to upload; it runs as
	// "<bin> server --config-file F". Ignored when RemoteBinary is set.
	LocalBinary string
	// RemoteBinary is an etcd binary already on the machine (e.g.
	// /usr/bin/etcd); it runs as "<bin> --config-file F".
	RemoteBinary string
	// ServiceManager is node.ServiceAuto when empty.
	ServiceManager node.ServiceManager
	// TLS, when set, secures the member's client and peer ports with client
	// certificate authentication.
	TLS *TLS
	// Settings are extra etcd config-file keys (etcdconf.SettingKeys), e.g.
	// the cluster's heartbeat-interval and election-timeout.
	Settings map[string]string
	// WipeData lets Start delete a data dir that holds an earlier member
	// instead of failing with ErrDataDirInUse.
	WipeData bool
}

// TLS holds the member's certificates: either CA (with key) to issue them,
// or ready-made ones signed by CACertPEM.
type TLS struct {
	CACertPEM []byte
	// CAKeyPEM, when set, issues the server and peer certificates (with the
	// SANs of the member's URLs plus ExtraSANs) instead of the PEMs below.
	CAKeyPEM []byte
	// ServerCertPEM/ServerKeyPEM secure the client port; PeerCertPEM and
	// PeerKeyPEM the peer port (the server pair when empty).
	ServerCertPEM, ServerKeyPEM []byte
	PeerCertPEM, PeerKeyPEM     []byte
	// ExtraSANs are added to issued certificates: other names or addresses
	// the member is reached at or connects to its peers from (etcd checks a
	// peer's source address against its certificate).
	ExtraSANs []string
}

func (s Spec) withDefaults() Spec {
	if s.InstallDir == "" {
		s.InstallDir = DefaultInstallDir
	}
	if s.DataDir == "" {
		s.DataDir = DefaultDataDir
	}
	if s.ServiceManager == "" {
		s.ServiceManager = node.ServiceAuto
	}
	return s
}

// ServiceName is the member's service (systemd unit) name.
func (s Spec) ServiceName() string { return "etcd-member-" + s.Name }

// Layout is where the member's files are on the machine.
func (s Spec) Layout() Layout { return NewLayout(s.InstallDir, s.DataDir, s.RemoteBinary) }

// Validate checks everything that can be checked without the machine: names,
// URLs, directories, the binary, settings and certificates. All problems are
// reported, joined; each wraps ErrInvalidSpec.
func (s Spec) Validate() error {
	s = s.withDefaults()
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidSpec}, args...)...))
	}
	if !etcdconf.MemberNameRE.MatchString(s.Name) {
		bad("name %q: "+etcdconf.NameRule, s.Name)
	}
	if err := s.SSH.Validate(); err != nil {
		bad("ssh: %v", err)
	}
	if err := membership.ValidatePeerURLs(s.PeerURLs); err != nil {
		bad("peer URLs: %v", err)
	}
	if len(s.ClientURLs) == 0 {
		bad("client URLs: at least one is needed")
	}
	for _, u := range s.ClientURLs {
		if err := membership.ValidatePeerURL(u); err != nil {
			bad("client URL: %v", strings.Replace(err.Error(), "peer URL", "client URL", 1))
		}
	}
	for _, d := range []struct{ what, dir string }{{"install_dir", s.InstallDir}, {"data_dir", s.DataDir}} {
		if !node.DeepPath(d.dir) {
			bad("%s %q: use an absolute path with at least two components, e.g. /var/lib/etcd", d.what, d.dir)
		}
	}
	if s.RemoteBinary != "" {
		if !path.IsAbs(s.RemoteBinary) {
			bad("remote binary %q must be an absolute path", s.RemoteBinary)
		}
	} else if s.LocalBinary == "" {
		bad("no binary: set a local binary to upload or a remote one")
	} else if st, err := os.Stat(s.LocalBinary); err != nil || !st.Mode().IsRegular() {
		bad("binary %q: not a readable file", s.LocalBinary)
	}
	switch s.ServiceManager {
	case node.ServiceAuto, node.ServiceSystemd, node.ServiceProcess:
	default:
		bad("service manager %q: use auto, systemd or process", s.ServiceManager)
	}
	if err := etcdconf.ValidateSettings(s.Settings); err != nil {
		bad("settings: %v", err)
	}
	https := false
	for _, u := range append(append([]string{}, s.PeerURLs...), s.ClientURLs...) {
		if strings.HasPrefix(u, "https://") {
			https = true
		} else if s.TLS != nil {
			bad("%q: with TLS configured every URL must use https", u)
		}
	}
	if https && s.TLS == nil {
		bad("https URLs need TLS certificates")
	}
	if s.TLS != nil {
		if _, err := s.certificates(time.Now()); err != nil {
			bad("tls: %v", err)
		}
	}
	return errors.Join(errs...)
}

// certificates returns the member's server and peer key pairs, issued or
// checked (chain, key usages, SANs) against the CA.
func (s Spec) certificates(now time.Time) (*pki.MemberCerts, error) {
	t := s.TLS
	caCert, err := pki.ParseCertificatePEM(t.CACertPEM)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	peerHosts, clientHosts := urlHosts(s.PeerURLs), urlHosts(s.ClientURLs)
	if len(t.CAKeyPEM) > 0 {
		ca, err := pki.LoadCA(t.CACertPEM, t.CAKeyPEM)
		if err != nil {
			return nil, fmt.Errorf("CA certificate and key: %w", err)
		}
		hosts := append(append(append([]string{}, peerHosts...), clientHosts...), t.ExtraSANs...)
		return ca.IssueMember(pki.MemberRequest{Name: s.Name, Hosts: hosts})
	}
	ca := &pki.CA{KeyPair: pki.KeyPair{Cert: caCert}}
	load := func(what string, certPEM, keyPEM []byte) (*pki.KeyPair, error) {
		if len(certPEM) == 0 || len(keyPEM) == 0 {
			return nil, fmt.Errorf("%s certificate and key are required (or give the CA key to issue them)", what)
		}
		return loadKeyPair(what, certPEM, keyPEM)
	}
	server, err := load("server", t.ServerCertPEM, t.ServerKeyPEM)
	if err != nil {
		return nil, err
	}
	peer := server
	if len(t.PeerCertPEM) > 0 || len(t.PeerKeyPEM) > 0 {
		if peer, err = load("peer", t.PeerCertPEM, t.PeerKeyPEM); err != nil {
			return nil, err
		}
	}
	certs := &pki.MemberCerts{Server: server, Peer: peer}
	if err := CheckCerts(ca, certs, clientHosts, peerHosts, now); err != nil {
		return nil, err
	}
	return certs, nil
}

func urlHosts(urls []string) []string {
	var out []string
	for _, s := range urls {
		if u, err := url.Parse(s); err == nil && u.Hostname() != "" {
			out = append(out, u.Hostname())
		}
	}
	return out
}

// listenURLs binds advertised URLs: the same address when it is an IP
// (or localhost), all addresses for a DNS name.
func listenURLs(urls []string) []string {
	out := make([]string, 0, len(urls))
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			continue
		}
		h := u.Hostname()
		if h != "localhost" && net.ParseIP(h) == nil {
			u.Host = net.JoinHostPort("0.0.0.0", u.Port())
		}
		out = append(out, u.String())
	}
	return out
}

// Host is a connection to the member's machine.
type Host struct {
	spec Spec
	c    *node.Client
	svc  node.Service
}

// Connect validates spec and dials the machine. Errors from dialing are
// *node.DialError.
func Connect(ctx context.Context, spec Spec) (*Host, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	return connect(ctx, spec)
}

// ConnectForTeardown dials the machine to stop or uninstall the member's
// service. Only the name and the SSH settings need to be valid: the binary,
// certificates and settings of a member that is going away do not matter.
func ConnectForTeardown(ctx context.Context, spec Spec) (*Host, error) {
	if !etcdconf.MemberNameRE.MatchString(spec.Name) {
		return nil, fmt.Errorf("%w: name %q", ErrInvalidSpec, spec.Name)
	}
	if err := spec.SSH.Validate(); err != nil {
		return nil, fmt.Errorf("%w: ssh: %v", ErrInvalidSpec, err)
	}
	if spec.RemoteBinary == "" {
		spec.RemoteBinary = spec.Layout().Binary
	}
	return connect(ctx, spec)
}

func connect(ctx context.Context, spec Spec) (*Host, error) {
	spec = spec.withDefaults()
	c, err := node.Dial(ctx, spec.SSH)
	if err != nil {
		return nil, err
	}
	h := &Host{spec: spec, c: c}
	h.svc, err = node.NewService(ctx, c, spec.ServiceManager, h.serviceSpec())
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", c.Target(), err)
	}
	return h, nil
}

// Close closes the SSH connection.
func (h *Host) Close() error { return h.c.Close() }

// Target names the machine ("user@host:port").
func (h *Host) Target() string { return h.c.Target() }

// Manager is the resolved service manager.
func (h *Host) Manager() node.ServiceManager { return h.svc.Manager() }

func (h *Host) serviceSpec() node.ServiceSpec {
	return h.spec.Layout().Service(h.spec.ServiceName(), "etcd member "+h.spec.Name)
}

// CheckDataDir fails with ErrDataDirInUse when the data dir holds a member
// and WipeData is not set. Call it before adding the member to the cluster,
// so that a refusal changes nothing.
func (h *Host) CheckDataDir(ctx context.Context) error {
	st, err := node.InspectDataDir(ctx, h.c, h.spec.DataDir)
	if err != nil {
		return fmt.Errorf("%s: inspect data dir: %w", h.c.Target(), err)
	}
	if st.HasMember && !h.spec.WipeData {
		return fmt.Errorf("%s: %w: %s has a member/ directory from an earlier etcd start; a joining member must start "+
			"from an empty data dir, or etcd restarts the old member with its old ID (\"member ID mismatch\", "+
			"\"failed to find member\"). Move it away or delete it on the node, or set wipe_data = true to let "+
			"the provider delete it", h.c.Target(), ErrDataDirInUse, h.spec.DataDir)
	}
	return nil
}

// Upload puts the binary (unless remote) and certificates on the machine and
// checks that the binary can run there. It changes nothing the cluster sees.
// changed reports whether a file the running member uses was rewritten.
func (h *Host) Upload(ctx context.Context) (changed bool, err error) {
	s := h.spec
	if s.RemoteBinary == "" {
		if _, ok := node.BinaryPlatform(s.LocalBinary); ok {
			got, err := node.DetectPlatform(ctx, h.c)
			if err != nil {
				return false, fmt.Errorf("%s: %w", h.c.Target(), err)
			}
			if err := node.CheckBinary(s.LocalBinary, got); err != nil {
				return false, fmt.Errorf("%s: %w: %w", h.c.Target(), ErrInvalidSpec, err)
			}
		}
		c, err := h.c.UploadFile(ctx, s.LocalBinary, s.Layout().Binary, 0o755)
		if err != nil {
			return false, fmt.Errorf("upload binary: %w", err)
		}
		changed = changed || c
	} else if _, err := h.c.Run(ctx, "test -x "+node.Quote(s.RemoteBinary)); err != nil {
		return false, fmt.Errorf("%s: %w: remote binary %s is not an executable file on the machine", h.c.Target(), ErrInvalidSpec, s.RemoteBinary)
	}
	if s.TLS == nil {
		return changed, nil
	}
	certs, err := s.certificates(time.Now())
	if err != nil {
		return false, fmt.Errorf("%w: tls: %v", ErrInvalidSpec, err)
	}
	// Issued certificates are new on every call; keep the ones on the
	// machine when they are still valid for this member.
	files := CertFiles(s.TLS.CACertPEM, certs)
	if len(s.TLS.CAKeyPEM) > 0 && h.certsOnMachineValid(ctx) {
		files = map[string][]byte{CAFile: s.TLS.CACertPEM}
	}
	for name, data := range files {
		c, err := h.c.Upload(ctx, path.Join(s.Layout().PKIDir, name), data, 0o600)
		if err != nil {
			return false, fmt.Errorf("upload %s: %w", name, err)
		}
		changed = changed || c
	}
	return changed, nil
}

// certsOnMachineValid tells whether issued certificates on the machine chain
// to the CA, cover the member's URLs and stay valid for RenewBefore.
func (h *Host) certsOnMachineValid(ctx context.Context) bool {
	caCert, err := pki.ParseCertificatePEM(h.spec.TLS.CACertPEM)
	if err != nil {
		return false
	}
	files := map[string][]byte{}
	for _, name := range []string{ServerCertFile, ServerKeyFile, PeerCertFile, PeerKeyFile} {
		out, err := h.c.Run(ctx, "cat "+node.Quote(path.Join(h.spec.Layout().PKIDir, name))+" 2>/dev/null")
		if err != nil {
			return false
		}
		files[name] = []byte(out)
	}
	ca := &pki.CA{KeyPair: pki.KeyPair{Cert: caCert}}
	return CertsOnMachineValid(ca, files, urlHosts(h.spec.ClientURLs), urlHosts(h.spec.PeerURLs), time.Now())
}

// Config renders the member's config file for joining with initial.
func (h *Host) Config(initial []etcdconf.Member) ([]byte, error) {
	s := h.spec
	return s.Layout().Render(etcdconf.Config{
		Name:                s.Name,
		ListenPeerURLs:      listenURLs(s.PeerURLs),
		AdvertisePeerURLs:   s.PeerURLs,
		ListenClientURLs:    listenURLs(s.ClientURLs),
		AdvertiseClientURLs: s.ClientURLs,
		InitialCluster:      initial,
		InitialClusterState: etcdconf.StateExisting,
		// Not used when joining (the member gets its ID from the cluster),
		// but etcd requires one.
		InitialClusterToken: "etcd-member-" + s.Name,
		Settings:            s.Settings,
	}, s.TLS != nil)
}

// Start writes the config file for joining with initial (from
// membership.List.InitialCluster), wipes the data dir if it holds a member
// and WipeData is set (otherwise fails with ErrDataDirInUse), installs the
// service and starts it. It does not wait for the member to be ready.
func (h *Host) Start(ctx context.Context, initial []etcdconf.Member) error {
	cfg, err := h.Config(initial)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidSpec, err)
	}
	st, err := node.InspectDataDir(ctx, h.c, h.spec.DataDir)
	if err != nil {
		return fmt.Errorf("%s: inspect data dir: %w", h.c.Target(), err)
	}
	if st.HasMember {
		if err := h.CheckDataDir(ctx); err != nil {
			return err
		}
		if err := node.RemoveDir(ctx, h.c, h.spec.DataDir); err != nil {
			return fmt.Errorf("%s: wipe data dir: %w", h.c.Target(), err)
		}
	}
	if _, err := h.c.Upload(ctx, h.spec.Layout().Config, cfg, 0o644); err != nil {
		return fmt.Errorf("upload config: %w", err)
	}
	if _, err := h.svc.Install(ctx); err != nil {
		return err
	}
	return h.svc.Start(ctx)
}

// Reconfigure rewrites the config file and service of a member that already
// joined (its data dir has its member, so initial-cluster is ignored by etcd)
// and restarts it when anything changed or restart is set (e.g. Upload
// replaced the binary or certificates). It reports whether it restarted.
func (h *Host) Reconfigure(ctx context.Context, initial []etcdconf.Member, restart bool) (bool, error) {
	cfg, err := h.Config(initial)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrInvalidSpec, err)
	}
	changed, err := h.c.Upload(ctx, h.spec.Layout().Config, cfg, 0o644)
	if err != nil {
		return false, fmt.Errorf("upload config: %w", err)
	}
	svcChanged, err := h.svc.Install(ctx)
	if err != nil {
		return false, err
	}
	st, err := h.svc.Status(ctx)
	if err != nil {
		return false, err
	}
	if !st.Running {
		return true, h.svc.Start(ctx)
	}
	if changed || svcChanged || restart {
		return true, h.svc.Restart(ctx)
	}
	return false, nil
}

// Status reports the member's service.
func (h *Host) Status(ctx context.Context) (node.ServiceStatus, error) { return h.svc.Status(ctx) }

// Logs returns the last n lines of the member's log.
func (h *Host) Logs(ctx context.Context, n int) string {
	out, err := h.svc.Logs(ctx, n)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return out
}

// Stop stops the member's service.
func (h *Host) Stop(ctx context.Context) error { return h.svc.Stop(ctx) }

// Uninstall stops the service and removes what Install wrote (unit or
// supervisor script). The binary, config, certificates and data dir stay.
func (h *Host) Uninstall(ctx context.Context) error { return h.svc.Remove(ctx) }
