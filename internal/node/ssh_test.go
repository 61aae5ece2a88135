package node

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver/sshhost"
)

func sshConfig(h *sshhost.Host) SSHConfig {
	return SSHConfig{
		Host:       h.Addr,
		Port:       h.Port,
		User:       h.User,
		PrivateKey: string(h.PrivateKeyPEM),
		HostKey:    h.HostKey,
		Timeout:    10 * time.Second,
	}
}

func mustDial(t *testing.T, cfg SSHConfig) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func expectDialError(t *testing.T, cfg SSHConfig, cause error) *DialError {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err == nil {
		c.Close()
		t.Fatalf("dial %s succeeded, want %v", cfg.Addr(), cause)
	}
	if !errors.Is(err, cause) {
		t.Fatalf("dial %s: %v; want cause %v", cfg.Addr(), err, cause)
	}
	var de *DialError
	if !errors.As(err, &de) {
		t.Fatalf("%T is not a *DialError: %v", err, err)
	}
	if !strings.Contains(err.Error(), cfg.Host) {
		t.Fatalf("error does not name the host %s: %v", cfg.Host, err)
	}
	t.Logf("%v", err)
	return de
}

func newKeyPEM(t *testing.T) string {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ssh.MarshalPrivateKey(k, "")
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(b))
}

func TestSSH(t *testing.T) {
	hosts := sshhost.Start(t, 2)
	h, other := hosts[0], hosts[1]
	ctx := context.Background()

	t.Run("key and authorized_keys host key", func(t *testing.T) {
		c := mustDial(t, sshConfig(h))
		out, err := c.Run(ctx, "echo hello; echo oops >&2")
		if err != nil || out != "hello\n" {
			t.Fatalf("%q %v", out, err)
		}
		_, err = c.Run(ctx, "echo failing >&2; exit 7")
		var ce *CommandError
		if !errors.As(err, &ce) || ce.ExitStatus != 7 || !strings.Contains(ce.Error(), "failing") || !strings.Contains(ce.Error(), h.Addr) {
			t.Fatalf("command error: %#v", err)
		}
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		if _, err := c.Run(short, "sleep 30"); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
			t.Fatalf("cancelled run: %v after %s", err, time.Since(start))
		}
	})

	t.Run("known_hosts line", func(t *testing.T) {
		cfg := sshConfig(h)
		// Several hosts' lines, as a cluster-wide known_hosts block.
		cfg.HostKey = other.KnownHostsLine() + "\n" + h.KnownHostsLine() + "\n"
		mustDial(t, cfg)
	})

	t.Run("passphrase protected key", func(t *testing.T) {
		cfg := sshConfig(h)
		cfg.PrivateKey, cfg.Passphrase = string(h.EncryptedPrivateKeyPEM), h.Passphrase
		mustDial(t, cfg)

		cfg.Passphrase = ""
		if _, err := Dial(ctx, cfg); !errors.Is(err, ErrInvalidSSHConfig) || !strings.Contains(err.Error(), "passphrase") {
			t.Fatalf("missing passphrase: %v", err)
		}
		cfg.Passphrase = "wrong"
		if _, err := Dial(ctx, cfg); !errors.Is(err, ErrInvalidSSHConfig) || !strings.Contains(err.Error(), "wrong passphrase") {
			t.Fatalf("wrong passphrase: %v", err)
		}
	})

	t.Run("ssh-agent", func(t *testing.T) {
		sockDir, err := os.MkdirTemp("", "agent")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(sockDir)
		sock := filepath.Join(sockDir, "agent.sock")
		bin, err := exec.LookPath("ssh-agent")
		if err != nil {
			t.Skip("ssh-agent not installed")
		}
		cmd := exec.Command(bin, "-D", "-a", sock)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
		// ssh-agent creates its socket after it started: wait for it, on
		// a busy machine for as long as it takes.
		var conn net.Conn
		for deadline := time.Now().Add(30 * time.Second); ; {
			if conn, err = net.Dial("unix", sock); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("ssh-agent's socket: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
		raw, err := ssh.ParseRawPrivateKey(h.PrivateKeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		if err := agent.NewClient(conn).Add(agent.AddedKey{PrivateKey: raw}); err != nil {
			t.Fatal(err)
		}
		conn.Close()

		cfg := sshConfig(h)
		cfg.PrivateKey = ""
		cfg.Agent = true
		t.Setenv("SSH_AUTH_SOCK", sock)
		mustDial(t, cfg)
		cfg.AgentSocket = filepath.Join(sockDir, "nope")
		_ = expectDialError(t, cfg, ErrConnection)
	})

	t.Run("wrong user key", func(t *testing.T) {
		cfg := sshConfig(h)
		cfg.PrivateKey = newKeyPEM(t)
		_ = expectDialError(t, cfg, ErrAuthFailed)
	})

	t.Run("host key mismatch", func(t *testing.T) {
		cfg := sshConfig(h)
		cfg.HostKey = other.HostKey
		de := expectDialError(t, cfg, ErrHostKeyMismatch)
		if !strings.Contains(de.Error(), ssh.FingerprintSHA256(h.HostPublicKey)) {
			t.Errorf("message lacks the presented fingerprint: %v", de)
		}
		// known_hosts form naming this host with another key.
		cfg.HostKey = knownhosts.Line([]string{knownhosts.Normalize(h.HostPort())}, other.HostPublicKey)
		_ = expectDialError(t, cfg, ErrHostKeyMismatch)
	})

	t.Run("host key unknown", func(t *testing.T) {
		cfg := sshConfig(h)
		cfg.HostKey = other.KnownHostsLine() // only the other host
		_ = expectDialError(t, cfg, ErrHostKeyUnknown)
	})

	t.Run("insecure ignore host key", func(t *testing.T) {
		cfg := sshConfig(h)
		cfg.HostKey = ""
		if _, err := Dial(ctx, cfg); !errors.Is(err, ErrInvalidSSHConfig) {
			t.Fatalf("no host key: %v", err)
		}
		cfg.InsecureIgnoreHostKey = true
		mustDial(t, cfg)
	})

	t.Run("connection refused", func(t *testing.T) {
		cfg := sshConfig(h)
		cfg.Port = 2 // nothing listens there
		_ = expectDialError(t, cfg, ErrConnectionRefused)
	})

	t.Run("timeout", func(t *testing.T) {
		// A TCP server that never speaks SSH: the handshake times out.
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
			}
		}()
		cfg := sshConfig(h)
		cfg.Host, cfg.Port = "127.0.0.1", l.Addr().(*net.TCPAddr).Port
		cfg.Timeout = 500 * time.Millisecond
		start := time.Now()
		_ = expectDialError(t, cfg, ErrTimeout)
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("timeout took %s", d)
		}
	})

	t.Run("bastion", func(t *testing.T) {
		cfg := sshConfig(other)
		b := sshConfig(h)
		cfg.Bastion = &b
		c := mustDial(t, cfg)
		out, err := c.Run(ctx, "echo via-bastion")
		if err != nil || out != "via-bastion\n" {
			t.Fatalf("%q %v", out, err)
		}
		// Target refuses, seen through the bastion.
		cfg.Port = 2
		de := expectDialError(t, cfg, ErrConnectionRefused)
		if de.Via == "" {
			t.Error("Via not set")
		}
		// The bastion itself rejects the key: the cause is reported as the bastion's.
		cfg = sshConfig(other)
		bad := sshConfig(h)
		bad.PrivateKey = newKeyPEM(t)
		cfg.Bastion = &bad
		de = expectDialError(t, cfg, ErrAuthFailed)
		if !strings.Contains(de.Error(), "bastion") {
			t.Errorf("bastion failure not named: %v", de)
		}
	})

	t.Run("validation", func(t *testing.T) {
		for name, cfg := range map[string]SSHConfig{
			"no host":        {PrivateKey: string(h.PrivateKeyPEM), HostKey: h.HostKey},
			"no auth":        {Host: "x", HostKey: h.HostKey},
			"bad key":        {Host: "x", PrivateKey: "junk", HostKey: h.HostKey},
			"bad host key":   {Host: "x", PrivateKey: string(h.PrivateKeyPEM), HostKey: "not a key"},
			"bad bastion":    {Host: "x", PrivateKey: string(h.PrivateKeyPEM), HostKey: h.HostKey, Bastion: &SSHConfig{Host: "b"}},
			"port too large": {Host: "x", Port: 70000, PrivateKey: string(h.PrivateKeyPEM), HostKey: h.HostKey},
		} {
			if err := cfg.Validate(); !errors.Is(err, ErrInvalidSSHConfig) {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
}

func TestSSHHostDown(t *testing.T) {
	hosts := sshhost.Start(t, 1)
	h := hosts[0]
	if err := h.Down(); err != nil {
		t.Fatal(err)
	}
	cfg := sshConfig(h)
	cfg.Timeout = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Dial(ctx, cfg)
	var de *DialError
	if !errors.As(err, &de) || !strings.Contains(err.Error(), h.Addr) {
		t.Fatalf("dial a down host: %v", err)
	}
	t.Logf("down host (%s): %v", h.Mode, err)
	if h.Mode == sshhost.ModeNetns && !errors.Is(err, ErrTimeout) && !errors.Is(err, ErrUnreachable) {
		t.Fatalf("a powered-off host should time out or be unreachable: %v", err)
	}
	if err := h.Up(ctx); err != nil {
		t.Fatal(err)
	}
	mustDial(t, sshConfig(h))
}

// A connection to a host that is then cut off must not hang a command for
// the kernel's retransmission timeout (~15 minutes): opening the session is
// bounded by the caller's context like the command itself.
func TestRunOnCutOffHostIsBounded(t *testing.T) {
	hosts := sshhost.Start(t, 1)
	h := hosts[0]
	if h.Mode != sshhost.ModeNetns {
		t.Skipf("needs a network partition, which %s mode cannot make", h.Mode)
	}
	c := mustDial(t, sshConfig(h))
	if _, err := c.Run(context.Background(), "true"); err != nil {
		t.Fatal(err)
	}
	if err := h.Disconnect(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Reconnect() })
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.Run(ctx, "true")
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a command on a cut-off host succeeded")
		}
		if !errors.Is(err, ErrTimeout) && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("want a timeout, got %v", err)
		}
		t.Logf("cut-off host: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("a command on a cut-off host ignored its 3 s context for 30 s")
	}
}

func TestSSHConfigAt(t *testing.T) {
	base := SSHConfig{Host: "unused", Port: 2200, User: "ops"}
	for _, tc := range []struct {
		addr, host string
		port       int // what Addr dials
	}{
		{"10.0.0.1", "10.0.0.1", 2200},
		{"10.0.0.1:2222", "10.0.0.1", 2222},
		{"node1.example", "node1.example", 2200},
		{"node1.example:22", "node1.example", 22},
		{"fd00::1", "fd00::1", 2200},
		{"[fd00::1]", "fd00::1", 2200},
		{"[fd00::1]:2222", "fd00::1", 2222},
	} {
		got := base.At(tc.addr)
		if got.Host != tc.host || got.port() != tc.port || got.User != "ops" {
			t.Errorf("At(%q) = host %q port %d user %q, want host %q port %d user ops", tc.addr, got.Host, got.port(), got.User, tc.host, tc.port)
		}
	}
	if got := (SSHConfig{}).At("10.0.0.1").Addr(); got != "10.0.0.1:22" {
		t.Errorf("no port anywhere: Addr() = %q, want 10.0.0.1:22", got)
	}
}
