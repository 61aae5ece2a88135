package client

import (
	"context"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// Client is the one etcd connection of a provider process. It embeds the
// clientv3 client, so KV, Lease, Auth, Cluster and Maintenance calls are made
// on it directly; wrap every call's context with Ctx and its error with
// Describe.
type Client struct {
	*clientv3.Client

	endpoints []string
	username  string
	// certUser is the common name of the client certificate, if any: the
	// etcd user of client-certificate authentication when username is "".
	certUser       string
	usernameSource Source
	requestTimeout time.Duration
	// timeoutAttr names the attribute requestTimeout comes from, for errors.
	timeoutAttr string

	reads *keyReads
}

// Open connects to the cluster described by s. clientv3 dials lazily, so an
// unreachable cluster is reported by the first request (through Describe);
// with a user name, Open authenticates at once and fails on bad credentials.
// opts are added to clientv3's gRPC dial options (snapshot.DialOptions, say).
func Open(ctx context.Context, s *Settings, opts ...grpc.DialOption) (*Client, error) {
	cfg := clientv3.Config{
		Endpoints:   append([]string(nil), s.Endpoints...),
		Username:    s.Username,
		Password:    s.password,
		DialTimeout: s.DialTimeout,
		// A member that lost power leaves its connection looking ready;
		// gRPC keepalive pings notice within seconds, so requests move to
		// another endpoint instead of waiting out the request timeout.
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		Context:              context.WithoutCancel(ctx),
		// clientv3 logs to stderr by default, which Terraform shows as
		// noise. The provider reports errors itself.
		Logger:      zap.NewNop(),
		DialOptions: opts,
	}
	if s.TLS != nil {
		cfg.TLS = s.TLS.Config()
	}
	c := &Client{
		endpoints:      cfg.Endpoints,
		username:       s.Username,
		usernameSource: s.UsernameSource,
		certUser:       s.certUser(),
		requestTimeout: s.RequestTimeout,
		timeoutAttr:    AttrRequestTimeout,
		reads:          &keyReads{},
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		// With credentials, New authenticates, bounded by the dial timeout.
		dial := *c
		dial.requestTimeout, dial.timeoutAttr = s.DialTimeout, AttrDialTimeout
		return nil, dial.Describe(err, fmt.Sprintf("connect to etcd at %s", strings.Join(s.Endpoints, ", ")), "")
	}
	c.Client = cli
	return c, nil
}

// Ctx bounds one request by the configured request timeout.
func (c *Client) Ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, c.requestTimeout)
}

// Endpoints returns the endpoints the client was configured with.
func (c *Client) Endpoints() []string { return append([]string(nil), c.endpoints...) }

// User returns the etcd user the client authenticates as ("" for none).
func (c *Client) User() string { return c.username }

// RequestTimeout returns the timeout Ctx applies.
func (c *Client) RequestTimeout() time.Duration { return c.requestTimeout }
