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
//
// Start skips the test only if sshd cannot run at all: no sshd binary, and
// (when root) `apt-get install openssh-server` did not provide one.
package sshhost

import (
	"bytes"
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
	"strings"
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

// ErrNoSSHD means sshd is not available; Start skips the test on it.
var ErrNoSSHD = errors.New("sshhost: OpenSSH sshd is not available")

// ErrNotSupported is returned by operations the current Mode cannot do.
var ErrNotSupported = errors.New("sshhost: not supported in loopback mode")

// Option configures New and Start.
type Option func(*options)

type options struct {
	mode     Mode // "" = netns if possible, else loopback
	sshd     string
	install  bool
	logf     func(format string, args ...any)
	startTTL time.Duration
}

// WithMode forces a mode. ModeNetns fails New when namespaces cannot be
// created instead of falling back. Without it, $SSHHOST_MODE ("netns" or
// "loopback") is honoured the same way, e.g. to run a suite in loopback mode.
func WithMode(m Mode) Option { return func(o *options) { o.mode = m } }

// WithSSHD sets the sshd binary (default: /usr/sbin/sshd, then $PATH).
func WithSSHD(path string) Option { return func(o *options) { o.sshd = path } }

// WithoutInstall stops New from trying `apt-get install openssh-server` when
// sshd is missing.
func WithoutInstall() Option { return func(o *options) { o.install = false } }

// WithLogf sets where progress and fallback reasons are reported.
// Start uses tb.Logf.
func WithLogf(f func(format string, args ...any)) Option { return func(o *options) { o.logf = f } }

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

	id       string // marker in the environment of everything the host starts
	dir      string // sshd's own files
	gateway  string // root-side address (ModeNetns)
	rootLink string // root-side veth (ModeNetns)
	opts     *options

	cmu    sync.Mutex  // guards client
	client *ssh.Client // cached connection for Run

	mu     sync.Mutex
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

// ClientConfig returns an SSH client configuration that logs in with the user
// key and accepts only this host's key.
func (h *Host) ClientConfig() *ssh.ClientConfig {
	return &ssh.ClientConfig{
		User:            h.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(h.Signer)},
		HostKeyCallback: ssh.FixedHostKey(h.HostPublicKey),
		Timeout:         10 * time.Second,
	}
}

// Dial opens an SSH connection to the host.
func (h *Host) Dial(ctx context.Context) (*ssh.Client, error) {
	d := net.Dialer{Timeout: 10 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", h.HostPort())
	if err != nil {
		return nil, fmt.Errorf("sshhost: %s: %w", h.Name, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	} else {
		_ = conn.SetDeadline(time.Now().Add(15 * time.Second))
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, h.HostPort(), h.ClientConfig())
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("sshhost: %s: %w", h.Name, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// session opens a session on the cached connection, dialing (again) when
// there is none or it broke.
func (h *Host) session(ctx context.Context) (*ssh.Session, error) {
	h.cmu.Lock()
	defer h.cmu.Unlock()
	if h.client != nil {
		// NewSession waits for the server without a deadline; a host that
		// went away (Disconnect) would block it forever.
		type res struct {
			s   *ssh.Session
			err error
		}
		ch := make(chan res, 1)
		c := h.client
		go func() {
			s, err := c.NewSession()
			ch <- res{s, err}
		}()
		select {
		case r := <-ch:
			if r.err == nil {
				return r.s, nil
			}
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
		}
		c.Close()
		h.client = nil
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("sshhost: %s: %w", h.Name, err)
		}
	}
	c, err := h.Dial(ctx)
	if err != nil {
		return nil, err
	}
	s, err := c.NewSession()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("sshhost: %s: session: %w", h.Name, err)
	}
	h.client = c
	return s, nil
}

func (h *Host) dropClient() {
	h.cmu.Lock()
	defer h.cmu.Unlock()
	if h.client != nil {
		h.client.Close()
		h.client = nil
	}
}

// Run runs cmd on the host over SSH and returns its combined output. The
// SSH connection is kept for the next Run.
func (h *Host) Run(ctx context.Context, cmd string) (string, error) {
	s, err := h.session(ctx)
	if err != nil {
		return "", err
	}
	defer s.Close()
	// One writer for both streams: bytes.Buffer is not safe for the two
	// concurrent copies (its ReadFrom would drop the other's output).
	var out lockedBuffer
	s.Stdout, s.Stderr = &out, &out
	done := make(chan error, 1)
	go func() { done <- s.Run(cmd) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		h.dropClient()
		err = ctx.Err()
	}
	if err != nil {
		return out.String(), fmt.Errorf("sshhost: %s: %q: %w: %s", h.Name, cmd, err, strings.TrimSpace(out.String()))
	}
	return out.String(), nil
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Exec runs a command directly on the host side without SSH: inside the
// host's network namespace in ModeNetns, as a plain child otherwise.
func (h *Host) Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	var cmd *exec.Cmd
	if h.Mode == ModeNetns {
		cmd = exec.CommandContext(ctx, ipPath(), append([]string{"netns", "exec", h.Namespace, name}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, name, args...)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("sshhost: %s: %s %v: %w: %s", h.Name, name, args, err, bytes.TrimSpace(out))
	}
	return out, nil
}

// Down takes the host down as if it lost power: its link goes down
// (ModeNetns; connections to it then fail with "no route to host" or time
// out), and sshd and every process started through it are killed.
// Files stay. Up brings it back with a fresh sshd; nothing else is restarted.
func (h *Host) Down() error {
	h.dropClient()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.Mode == ModeNetns {
		if err := h.setLink(false); err != nil {
			return err
		}
	}
	h.stopSSHDLocked()
	h.killProcesses()
	return nil
}

// Up brings a host taken Down back: link up and sshd running and reachable.
func (h *Host) Up(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errors.New("sshhost: host is closed")
	}
	if h.Mode == ModeNetns {
		if err := h.setLink(true); err != nil {
			return err
		}
	}
	if h.sshd != nil {
		return nil
	}
	return h.startSSHDLocked(ctx)
}

// Disconnect cuts the host off the network while everything on it keeps
// running (a partition). ModeNetns only.
func (h *Host) Disconnect() error {
	if h.Mode != ModeNetns {
		return ErrNotSupported
	}
	return h.setLink(false)
}

// Reconnect undoes Disconnect.
func (h *Host) Reconnect() error {
	if h.Mode != ModeNetns {
		return ErrNotSupported
	}
	return h.setLink(true)
}

// setLink takes the host's side of the veth down or up. Down, packets to
// the host are dropped after failed neighbour resolution, as for a machine
// that lost power on the same segment: connects fail with "no route to
// host" or time out. (Taking the root side down instead would remove the
// route, and traffic would leak to the root namespace's default route.)
func (h *Host) setLink(up bool) error {
	if !up {
		return ip("-n", h.Namespace, "link", "set", "eth0", "down")
	}
	if err := ip("-n", h.Namespace, "link", "set", "eth0", "up"); err != nil {
		return err
	}
	// The default route went away with the link.
	return ip("-n", h.Namespace, "route", "replace", "default", "via", h.gateway)
}

// Close stops sshd, kills everything the host started, removes its namespace
// and veth pair (ModeNetns) and its directories. Safe to call twice.
func (h *Host) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil
	}
	h.closed = true
	h.dropClient()
	h.stopSSHDLocked()
	h.killProcesses()
	var errs []error
	if h.Mode == ModeNetns {
		errs = append(errs, removeNetns(h.Namespace, h.rootLink))
	}
	errs = append(errs, os.RemoveAll(filepath.Dir(h.dir)))
	return errors.Join(errs...)
}

// Group is the set of hosts made by one New call.
type Group struct {
	Hosts []*Host
	Mode  Mode
	dir   string
}

// Close closes every host and removes the group's directory.
func (g *Group) Close() error {
	var errs []error
	for _, h := range g.Hosts {
		errs = append(errs, h.Close())
	}
	errs = append(errs, os.RemoveAll(g.dir))
	return errors.Join(errs...)
}

// Start starts n hosts for a test and closes them when it ends (the cleanup
// is registered before anything is started). It skips the test when sshd
// cannot run at all and fails it on any other error.
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
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts = append([]Option{WithLogf(tb.Logf)}, opts...)
	var err error
	g, err = New(ctx, n, opts...)
	if errors.Is(err, ErrNoSSHD) {
		tb.Skipf("sshhost: skipping, sshd cannot run here: %v", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return g.Hosts
}

// New starts n hosts. The caller must Close the group.
func New(ctx context.Context, n int, opts ...Option) (g *Group, err error) {
	o := &options{install: true, logf: func(string, ...any) {}, startTTL: 15 * time.Second}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	if n < 1 {
		return nil, fmt.Errorf("sshhost: New(%d): need at least one host", n)
	}
	if o.sshd, err = findSSHD(ctx, o); err != nil {
		return nil, err
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil && os.Geteuid() == 0 {
		return nil, fmt.Errorf("sshhost: sshd privilege separation dir: %w", err)
	}
	reapStale()

	mode := o.mode
	if mode == "" {
		mode = Mode(os.Getenv("SSHHOST_MODE"))
	}
	if mode != "" && mode != ModeNetns && mode != ModeLoopback {
		return nil, fmt.Errorf("sshhost: mode %q: want %q or %q", mode, ModeNetns, ModeLoopback)
	}
	if mode == "" || mode == ModeNetns {
		if reason := netnsUnavailable(); reason != "" {
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
	g = &Group{Mode: mode, dir: dir}
	defer func() {
		if err != nil {
			_ = g.Close()
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
		o.logf("sshhost: %s up at %s (%s, base dir %s)", h.Name, h.HostPort(), mode, h.BaseDir)
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
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.startSSHDLocked(ctx)
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
