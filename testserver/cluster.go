package testserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// Member describes one member of a Cluster.
type Member struct {
	// Name is the member's etcd name ("m0", "m1", ...).
	Name string
	// ID is the raft member ID.
	ID uint64
	// ClientURLs and PeerURLs are the URLs the member serves and advertises.
	// They stay the same across StopMember/RestartMember.
	ClientURLs, PeerURLs []string
}

// Cluster is an in-process replicated etcd cluster on loopback.
//
// All methods are safe for concurrent use. Methods that change members
// (StopMember, RestartMember, KillLeader, Close) run one at a time.
type Cluster struct {
	opts  options
	dir   string
	token string
	pki   *pki
	tls   *TLSInfo

	rootPassword string

	// ops serializes member life-cycle operations; acquiring it honours the
	// caller's ctx. A stop that outlives its caller's ctx keeps holding it
	// until the member is down.
	ops chan struct{}

	// kaMu guards the open LeaseKeepAlive streams and the leases
	// RevokeLease revoked (see expireLease).
	kaMu       sync.Mutex
	keepAlives map[*ctxStream]struct{}
	revoked    []revokedLease

	defrags defragLog

	mu        sync.Mutex
	members   []*member
	client    *clientv3.Client
	closed    bool
	closeOnce sync.Once
	closeErr  error
}

// startTimeout bounds Start; New is bounded by its ctx only.
const startTimeout = 60 * time.Second

// portAttempts is how often New retries with fresh ports when a port was
// taken by a foreign process (see reservePort).
const portAttempts = 3

// Start starts a cluster for a test or benchmark and stops it when the test
// ends. It fails the test with tb.Fatal if the cluster cannot be started.
func Start(tb testing.TB, opts ...Option) *Cluster {
	tb.Helper()
	c := &Cluster{ops: make(chan struct{}, 1)}
	// Registered before anything can fail, so that a partial start is
	// always cleaned up.
	tb.Cleanup(func() {
		if err := c.Close(); err != nil {
			tb.Errorf("testserver: close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(tb.Context(), startTimeout)
	defer cancel()
	if err := c.start(ctx, opts); err != nil {
		tb.Fatalf("testserver: start: %v", err)
	}
	return c
}

// New starts a cluster outside of tests (for example for a local
// development cluster). The start is bounded by ctx; the caller must call
// Close, which also removes all data.
func New(ctx context.Context, opts ...Option) (*Cluster, error) {
	c := &Cluster{ops: make(chan struct{}, 1)}
	if err := c.start(ctx, opts); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("testserver: start: %w", err)
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context, opts []Option) error {
	o, err := buildOptions(opts)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.opts = o
	if c.closed {
		c.mu.Unlock()
		return errors.New("cluster is closed")
	}
	c.mu.Unlock()

	c.dir, err = os.MkdirTemp("", "etcd-testserver-")
	if err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	c.token, err = randomString(8)
	if err != nil {
		return err
	}
	if o.tls {
		if err := c.setupTLS(); err != nil {
			return err
		}
	}

	for attempt := 1; ; attempt++ {
		err = c.startMembers(ctx, attempt)
		if err == nil {
			break
		}
		if !isAddrInUse(err) || attempt == portAttempts || ctx.Err() != nil {
			return err
		}
		c.discardMembers()
	}
	if err := c.waitReady(ctx); err != nil {
		return err
	}
	if o.auth {
		if err := c.enableAuth(ctx); err != nil {
			return err
		}
	}
	cli, err := c.NewClient(clientv3.Config{})
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.client = cli
	c.mu.Unlock()
	if o.proxies {
		for _, m := range c.snapshotMembers() {
			if _, err := c.proxyFor(m); err != nil {
				return err
			}
		}
	}
	return nil
}

// startMembers reserves ports for every member, starts them and waits until
// all have joined. Each attempt uses fresh ports and data directories.
func (c *Cluster) startMembers(ctx context.Context, attempt int) error {
	members := make([]*member, c.opts.members)
	for i := range members {
		name := fmt.Sprintf("m%d", i)
		m, err := newMember(c, name, filepath.Join(c.dir, fmt.Sprintf("attempt%d", attempt), name))
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.members = append(c.members, m)
		c.mu.Unlock()
		members[i] = m
	}
	initial := make([]string, len(members))
	for i, m := range members {
		initial[i] = m.name + "=" + m.peerURL.String()
	}
	initialCluster := strings.Join(initial, ",")

	// Members start one after the other: while a new member bootstraps,
	// etcd asks its peers over HTTP whether it is already a member, with a
	// 1s timeout. A peer that is listening but still bootstrapping itself
	// would not answer, costing 1-2s, whereas a peer that is not listening
	// yet refuses at once and one that was started before answers at once.
	for _, m := range members {
		if err := m.start(initialCluster); err != nil {
			return err
		}
	}
	for _, m := range members {
		if err := m.waitStarted(ctx); err != nil {
			return err
		}
	}
	return nil
}

// waitReady waits until there is a leader and a linearizable Get succeeds
// on every member.
func (c *Cluster) waitReady(ctx context.Context) error {
	members := c.snapshotMembers()
	errs := make([]error, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.waitMemberServes(ctx, m)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	_, err := c.Leader(ctx)
	return err
}

// waitMemberServes retries a linearizable Get on m alone until it succeeds
// (as root once auth is enabled).
func (c *Cluster) waitMemberServes(ctx context.Context, m *member) error {
	cli, err := c.NewClient(clientv3.Config{Endpoints: []string{m.clientURL.String()}})
	if err != nil {
		return err
	}
	defer cli.Close()
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		_, err := cli.Get(rctx, "testserver/ready")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("member %s does not serve: %w (last error: %v)", m.name, ctx.Err(), err)
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Close stops all members, proxies and clients and removes the data
// directory. It is safe to call more than once; later calls return the
// first call's result.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		cli := c.client
		c.mu.Unlock()
		// Wait for a pending life-cycle operation (bounded by etcd itself).
		c.ops <- struct{}{}
		var errs []error
		if cli != nil {
			if err := cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
				errs = append(errs, fmt.Errorf("close client: %w", err))
			}
		}
		c.stopAll()
		for _, m := range c.snapshotMembers() {
			m.closeProxy()
			m.releasePorts()
		}
		if c.dir != "" {
			if err := os.RemoveAll(c.dir); err != nil {
				errs = append(errs, fmt.Errorf("remove data dir: %w", err))
			}
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// discardMembers stops all members of a failed start attempt and gives
// their ports back.
func (c *Cluster) discardMembers() {
	c.stopAll()
	c.mu.Lock()
	members := c.members
	c.members = nil
	c.mu.Unlock()
	for _, m := range members {
		m.closeProxy()
		m.releasePorts()
	}
}

// stopAll hard-stops every running member. All members leave raft first,
// so that no member talks to another one that is shutting down, then their
// servers close in parallel.
func (c *Cluster) stopAll() {
	members := c.snapshotMembers()
	halted := make([]*embed.Etcd, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			halted[i] = m.halt()
		}()
	}
	wg.Wait()
	for _, e := range halted {
		if e == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.Close()
		}()
	}
	wg.Wait()
}

func (c *Cluster) snapshotMembers() []*member {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*member(nil), c.members...)
}

// Endpoints returns the client URLs of all members, running or not.
func (c *Cluster) Endpoints() []string {
	members := c.snapshotMembers()
	eps := make([]string, len(members))
	for i, m := range members {
		eps[i] = m.clientURL.String()
	}
	return eps
}

// Client returns a client for all endpoints, configured with TLS and root
// credentials when enabled. Do not close it: Close does.
func (c *Cluster) Client() *clientv3.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.client
}

// NewClient creates a client. Zero fields are filled in: Endpoints with all
// members' client URLs, TLS with the cluster's CA and root client
// certificate (WithTLS), Username/Password with root's (WithAuth, only when
// both are empty and Token is empty), Logger with the cluster's logger. The
// caller closes it. For a client without credentials use clientv3.New with
// Endpoints and TLS.
func (c *Cluster) NewClient(cfg clientv3.Config) (*clientv3.Client, error) {
	if len(cfg.Endpoints) == 0 {
		cfg.Endpoints = c.Endpoints()
	}
	if cfg.TLS == nil && c.pki != nil {
		cfg.TLS = c.pki.clientTLSConfig(c.pki.rootCert)
	}
	if user, password := c.RootCredentials(); cfg.Username == "" && cfg.Password == "" && cfg.Token == "" && user != "" {
		cfg.Username, cfg.Password = user, password
	}
	if cfg.Logger == nil && cfg.LogConfig == nil {
		cfg.Logger = c.opts.logger
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("new client: %w", err)
	}
	return cli, nil
}

// Members returns all members, running or not, in name order.
func (c *Cluster) Members() []Member {
	members := c.snapshotMembers()
	out := make([]Member, len(members))
	for i, m := range members {
		out[i] = m.info()
	}
	return out
}

// Leader waits until a running member is leader in the eyes of a majority of
// all members and returns it.
func (c *Cluster) Leader(ctx context.Context) (Member, error) {
	for {
		if m := c.currentLeader(); m != nil {
			return m.info(), nil
		}
		select {
		case <-ctx.Done():
			return Member{}, fmt.Errorf("no leader: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// currentLeader returns the member that a majority of members, itself
// included, currently follows, or nil.
func (c *Cluster) currentLeader() *member {
	members := c.snapshotMembers()
	votes := map[uint64]int{}
	for _, m := range members {
		if lead := m.lead(); lead != 0 {
			votes[lead]++
		}
	}
	for _, m := range members {
		id := m.memberID()
		if id != 0 && m.lead() == id && votes[id] > len(members)/2 {
			return m
		}
	}
	return nil
}

func (c *Cluster) member(name string) (*member, error) {
	for _, m := range c.snapshotMembers() {
		if m.name == name {
			return m, nil
		}
	}
	return nil, fmt.Errorf("testserver: no member %q", name)
}

// acquire takes the life-cycle lock, bounded by ctx.
func (c *Cluster) acquire(ctx context.Context) error {
	select {
	case c.ops <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		<-c.ops
		return errors.New("testserver: cluster is closed")
	}
	return nil
}

func (c *Cluster) release() { <-c.ops }

func isAddrInUse(err error) bool {
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "address already in use")
}
