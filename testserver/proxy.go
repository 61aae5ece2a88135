package testserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"time"
)

// proxy is a TCP proxy in front of one member's client port. It can stall
// all traffic (Blackhole) without closing or resetting any connection, like
// a network that silently drops packets: bytes already read are held, nothing
// more is read, and TCP flow control makes the peers' writes block. When it
// is opened again the held bytes are delivered and connections continue.
type proxy struct {
	l      net.Listener
	target string
	ctx    context.Context // cancelled by close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu         sync.Mutex
	blackholed bool
	open       chan struct{} // closed while traffic flows
	conns      map[net.Conn]struct{}
	closed     bool
}

func newProxy(target string) (*proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &proxy{
		l:      l,
		target: target,
		ctx:    ctx,
		cancel: cancel,
		open:   make(chan struct{}),
		conns:  map[net.Conn]struct{}{},
	}
	close(p.open)
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

func (p *proxy) addr() string { return p.l.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		conn, err := p.l.Accept()
		if err != nil {
			return
		}
		if !p.track(conn) {
			_ = conn.Close()
			return
		}
		p.wg.Add(1)
		go p.handle(conn)
	}
}

func (p *proxy) track(conn net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[conn] = struct{}{}
	return true
}

func (p *proxy) untrack(conn net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.conns, conn)
}

// wait blocks while the proxy is blackholed; false means the proxy closed.
func (p *proxy) wait() bool {
	p.mu.Lock()
	open := p.open
	p.mu.Unlock()
	select {
	case <-open:
		return true
	case <-p.ctx.Done():
		return false
	}
}

func (p *proxy) handle(down net.Conn) {
	defer p.wg.Done()
	defer p.untrack(down)
	defer down.Close()
	// A new connection is accepted (the kernel completes the handshake
	// anyway) but not forwarded while blackholed.
	if !p.wait() {
		return
	}
	d := net.Dialer{Timeout: 5 * time.Second}
	up, err := d.DialContext(p.ctx, "tcp", p.target)
	if err != nil {
		return
	}
	if !p.track(up) {
		_ = up.Close()
		return
	}
	defer p.untrack(up)
	defer up.Close()

	errc := make(chan error, 2)
	go func() { errc <- p.pipe(up, down) }()
	go func() { errc <- p.pipe(down, up) }()
	<-errc
	// One direction ended: end the other by closing both sides.
	_ = up.Close()
	_ = down.Close()
	<-errc
}

func (p *proxy) pipe(dst, src net.Conn) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.wait() {
				return net.ErrClosed
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

func (p *proxy) setBlackhole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on == p.blackholed {
		return
	}
	p.blackholed = on
	if on {
		p.open = make(chan struct{})
	} else {
		close(p.open)
	}
}

// dropConns closes every connection the proxy forwards; it keeps accepting
// new ones.
func (p *proxy) dropConns() {
	p.mu.Lock()
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// close stops accepting, drops all connections and waits for every
// goroutine of the proxy.
func (p *proxy) close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.cancel()
	conns := make([]net.Conn, 0, len(p.conns))
	for c := range p.conns {
		conns = append(conns, c)
	}
	p.mu.Unlock()
	_ = p.l.Close()
	for _, c := range conns {
		_ = c.Close()
	}
	p.wg.Wait()
}

// proxyFor returns m's proxy, starting it on first use.
func (c *Cluster) proxyFor(m *member) (*proxy, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proxy != nil {
		return m.proxy, nil
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return nil, errors.New("testserver: cluster is closed")
	}
	p, err := newProxy(m.clientURL.Host)
	if err != nil {
		return nil, err
	}
	m.proxy = p
	return p, nil
}

func (m *member) closeProxy() {
	m.mu.Lock()
	p := m.proxy
	m.proxy = nil
	m.mu.Unlock()
	if p != nil {
		p.close()
	}
}

// ProxyEndpoint returns a client endpoint (same scheme as Endpoints) that
// reaches member name through a TCP proxy owned by the cluster, for
// Blackhole. The proxy survives StopMember/RestartMember. It returns "" for
// an unknown member or a closed cluster.
func (c *Cluster) ProxyEndpoint(name string) string {
	m, err := c.member(name)
	if err != nil {
		return ""
	}
	p, err := c.proxyFor(m)
	if err != nil {
		return ""
	}
	u := url.URL{Scheme: m.clientURL.Scheme, Host: p.addr()}
	return u.String()
}

// Blackhole makes the proxy of member name (see ProxyEndpoint) stall all
// traffic in both directions, for existing and new connections, without
// closing or resetting any. Requests through it hang until their ctx ends.
func (c *Cluster) Blackhole(name string) error {
	return c.setBlackhole(name, true)
}

// Unblackhole lets traffic through the proxy of member name flow again.
func (c *Cluster) Unblackhole(name string) error {
	return c.setBlackhole(name, false)
}

func (c *Cluster) setBlackhole(name string, on bool) error {
	m, err := c.member(name)
	if err != nil {
		return err
	}
	p, err := c.proxyFor(m)
	if err != nil {
		return err
	}
	p.setBlackhole(on)
	return nil
}
