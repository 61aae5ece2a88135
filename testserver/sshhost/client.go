package sshhost

// The SSH side of a host: connecting, sessions, and Run's cached connection.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

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

// Dial opens an SSH connection to the host. Connecting and the handshake
// are bounded by ctx (by the host's timeout when ctx has no deadline); the
// client returned has no deadline.
func (h *Host) Dial(ctx context.Context) (*ssh.Client, error) {
	ctx, cancel := h.bound(ctx)
	defer cancel()
	c, err := h.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("sshhost: %s: %w", h.Name, err)
	}
	return c, nil
}

// expired returns the cause of ctx when ctx is done or its deadline has
// passed: a connection's own deadline, set from ctx's, may fire first.
func expired(ctx context.Context) error {
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		<-ctx.Done() // its timer is due
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

func (h *Host) dial(ctx context.Context) (*ssh.Client, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", h.HostPort())
	if err != nil {
		if cerr := expired(ctx); cerr != nil {
			return nil, fmt.Errorf("connect to %s: %w (%v)", h.HostPort(), cerr, err)
		}
		return nil, err
	}
	// The deadline covers a server that accepts and then says nothing; the
	// AfterFunc a cancellation before it.
	dl, _ := ctx.Deadline()
	_ = conn.SetDeadline(dl)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	c, chans, reqs, err := ssh.NewClientConn(conn, h.HostPort(), h.ClientConfig())
	if !stop() || err != nil {
		conn.Close()
		if cerr := expired(ctx); cerr != nil {
			return nil, fmt.Errorf("ssh handshake with %s: %w (%v)", h.HostPort(), cerr, err)
		}
		return nil, fmt.Errorf("ssh handshake with %s: %w", h.HostPort(), err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// newSession opens a session on c, bounded by ctx. NewSession itself waits
// for the server without a deadline: a host that went away (Disconnect, or
// Down in another goroutine) would otherwise block it until TCP gives up on
// the connection, which takes 15 minutes with the default tcp_retries2. On
// ctx, c is closed, which fails the pending NewSession.
func newSession(ctx context.Context, c *ssh.Client) (*ssh.Session, error) {
	type res struct {
		s   *ssh.Session
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := c.NewSession()
		ch <- res{s, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, fmt.Errorf("open session: %w", r.err)
		}
		return r.s, nil
	case <-ctx.Done():
		c.Close()
		return nil, fmt.Errorf("open session: %w", context.Cause(ctx))
	}
}

// session opens a session on the cached connection, dialing (again) when
// there is none or it does not answer within cachedWait. done must be called
// when the session is over: it closes the connection if it is not cached.
func (h *Host) session(ctx context.Context) (s *ssh.Session, c *ssh.Client, done func(), err error) {
	h.cmu.Lock()
	c, gen := h.client, h.gen
	h.cmu.Unlock()
	if c != nil {
		// A connection that survived a partition may answer only at TCP's
		// next retransmission; a new one is quicker.
		cctx, cancel := context.WithTimeout(ctx, cachedWait)
		s, err := newSession(cctx, c)
		cancel()
		if err == nil {
			return s, c, func() {}, nil
		}
		h.forgetClient(c)
		if ctx.Err() != nil {
			return nil, nil, nil, err
		}
	}
	if c, err = h.dial(ctx); err != nil {
		return nil, nil, nil, err
	}
	if s, err = newSession(ctx, c); err != nil {
		c.Close()
		return nil, nil, nil, err
	}
	h.cmu.Lock()
	defer h.cmu.Unlock()
	if h.client == nil && h.gen == gen {
		h.client = c
		return s, c, func() {}, nil
	}
	// Another Run cached its connection meanwhile, or the host went Down
	// while this one was dialed: it serves this session only, and is closed
	// by Down and Close like the cached one.
	if h.extra == nil {
		h.extra = map[*ssh.Client]struct{}{}
	}
	h.extra[c] = struct{}{}
	return s, c, func() { h.forgetClient(c) }, nil
}

// cachedWait bounds opening a session on the cached connection before Run
// dials a new one.
const cachedWait = 10 * time.Second

// forgetClient closes c and drops it from the cache if it is still there.
func (h *Host) forgetClient(c *ssh.Client) {
	c.Close()
	h.cmu.Lock()
	defer h.cmu.Unlock()
	if h.client == c {
		h.client = nil
	}
	delete(h.extra, c)
}

// dropClient closes the connections Run holds, which ends their sessions.
func (h *Host) dropClient() {
	h.cmu.Lock()
	cs := []*ssh.Client{h.client}
	for c := range h.extra {
		cs = append(cs, c)
	}
	h.client, h.extra = nil, nil
	h.gen++
	h.cmu.Unlock()
	for _, c := range cs {
		if c != nil {
			c.Close()
		}
	}
}

// Run runs cmd on the host over SSH and returns its combined output. The
// SSH connection is kept for the next Run. Run is bounded by ctx (by the
// host's timeout when ctx has no deadline); when it expires the connection
// is closed, which ends the session.
func (h *Host) Run(ctx context.Context, cmd string) (string, error) {
	ctx, cancel := h.bound(ctx)
	defer cancel()
	s, c, done, err := h.session(ctx)
	if err != nil {
		return "", fmt.Errorf("sshhost: %s: %q: %w", h.Name, cmd, err)
	}
	defer done()
	// One writer for both streams: bytes.Buffer is not safe for the two
	// concurrent copies (its ReadFrom would drop the other's output).
	var out lockedBuffer
	s.Stdout, s.Stderr = &out, &out
	finished := make(chan error, 1)
	go func() { finished <- s.Run(cmd) }()
	select {
	case err = <-finished:
		s.Close()
	case <-ctx.Done():
		h.forgetClient(c)
		err = context.Cause(ctx)
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
// host's network namespace in ModeNetns, as a plain child otherwise. It
// carries the host's marker, so Down kills what it leaves running. Exec is
// bounded by ctx (by the host's timeout when ctx has no deadline), and does
// not wait for the output of processes it left behind.
func (h *Host) Exec(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := h.bound(ctx)
	defer cancel()
	if h.Systemd {
		return h.execContainer(ctx, name, args...)
	}
	var cmd *exec.Cmd
	if h.Mode == ModeNetns {
		cmd = exec.CommandContext(ctx, ipPath(), append([]string{"netns", "exec", h.Namespace, name}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, name, args...)
	}
	cmd.Env = append(os.Environ(), markerVar+"="+h.id)
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", err, context.Cause(ctx))
		}
		return out, fmt.Errorf("sshhost: %s: %s %v: %w: %s", h.Name, name, args, err, bytes.TrimSpace(out))
	}
	return out, nil
}

// Down takes the host down as if it lost power: its link goes down
// (ModeNetns; connections to it then fail with "no route to host" or time
