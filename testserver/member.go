package testserver

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Test tuning. Heartbeat 10ms and election timeout 100ms are the values etcd's
// own integration framework uses; they keep elections (start, KillLeader,
// Partition) around 0.1s while staying stable on a loaded 2-core machine.
const (
	tickMs     = 10
	electionMs = 100
	// quotaBytes bounds the backend; bbolt's mmap is sized from it (quota
	// plus 10%) instead of etcd's default 10 GiB.
	quotaBytes = 256 << 20
)

// member is one etcd member. The fields before mu are set by newMember and
// do not change while the member is in use; the rest are guarded by mu.
type member struct {
	c         *Cluster
	name      string
	dir       string
	clientURL url.URL
	// peerURL is what the member advertises and its peers dial: the
	// address of peerProxy, which forwards to listenPeerURL where etcd
	// listens. See halt for why.
	peerURL       url.URL
	listenPeerURL url.URL
	peerProxy     *proxy
	release       []func()

	mu             sync.Mutex
	etcd           *embed.Etcd
	cancelStreams  context.CancelFunc
	id             uint64
	initialCluster string
	partitioned    bool
	proxy          *proxy
}

func newMember(c *Cluster, name, dir string) (*member, error) {
	m := &member{c: c, name: name, dir: dir}
	scheme := "http"
	if c.opts.tls {
		scheme = "https"
	}
	var ports [2]int
	for i := range ports {
		port, release, err := reservePort()
		if err != nil {
			m.releasePorts()
			return nil, err
		}
		ports[i] = port
		m.release = append(m.release, release)
	}
	m.clientURL = url.URL{Scheme: scheme, Host: "127.0.0.1:" + strconv.Itoa(ports[0])}
	m.listenPeerURL = url.URL{Scheme: scheme, Host: "127.0.0.1:" + strconv.Itoa(ports[1])}
	pp, err := newProxy(m.listenPeerURL.Host)
	if err != nil {
		m.releasePorts()
		return nil, err
	}
	m.peerProxy = pp
	m.peerURL = url.URL{Scheme: scheme, Host: pp.addr()}
	return m, nil
}

// releasePorts closes the peer proxy and gives the reserved ports back; the
// member must be stopped.
func (m *member) releasePorts() {
	if m.peerProxy != nil {
		m.peerProxy.close()
	}
	for _, r := range m.release {
		r()
	}
	m.release = nil
}

func (m *member) config(streamCtx context.Context, server *atomic.Pointer[etcdserver.EtcdServer]) *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = m.name
	cfg.Dir = m.dir
	cfg.ListenClientUrls = []url.URL{m.clientURL}
	cfg.AdvertiseClientUrls = []url.URL{m.clientURL}
	cfg.ListenPeerUrls = []url.URL{m.listenPeerURL}
	cfg.AdvertisePeerUrls = []url.URL{m.peerURL}
	// Ignored by etcd once the member has data, so a restart reuses it.
	cfg.InitialCluster = m.initialCluster
	cfg.InitialClusterToken = "testserver-" + m.c.token
	cfg.ClusterState = embed.ClusterStateFlagNew

	cfg.TickMs = tickMs
	cfg.ElectionMs = electionMs
	cfg.UnsafeNoFsync = true
	cfg.QuotaBackendBytes = m.c.opts.quota
	// Hashing passwords at the lowest cost (the default) keeps auth set-up
	// and every Authenticate call cheap.
	cfg.BcryptCost = uint(m.c.opts.bcrypt)
	cfg.EnableGRPCGateway = false

	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(m.c.opts.logger.With(zap.String("member", m.name)))

	// Cancel every client request and stream when the member stops, so
	// that the server's graceful gRPC stop does not wait for open watches
	// or lease keep-alives (etcd would wait up to 5s).
	cfg.GRPCAdditionalServerOptions = []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			// etcd 3.7.3 keeps serving gRPC after its server stopped on
			// its own (a member removed from the cluster does), and a
			// Status request then reads the closed backend and panics the
			// whole process. Refuse requests once the server is stopping.
			if s := server.Load(); s != nil {
				select {
				case <-s.StoppingNotify():
					return nil, status.Error(codes.Unavailable, "etcd member "+m.name+" is stopping")
				default:
				}
			}
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			defer context.AfterFunc(streamCtx, cancel)()
			if info.FullMethod == pb.Maintenance_Defragment_FullMethodName {
				start := time.Now()
				resp, err := handler(ctx, req)
				m.c.defrags.add(Defragmentation{Member: m.name, Start: start, End: time.Now(), Err: err})
				return resp, err
			}
			return handler(ctx, req)
		}),
		grpc.ChainStreamInterceptor(func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			ctx, cancel := context.WithCancel(ss.Context())
			defer cancel()
			defer context.AfterFunc(streamCtx, cancel)()
			cs := &ctxStream{ServerStream: ss, ctx: ctx}
			if info.FullMethod == pb.Lease_LeaseKeepAlive_FullMethodName {
				m.c.openKeepAlive(cs)
				defer m.c.closeKeepAlive(cs)
			}
			return handler(srv, cs)
		}),
	}

	if p := m.c.pki; p != nil {
		files := p.memberCertFiles(m.name)
		info := transport.TLSInfo{
			CertFile:       files.cert,
			KeyFile:        files.key,
			TrustedCAFile:  p.caFile,
			ClientCertAuth: true,
		}
		cfg.ClientTLSInfo = info
		cfg.PeerTLSInfo = info
	}
	return cfg
}

// ctxStream is a server stream with its own context. Its sends are
// serialized so that RevokeLease can add a message to a keep-alive stream.
type ctxStream struct {
	grpc.ServerStream
	ctx    context.Context
	sendMu sync.Mutex
}

func (s *ctxStream) Context() context.Context { return s.ctx }

func (s *ctxStream) SendMsg(msg any) error {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	return s.ServerStream.SendMsg(msg)
}

// start starts the member's etcd. initialCluster is remembered for restarts.
// It does not wait for the member to join; see waitStarted.
func (m *member) start(initialCluster string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.etcd != nil {
		return fmt.Errorf("member %s is running", m.name)
	}
	if initialCluster != "" {
		m.initialCluster = initialCluster
	}
	if m.c.pki != nil {
		if err := m.c.pki.ensureMemberFiles(m.name); err != nil {
			return err
		}
	}
	streamCtx, cancel := context.WithCancel(context.Background())
	var server atomic.Pointer[etcdserver.EtcdServer]
	e, err := embed.StartEtcd(m.config(streamCtx, &server))
	if err != nil {
		cancel()
		return fmt.Errorf("start member %s: %w", m.name, err)
	}
	server.Store(e.Server)
	m.etcd = e
	m.cancelStreams = cancel
	m.id = uint64(e.Server.MemberID())
	return nil
}

// waitStarted waits until the member has joined the cluster (published
// itself through raft, which needs a leader).
func (m *member) waitStarted(ctx context.Context) error {
	m.mu.Lock()
	e := m.etcd
	m.mu.Unlock()
	if e == nil {
		return fmt.Errorf("member %s is stopped", m.name)
	}
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case <-e.Server.StopNotify():
		return fmt.Errorf("member %s stopped while starting", m.name)
	case err, ok := <-e.Err():
		if !ok || err == nil {
			err = errors.New("stopped")
		}
		return fmt.Errorf("member %s: %w", m.name, err)
	case <-ctx.Done():
		return fmt.Errorf("member %s did not join the cluster: %w", m.name, ctx.Err())
	}
}

// stop hard-stops the member if it runs: no leadership transfer.
func (m *member) stop() {
	if e := m.halt(); e != nil {
		e.Close()
	}
}

// halt is the first half of stop: it takes the member out of service
// without a leadership transfer and returns its etcd for the caller to
// Close, or nil if it was not running.
//
// etcd's peer listener renews a read deadline (5s) before every read, which
// races with the way net/http ends a request: after a short peer request
// (such as the GET /members every new member sends while bootstrapping, a
// version probe or a forwarded lease renewal) the server-side connection
// stays busy until that deadline or until the client closes it, and etcd's
// graceful shutdown of the peer server waits its full 1s for it. Peers
// therefore reach the member through peerProxy: once raft is stopped, halt
// drops every connection into the member, which ends those requests at once.
func (m *member) halt() *embed.Etcd {
	m.mu.Lock()
	e, cancel := m.etcd, m.cancelStreams
	m.etcd, m.cancelStreams = nil, nil
	m.mu.Unlock()
	if e == nil {
		return nil
	}
	cancel()
	for _, p := range e.Peers {
		_ = p.Listener.Close() // no new peer connections
	}
	e.Server.HardStop()
	m.peerProxy.dropConns()
	return e
}

func (m *member) running() *embed.Etcd {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.etcd
}

// lead is the leader ID the member currently follows, 0 if none or stopped.
func (m *member) lead() uint64 {
	e := m.running()
	if e == nil {
		return 0
	}
	select {
	case <-e.Server.StopNotify():
		return 0
	default:
	}
	return uint64(e.Server.Leader())
}

func (m *member) memberID() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.id
}

func (m *member) info() Member {
	return Member{
		Name:       m.name,
		ID:         m.memberID(),
		ClientURLs: []string{m.clientURL.String()},
		PeerURLs:   []string{m.peerURL.String()},
	}
}
