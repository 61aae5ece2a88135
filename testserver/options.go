package testserver

import (
	"fmt"

	"go.uber.org/zap"
	"golang.org/x/crypto/bcrypt"
)

// MaxMembers is the largest cluster WithMembers accepts.
const MaxMembers = 7

// defaultMembers is the cluster size without WithMembers.
const defaultMembers = 3

// Option configures a Cluster started by Start or New.
type Option func(*options)

type options struct {
	members int
	tls     bool
	auth    bool
	logger  *zap.Logger
	proxies bool
	quota   int64
	bcrypt  int
}

func buildOptions(opts []Option) (options, error) {
	o := options{members: defaultMembers}
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if o.members < 1 || o.members > MaxMembers {
		return o, fmt.Errorf("WithMembers(%d): a cluster has 1 to %d members", o.members, MaxMembers)
	}
	if o.quota < 0 {
		return o, fmt.Errorf("WithQuotaBackendBytes(%d): the quota must be positive", o.quota)
	}
	if o.quota == 0 {
		o.quota = quotaBytes
	}
	if o.bcrypt == 0 {
		o.bcrypt = bcrypt.MinCost
	}
	if o.bcrypt < bcrypt.MinCost || o.bcrypt > bcrypt.MaxCost {
		return o, fmt.Errorf("WithBcryptCost(%d): the cost is %d to %d", o.bcrypt, bcrypt.MinCost, bcrypt.MaxCost)
	}
	if o.logger == nil {
		o.logger = zap.NewNop()
	}
	return o, nil
}

// WithMembers sets the number of members, 1 to MaxMembers (default 3).
// A value out of range makes New return an error and Start fail the test.
func WithMembers(n int) Option {
	return func(o *options) { o.members = n }
}

// WithTLS serves client and peer traffic over HTTPS with certificates from a
// throw-away CA and requires a client certificate on both. Client and
// NewClient are configured with the CA and a client certificate for "root";
// TLS returns the material for other clients.
func WithTLS() Option {
	return func(o *options) { o.tls = true }
}

// WithAuth creates user "root" with a random password and role root, then
// enables authentication. Client and NewClient authenticate as root;
// RootCredentials returns the password.
func WithAuth() Option {
	return func(o *options) { o.auth = true }
}

// WithLogger sends the server logs (and the logs of the clients this package
// creates) to l. The default discards them.
func WithLogger(l *zap.Logger) Option {
	return func(o *options) { o.logger = l }
}

// WithClientProxies starts the TCP proxy of every member during Start
// instead of on the first ProxyEndpoint call. Proxies are always available;
// this option only moves their (small) start-up cost.
func WithClientProxies() Option {
	return func(o *options) { o.proxies = true }
}

// WithQuotaBackendBytes sets every member's backend quota
// (--quota-backend-bytes; default 256 MiB). A member whose database grows
// past it raises etcd's NOSPACE alarm and refuses writes until the alarm is
// disarmed: a small quota is how tests raise a real alarm. A large one lets
// benchmarks hold more data.
func WithQuotaBackendBytes(n int64) Option {
	return func(o *options) { o.quota = n }
}

// WithBcryptCost sets the cost at which the members hash passwords
// (--bcrypt-cost). The default is the lowest, 4, which keeps tests that
// authenticate cheap; benchmarks of authentication pass etcd's own default,
// bcrypt.DefaultCost (10), to pay what a real cluster pays.
func WithBcryptCost(cost int) Option {
	return func(o *options) { o.bcrypt = cost }
}
