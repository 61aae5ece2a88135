// Package sshhost starts real OpenSSH servers to act as the "nodes" of SSH
// tests: each Host is one sshd with its own address, a host key and a user key
// generated for the run, and a base directory for what tests install on it.
//
// # Network
//
// Where the process may create network namespaces (root or CAP_NET_ADMIN and
// the ip(8) tool), every host gets its own namespace, joined to the root
// namespace by a veth pair that carries a /30 out of 10.213.0.0/16: the root
// side holds the first address, the host the second, and the host's default
// route points at the root side. IPv4 forwarding is switched on in the root
// namespace so that hosts reach each other through it. sshd listens on port
// 22 of the host address; everything it starts (an etcd member, say) lives in
// the namespace, sees only its own address, and can be cut off (Disconnect)
// or killed with the host (Down).
//
// Otherwise the hosts fall back to distinct loopback addresses 127.x.y.z
// (all of 127.0.0.0/8 is routed to lo on Linux, no alias needed), each with
// its own sshd on a free port. Hosts then share the network stack, so
// Disconnect is not available; Down still kills what the host started.
//
// Processes started through a host's sshd share the machine's file system,
// so each host has a BaseDir to use as the prefix of install and data dirs.
// Sessions get a HOME of the host's own: the startup files of the user
// running the tests (~/.bashrc) never run on a host.
//
// Start skips the test only if sshd cannot run at all: no sshd binary, and
// (when root) `apt-get install openssh-server` did not provide one.
//
// # Systemd hosts
//
// With WithSystemd, each host is instead a systemd-nspawn container in its
// namespace, booted with systemd as PID 1 from a cached Debian root file
// system, with sshd started by that systemd: units a test installs really
// run, restart and fire. See WithSystemd and systemd.go.
//
// # Timeouts
//
// Nothing here waits without a bound. Operations that take a context stop
// with it; when it has no deadline, or for the methods without one (Down,
// Disconnect, Reconnect, Close), the host's timeout applies (WithTimeout,
// default DefaultTimeout). Waiting for a host's lock, for ip(8), for sshd
// to answer, for processes to die after SIGKILL and for an SSH handshake or
// session all fail with an error naming what did not happen in time.
package sshhost

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Mode is how hosts are separated on the network.
type Mode string

const (
	// ModeNetns gives each host its own network namespace and 10.x address.
	ModeNetns Mode = "netns"
	// ModeLoopback gives each host its own 127.x.y.z address and sshd port.
	ModeLoopback Mode = "loopback"
)

// DefaultTimeout bounds an operation whose context has no deadline, and the
// methods that take no context.
const DefaultTimeout = 2 * time.Minute

// ErrNoSSHD means sshd is not available; Start skips the test on it.
var ErrNoSSHD = errors.New("sshhost: OpenSSH sshd is not available")

// ErrNotSupported is returned by operations the current Mode cannot do.
var ErrNotSupported = errors.New("sshhost: not supported in loopback mode")

// Option configures New and Start.
type Option func(*options)

type options struct {
	mode     Mode // "" = netns if possible, else loopback
	sshd     string
	logf     func(format string, args ...any)
	startTTL time.Duration
	timeout  time.Duration
	systemd  systemdOptions // systemd.go
}

// WithMode forces a mode. ModeNetns fails New when namespaces cannot be
// created instead of falling back. Without it, $SSHHOST_MODE ("netns" or
// "loopback") is honoured the same way, e.g. to run a suite in loopback mode.
func WithMode(m Mode) Option { return func(o *options) { o.mode = m } }

// WithSSHD sets the sshd binary (default: /usr/sbin/sshd, then $PATH).
// When it does not exist, New fails with ErrNoSSHD and installs nothing.
func WithSSHD(path string) Option { return func(o *options) { o.sshd = path } }

// WithLogf sets where progress and fallback reasons are reported.
// Start uses tb.Logf.
func WithLogf(f func(format string, args ...any)) Option { return func(o *options) { o.logf = f } }

// WithTimeout sets the bound of operations whose context has no deadline
// and of the methods without a context (default DefaultTimeout).
func WithTimeout(d time.Duration) Option {
	return func(o *options) {
		if d > 0 {
			o.timeout = d
		}
	}
}

// Host is one running sshd acting as a node.
type Host struct {
	// Name is "host0", "host1", ... in the order of creation.
	Name string
	// Addr is the IP address sshd listens on and everything on the host
	// should bind to.
	Addr string
	// Port is sshd's port (22 in ModeNetns).
	Port int
	// User to log in as: the current user, "root" when running as root.
	User string
	// HostKey is the sshd host public key in authorized_keys format
	// ("ssh-ed25519 AAAA..."), without a trailing newline.
	HostKey string
	// HostPublicKey is HostKey parsed.
	HostPublicKey ssh.PublicKey
	// PrivateKeyPEM is the user private key (OpenSSH PEM format, no passphrase).
	// All hosts of one New share the same user key.
	PrivateKeyPEM []byte
	// EncryptedPrivateKeyPEM is the same user key protected by Passphrase.
	EncryptedPrivateKeyPEM []byte
	// Passphrase decrypts EncryptedPrivateKeyPEM.
	Passphrase string
	// Signer is the user key, ready for ssh.PublicKeys.
	Signer ssh.Signer
	// BaseDir is a directory private to this host, to be used as the prefix
	// of install and data directories. Removed by Close.
	BaseDir string
	// Mode the host runs in.
	Mode Mode
	// Namespace is the network namespace name (ModeNetns only).
	Namespace string
	// Systemd is true for a host booted with systemd as PID 1 (WithSystemd).
	Systemd bool

	id       string // marker in the environment of everything the host starts
	dir      string // sshd's own files
	gateway  string // root-side address (ModeNetns)
	rootLink string // root-side veth (ModeNetns)
	opts     *options
	ct       *container // WithSystemd hosts (systemd.go)

	cmu    sync.Mutex               // guards client, extra, gen; never held while waiting on the network
	client *ssh.Client              // cached connection for Run
	extra  map[*ssh.Client]struct{} // connections of concurrent Runs beyond the cached one
	gen    int                      // counts dropClient: a connection dialed before one is not kept

	mu     sync.Mutex // serializes Up, Down, Disconnect, Reconnect, Close; taken with lock
	sshd   *exec.Cmd
	exited chan struct{}
	closed bool
}

// HostPort returns "Addr:Port".
func (h *Host) HostPort() string { return net.JoinHostPort(h.Addr, strconv.Itoa(h.Port)) }

// KnownHostsLine returns the host's line for a known_hosts file.
func (h *Host) KnownHostsLine() string {
	return knownhosts.Line([]string{knownhosts.Normalize(h.HostPort())}, h.HostPublicKey)
}

func (h *Host) timeout() time.Duration {
	if h.opts != nil && h.opts.timeout > 0 {
		return h.opts.timeout
	}
	return DefaultTimeout
}

// bound returns ctx, limited to the host's timeout when it has no deadline.
func (h *Host) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	d := h.timeout()
	return context.WithTimeoutCause(ctx, d, fmt.Errorf("gave up after %s (sshhost.WithTimeout)", d))
}

// lock takes h.mu, waiting at most as long as ctx allows: another operation
// on the host may hold it for as long as its own context allows.
func (h *Host) lock(ctx context.Context, op string) error {
	for !h.mu.TryLock() {
		select {
		case <-ctx.Done():
			return fmt.Errorf("sshhost: %s: %s: waiting for another operation on the host: %w", h.Name, op, context.Cause(ctx))
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

func (h *Host) errorf(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("sshhost: %s: %s: %w", h.Name, op, err)
}

// Close stops sshd, kills everything the host started, removes its namespace
// and veth pair (ModeNetns) and its directories. Safe to call twice. Bounded
// by the host's timeout; see CloseContext.
func (h *Host) Close() error {
	ctx, cancel := h.bound(context.Background())
	defer cancel()
	return h.CloseContext(ctx)
}

// CloseContext is Close bounded by ctx.
func (h *Host) CloseContext(ctx context.Context) error {
	ctx, cancel := h.bound(ctx)
	defer cancel()
	if err := h.lock(ctx, "close"); err != nil {
		return err
	}
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	h.dropClient()
	errs := []error{h.stopSSHD(ctx), h.killProcesses(ctx)}
	if h.Mode == ModeNetns && h.Namespace != "" {
		errs = append(errs, removeNetns(ctx, h.Namespace, h.rootLink))
	}
	errs = append(errs, os.RemoveAll(filepath.Dir(h.dir)))
	return h.errorf("close", errors.Join(errs...))
}

// Group is the set of hosts made by one New call.
type Group struct {
	Hosts []*Host
	Mode  Mode
	dir   string
	opts  *options
}

// Close closes every host and removes the group's directory, bounded by
// the hosts' timeout; see CloseContext.
func (g *Group) Close() error {
	timeout := DefaultTimeout
	if g.opts != nil {
		timeout = g.opts.timeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return g.CloseContext(ctx)
}

// CloseContext closes every host and removes the group's directory, bounded
// by ctx.
func (g *Group) CloseContext(ctx context.Context) error {
	var errs []error
	for _, h := range g.Hosts {
		errs = append(errs, h.CloseContext(ctx))
	}
	errs = append(errs, os.RemoveAll(g.dir))
	return errors.Join(errs...)
}

// Start starts n hosts for a test and closes them when it ends (the cleanup
// is registered before anything is started). It skips the test when sshd
// cannot run at all and fails it on any other error. Starting and closing
// are each bounded by DefaultTimeout (or WithTimeout).
func Start(tb testing.TB, n int, opts ...Option) []*Host {
	tb.Helper()
	var g *Group
	tb.Cleanup(func() {
		if g != nil {
			if err := g.Close(); err != nil {
				tb.Errorf("sshhost: close: %v", err)
			}
		}
	})
	opts = append([]Option{WithLogf(tb.Logf)}, opts...)
	o := options{timeout: DefaultTimeout}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	timeout := o.timeout
	ctx, cancel := context.WithTimeoutCause(context.Background(), timeout,
		fmt.Errorf("starting %d hosts took more than %s", n, timeout))
	defer cancel()
	var err error
	g, err = New(ctx, n, opts...)
	if errors.Is(err, ErrNoSSHD) {
		tb.Skipf("sshhost: skipping, sshd cannot run here: %v", err)
	}
	if errors.Is(err, ErrNoSystemd) && os.Getenv(RequireSystemdEnv) != "1" {
		tb.Skipf("sshhost: skipping, systemd hosts cannot run here: %v", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return g.Hosts
}

// New starts n hosts, bounded by ctx. The caller must Close the group.
func New(ctx context.Context, n int, opts ...Option) (g *Group, err error) {
	o := &options{logf: func(string, ...any) {}, startTTL: 30 * time.Second, timeout: DefaultTimeout}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	if n < 1 {
		return nil, fmt.Errorf("sshhost: New(%d): need at least one host", n)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, o.timeout, fmt.Errorf("gave up after %s (sshhost.WithTimeout)", o.timeout))
		defer cancel()
	}
	if o.systemd.enabled {
		// sshd comes with the containers' root file system.
		if err := systemdUnavailable(ctx, o); err != nil {
			return nil, err
		}
		if o.mode == ModeLoopback {
			return nil, fmt.Errorf("sshhost: WithSystemd needs ModeNetns, not %q", o.mode)
		}
		o.mode = ModeNetns
	} else if o.sshd, err = findSSHD(ctx, o); err != nil {
		return nil, err
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil && os.Geteuid() == 0 {
		return nil, fmt.Errorf("sshhost: sshd privilege separation dir: %w", err)
	}
	reapStale(ctx)

	mode := o.mode
	if mode == "" {
		mode = Mode(os.Getenv("SSHHOST_MODE"))
	}
	if mode != "" && mode != ModeNetns && mode != ModeLoopback {
		return nil, fmt.Errorf("sshhost: mode %q: want %q or %q", mode, ModeNetns, ModeLoopback)
	}
	if mode == "" || mode == ModeNetns {
		if reason := netnsUnavailable(ctx); reason != "" {
			if mode == ModeNetns {
				return nil, fmt.Errorf("sshhost: network namespaces unavailable: %s", reason)
			}
			o.logf("sshhost: network namespaces unavailable (%s); using loopback addresses", reason)
			mode = ModeLoopback
		} else {
			mode = ModeNetns
		}
	}

	dir, err := os.MkdirTemp("", fmt.Sprintf("sshhost-%d-", os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("sshhost: %w", err)
	}
	g = &Group{Mode: mode, dir: dir, opts: o}
	defer func() {
		if err != nil {
			// Cleaning up gets its own bound: ctx may be what failed.
			cctx, cancel := context.WithTimeout(context.Background(), o.timeout)
			defer cancel()
			_ = g.CloseContext(cctx)
			g = nil
		}
	}()

	userKey, err := newUserKey()
	if err != nil {
		return nil, err
	}
	login := "root"
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			return nil, fmt.Errorf("sshhost: current user: %w", err)
		}
		login = u.Username
	}

	for i := range n {
		h := &Host{
			Name:                   fmt.Sprintf("host%d", i),
			User:                   login,
			PrivateKeyPEM:          userKey.plain,
			EncryptedPrivateKeyPEM: userKey.encrypted,
			Passphrase:             userKey.passphrase,
			Signer:                 userKey.signer,
			Mode:                   mode,
			Systemd:                o.systemd.enabled,
			opts:                   o,
			id:                     fmt.Sprintf("%d-%s-%d", os.Getpid(), randHex(4), i),
		}
		h.dir = filepath.Join(dir, h.Name, "sshd")
		h.BaseDir = filepath.Join(dir, h.Name, "root")
		for _, d := range []string{h.dir, h.BaseDir} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return nil, fmt.Errorf("sshhost: %w", err)
			}
		}
		g.Hosts = append(g.Hosts, h)
		if err := h.setup(ctx, userKey); err != nil {
			return nil, fmt.Errorf("sshhost: %s: %w", h.Name, err)
		}
		if !h.Systemd {
			o.logf("sshhost: %s up at %s (%s, base dir %s)", h.Name, h.HostPort(), mode, h.BaseDir)
		}
	}
	if o.systemd.enabled {
		// Launched one after the other, they boot side by side.
		if err := g.waitBooted(ctx); err != nil {
			return nil, fmt.Errorf("sshhost: %w", err)
		}
	}
	return g, nil
}

func (h *Host) setup(ctx context.Context, uk *userKey) error {
	switch h.Mode {
	case ModeNetns:
		addr, gw, ns, link, err := createNetns(ctx)
		if err != nil {
			return err
		}
		h.Addr, h.gateway, h.Namespace, h.rootLink, h.Port = addr, gw, ns, link, 22
	case ModeLoopback:
		addr, port, err := loopbackAddr()
		if err != nil {
			return err
		}
		h.Addr, h.Port = addr, port
	default:
		return fmt.Errorf("unknown mode %q", h.Mode)
	}
	if err := h.writeSSHDFiles(uk); err != nil {
		return err
	}
	if err := h.lock(ctx, "start"); err != nil {
		return err
	}
	defer h.mu.Unlock()
	if h.Systemd {
		return h.launchContainer(ctx) // New waits for the boots together
	}
	return h.startSSHD(ctx)
}

type userKey struct {
	signer     ssh.Signer
	plain      []byte
	encrypted  []byte
	passphrase string
}

func newUserKey() (*userKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("sshhost: user key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "sshhost test user")
	if err != nil {
		return nil, err
	}
	pass := randHex(12)
	eblock, err := ssh.MarshalPrivateKeyWithPassphrase(priv, "sshhost test user", []byte(pass))
	if err != nil {
		return nil, err
	}
	return &userKey{signer: signer, plain: pem.EncodeToMemory(block), encrypted: pem.EncodeToMemory(eblock), passphrase: pass}, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
