// Package node reaches the machines an etcd cluster runs on: it dials them
// over SSH (keys, agent, verified host keys, bastion), uploads files
// atomically and idempotently, and installs, starts and stops the member's
// service under systemd or as a supervised background process.
//
// It knows nothing about Terraform; errors are sentinels wrapped in types
// that name the host so that a resource can turn them into diagnostics.
package node

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Causes of a failed SSH connection. A *DialError wraps exactly one.
var (
	ErrConnectionRefused = errors.New("connection refused")
	ErrAuthFailed        = errors.New("authentication failed")
	ErrHostKeyMismatch   = errors.New("host key mismatch")
	ErrHostKeyUnknown    = errors.New("no host key given for this host")
	ErrTimeout           = errors.New("timed out")
	ErrUnreachable       = errors.New("host unreachable")
	ErrConnection        = errors.New("connection failed")
	// ErrInvalidSSHConfig is returned before any connection is attempted.
	ErrInvalidSSHConfig = errors.New("invalid ssh configuration")
)

// DefaultDialTimeout bounds TCP connect plus SSH handshake when
// SSHConfig.Timeout is zero.
const DefaultDialTimeout = 30 * time.Second

// SSHConfig says how to reach one node.
type SSHConfig struct {
	// Host is the address or DNS name to dial. Required.
	Host string
	// Port defaults to 22.
	Port int
	// User defaults to "root".
	User string
	// PrivateKey is a PEM private key (OpenSSH, PKCS#1/8 or SEC 1).
	PrivateKey string
	// Passphrase decrypts PrivateKey when it is protected.
	Passphrase string
	// Agent uses the keys of the ssh-agent at AgentSocket (default
	// $SSH_AUTH_SOCK). Can be combined with PrivateKey.
	Agent       bool
	AgentSocket string
	// HostKey holds the accepted host keys, one per line, each either in
	// authorized_keys format ("ssh-ed25519 AAAA...", valid for any host) or
	// in known_hosts format ("10.0.0.1 ssh-ed25519 AAAA...", "[h]:2222 ...",
	// hashed names and @cert-authority lines work). Required unless
	// InsecureIgnoreHostKey.
	HostKey string
	// InsecureIgnoreHostKey accepts any host key.
	InsecureIgnoreHostKey bool
	// Bastion, when set, is dialed first and the node is reached through it
	// (like ssh -J).
	Bastion *SSHConfig
	// Timeout bounds TCP connect plus handshake; DefaultDialTimeout if zero.
	Timeout time.Duration
}

func (c SSHConfig) port() int {
	if c.Port == 0 {
		return 22
	}
	return c.Port
}

func (c SSHConfig) user() string {
	if c.User == "" {
		return "root"
	}
	return c.User
}

// SplitAddress splits a machine's address, which may carry an SSH port
// ("10.0.0.1", "10.0.0.1:2222", "[fd00::1]:2222", "fd00::1"), into the host
// and the port; port is 0 when addr has none.
func SplitAddress(addr string) (host string, port int) {
	if h, p, err := net.SplitHostPort(addr); err == nil {
		if v, err := strconv.Atoi(p); err == nil {
			return h, v
		}
	}
	return strings.Trim(addr, "[]"), 0
}

// At returns c dialing addr (see SplitAddress): a port in addr overrides
// c.Port.
func (c SSHConfig) At(addr string) SSHConfig {
	h, p := SplitAddress(addr)
	c.Host = h
	if p != 0 {
		c.Port = p
	}
	return c
}

// Addr is "host:port".
func (c SSHConfig) Addr() string { return net.JoinHostPort(c.Host, strconv.Itoa(c.port())) }

// DialError is a failed connection to a node.
type DialError struct {
	// Target is "user@host:port".
	Target string
	// Via is the bastion's "user@host:port" when the node was dialed through
	// one, or the bastion itself failed.
	Via string
	// Cause is one of the Err* sentinels.
	Cause error
	// Err is the underlying error.
	Err error
}

func (e *DialError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ssh %s", e.Target)
	if e.Via != "" {
		fmt.Fprintf(&b, " (via bastion %s)", e.Via)
	}
	fmt.Fprintf(&b, ": %v", e.Cause)
	if e.Err != nil && e.Err.Error() != e.Cause.Error() {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap exposes both the cause (errors.Is(err, ErrAuthFailed)) and the
// underlying error.
func (e *DialError) Unwrap() []error { return []error{e.Cause, e.Err} }

// hostKeyError is what our host key callback returns.
type hostKeyError struct {
	cause error
	msg   string
}

func (e *hostKeyError) Error() string { return e.msg }
func (e *hostKeyError) Unwrap() error { return e.cause }

func classify(err error) error {
	var hk *hostKeyError
	var oce *ssh.OpenChannelError
	var ne net.Error
	switch {
	case errors.As(err, &hk):
		return hk.cause
	case errors.Is(err, syscall.ECONNREFUSED):
		return ErrConnectionRefused
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return ErrUnreachable
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, ErrTimeout):
		return ErrTimeout
	case errors.As(err, &ne) && ne.Timeout():
		return ErrTimeout
	case errors.As(err, &oce):
		// A bastion could not open the tunnel; its message carries the
		// bastion's connect error.
		m := strings.ToLower(oce.Message)
		switch {
		case strings.Contains(m, "refused"):
			return ErrConnectionRefused
		case strings.Contains(m, "timed out"), strings.Contains(m, "timeout"):
			return ErrTimeout
		case strings.Contains(m, "unreachable"), strings.Contains(m, "no route"):
			return ErrUnreachable
		}
		return ErrConnection
	case strings.Contains(err.Error(), "unable to authenticate"), strings.Contains(err.Error(), "no supported methods remain"):
		return ErrAuthFailed
	}
	return ErrConnection
}

// Client is an SSH connection to one node.
type Client struct {
	cfg     SSHConfig
	target  string
	conn    *ssh.Client
	bastion *Client
	closers []func() error
	once    sync.Once
}

// Target returns "user@host:port".
func (c *Client) Target() string { return c.target }

// Host returns the configured host.
func (c *Client) Host() string { return c.cfg.Host }

// Close closes the connection (and the bastion connection).
func (c *Client) Close() error {
	var errs []error
	c.once.Do(func() {
		if c.conn != nil {
			errs = append(errs, c.conn.Close())
		}
		for _, f := range c.closers {
			errs = append(errs, f())
		}
		if c.bastion != nil {
			errs = append(errs, c.bastion.Close())
		}
	})
	for _, e := range errs {
		if e != nil && !errors.Is(e, net.ErrClosed) {
			return e
		}
	}
	return nil
}

// Validate checks the configuration without connecting.
func (c SSHConfig) Validate() error {
	var errs []string
	if strings.TrimSpace(c.Host) == "" {
		errs = append(errs, "host is required")
	}
	if c.Port < 0 || c.Port > 65535 {
		errs = append(errs, fmt.Sprintf("port %d is out of range", c.Port))
	}
	if c.PrivateKey == "" && !c.Agent {
		errs = append(errs, "no authentication: set private_key or agent = true")
	}
	if c.PrivateKey != "" {
		if _, err := parsePrivateKey(c.PrivateKey, c.Passphrase); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if c.HostKey == "" && !c.InsecureIgnoreHostKey {
		errs = append(errs, "host_key is required (or set insecure_ignore_host_key = true)")
	}
	if c.HostKey != "" {
		if _, err := newHostKeyChecker(c.HostKey); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w for %s: %s", ErrInvalidSSHConfig, c.Addr(), strings.Join(errs, "; "))
	}
	if c.Bastion != nil {
		if err := c.Bastion.Validate(); err != nil {
			return fmt.Errorf("bastion: %w", err)
		}
	}
	return nil
}

func parsePrivateKey(pemKey, passphrase string) (ssh.Signer, error) {
	var s ssh.Signer
	var err error
	if passphrase != "" {
		s, err = ssh.ParsePrivateKeyWithPassphrase([]byte(pemKey), []byte(passphrase))
	} else {
		s, err = ssh.ParsePrivateKey([]byte(pemKey))
	}
	var missing *ssh.PassphraseMissingError
	switch {
	case err == nil:
		return s, nil
	case errors.As(err, &missing):
		return nil, errors.New("private_key is protected by a passphrase: set passphrase")
	case errors.Is(err, x509.IncorrectPasswordError):
		return nil, errors.New("private_key: wrong passphrase")
	case passphrase != "" && strings.Contains(err.Error(), "not encrypted"):
		// A passphrase for a plain key is harmless.
		return ssh.ParsePrivateKey([]byte(pemKey))
	}
	return nil, fmt.Errorf("private_key: %v", err)
}

// Dial connects to the node, through the bastion when one is configured.
// Errors are *DialError (or wrap ErrInvalidSSHConfig).
func Dial(ctx context.Context, cfg SSHConfig) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Client{cfg: cfg, target: cfg.user() + "@" + cfg.Addr()}
	fail := func(via string, err error) (*Client, error) {
		_ = c.Close()
		return nil, &DialError{Target: c.target, Via: via, Cause: classify(err), Err: err}
	}
	failAs := func(via string, cause, err error) (*Client, error) {
		_ = c.Close()
		return nil, &DialError{Target: c.target, Via: via, Cause: cause, Err: err}
	}

	var auth []ssh.AuthMethod
	if cfg.PrivateKey != "" {
		s, err := parsePrivateKey(cfg.PrivateKey, cfg.Passphrase)
		if err != nil {
			return nil, err
		}
		auth = append(auth, ssh.PublicKeys(s))
	}
	if cfg.Agent {
		sock := cfg.AgentSocket
		if sock == "" {
			sock = os.Getenv("SSH_AUTH_SOCK")
		}
		if sock == "" {
			return nil, fmt.Errorf("%w for %s: agent = true but SSH_AUTH_SOCK is not set", ErrInvalidSSHConfig, cfg.Addr())
		}
		var d net.Dialer
		ac, err := d.DialContext(ctx, "unix", sock)
		if err != nil {
			return fail("", fmt.Errorf("ssh-agent at %s: %w", sock, err))
		}
		c.closers = append(c.closers, ac.Close)
		auth = append(auth, ssh.PublicKeysCallback(agent.NewClient(ac).Signers))
	}
	hkcb := ssh.InsecureIgnoreHostKey()
	if !cfg.InsecureIgnoreHostKey {
		chk, err := newHostKeyChecker(cfg.HostKey)
		if err != nil {
			return nil, err
		}
		hkcb = chk.callback
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultDialTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var conn net.Conn
	via := ""
	if cfg.Bastion != nil {
		b, err := Dial(ctx, *cfg.Bastion)
		if err != nil {
			var de *DialError
			if errors.As(err, &de) {
				return nil, &DialError{Target: c.target, Via: de.Target, Cause: de.Cause, Err: fmt.Errorf("bastion: %w", de.Err)}
			}
			return nil, fmt.Errorf("bastion: %w", err)
		}
		c.bastion = b
		via = b.target
		conn, err = b.conn.DialContext(ctx, "tcp", cfg.Addr())
		if err != nil {
			return fail(via, err)
		}
	} else {
		var d net.Dialer
		var err error
		conn, err = d.DialContext(ctx, "tcp", cfg.Addr())
		if err != nil {
			return fail("", err)
		}
	}

	type result struct {
		c     ssh.Conn
		chans <-chan ssh.NewChannel
		reqs  <-chan *ssh.Request
		err   error
	}
	done := make(chan result, 1)
	go func() {
		sc, chans, reqs, err := ssh.NewClientConn(conn, cfg.Addr(), &ssh.ClientConfig{
			User:            cfg.user(),
			Auth:            auth,
			HostKeyCallback: hkcb,
		})
		done <- result{sc, chans, reqs, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			conn.Close()
			return fail(via, r.err)
		}
		c.conn = ssh.NewClient(r.c, r.chans, r.reqs)
		return c, nil
	case <-ctx.Done():
		conn.Close()
		<-done
		return failAs(via, ErrTimeout, fmt.Errorf("no SSH handshake within %s", timeout))
	}
}

// hostKeyChecker verifies host keys against the configured lines.
type hostKeyChecker struct {
	anyHost []ssh.PublicKey     // authorized_keys lines: valid for every host
	known   ssh.HostKeyCallback // known_hosts lines
}

func newHostKeyChecker(lines string) (*hostKeyChecker, error) {
	chk := &hostKeyChecker{}
	var kh bytes.Buffer
	for i, line := range strings.Split(lines, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if _, hosts, _, _, _, err := ssh.ParseKnownHosts([]byte(line)); err == nil && len(hosts) > 0 {
			kh.WriteString(line + "\n")
			continue
		}
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
		if err != nil {
			return nil, fmt.Errorf("host_key line %d is neither an authorized_keys nor a known_hosts line: %v", i+1, err)
		}
		chk.anyHost = append(chk.anyHost, k)
	}
	if len(chk.anyHost) == 0 && kh.Len() == 0 {
		return nil, errors.New("host_key holds no key")
	}
	if kh.Len() > 0 {
		// knownhosts reads files only.
		f, err := os.CreateTemp("", "known_hosts-*")
		if err != nil {
			return nil, err
		}
		defer os.Remove(f.Name())
		_, werr := f.Write(kh.Bytes())
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return nil, werr
		}
		cb, err := knownhosts.New(filepath.Clean(f.Name()))
		if err != nil {
			return nil, fmt.Errorf("host_key: %v", err)
		}
		chk.known = cb
	}
	return chk, nil
}

func (chk *hostKeyChecker) callback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	for _, k := range chk.anyHost {
		if bytes.Equal(k.Marshal(), key.Marshal()) {
			return nil
		}
	}
	got := fmt.Sprintf("%s %s", key.Type(), ssh.FingerprintSHA256(key))
	var want []string
	for _, k := range chk.anyHost {
		want = append(want, ssh.FingerprintSHA256(k))
	}
	if chk.known != nil {
		err := chk.known(hostname, remote, key)
		if err == nil {
			return nil
		}
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			// e.g. a revoked key
			return &hostKeyError{cause: ErrHostKeyMismatch, msg: fmt.Sprintf("host %s presented %s: %v", hostname, got, err)}
		}
		for _, w := range ke.Want {
			want = append(want, ssh.FingerprintSHA256(w.Key))
		}
	}
	if len(want) == 0 {
		scan := "ssh-keyscan " + hostname
		if h, p, err := net.SplitHostPort(hostname); err == nil {
			scan = fmt.Sprintf("ssh-keyscan -p %s %s", p, h)
		}
		return &hostKeyError{cause: ErrHostKeyUnknown, msg: fmt.Sprintf(
			"host %s presented %s, and host_key has no entry for this host; add its line (%s)", hostname, got, scan)}
	}
	return &hostKeyError{cause: ErrHostKeyMismatch, msg: fmt.Sprintf(
		"host %s presented %s but host_key expects %s; if the node was reinstalled, update host_key, otherwise someone may be intercepting the connection",
		hostname, got, strings.Join(want, " or "))}
}
