// Package client turns the provider configuration into one connected etcd
// client and translates etcd errors into messages a Terraform user can act on.
//
// It is plain Go: nothing here imports Terraform packages, so everything is
// tested without a Terraform CLI.
package client

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Attribute names of the provider schema. Errors carry them so that the
// provider can attach a diagnostic to the right attribute.
const (
	AttrEndpoints             = "endpoints"
	AttrUsername              = "username"
	AttrPassword              = "password"
	AttrCACert                = "ca_cert"
	AttrCert                  = "cert"
	AttrKey                   = "key"
	AttrInsecureSkipTLSVerify = "insecure_skip_tls_verify"
	AttrDialTimeout           = "dial_timeout"
	AttrRequestTimeout        = "request_timeout"
)

// Environment variables read when an attribute is not set. They are the ones
// etcdctl reads, so a shell already set up for etcdctl works unchanged.
const (
	EnvEndpoints             = "ETCDCTL_ENDPOINTS"
	EnvUser                  = "ETCDCTL_USER"
	EnvPassword              = "ETCDCTL_PASSWORD"
	EnvCACert                = "ETCDCTL_CACERT"
	EnvCert                  = "ETCDCTL_CERT"
	EnvKey                   = "ETCDCTL_KEY"
	EnvInsecureSkipTLSVerify = "ETCDCTL_INSECURE_SKIP_TLS_VERIFY"
	EnvDialTimeout           = "ETCDCTL_DIAL_TIMEOUT"
	EnvCommandTimeout        = "ETCDCTL_COMMAND_TIMEOUT"
)

// Defaults used when neither an attribute nor its environment variable is set.
const (
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 10 * time.Second
)

// Config is the provider configuration as the user wrote it. A zero value
// (empty string, nil slice, nil pointer, zero duration) means "not set", in
// which case the matching ETCDCTL_* environment variable is consulted.
type Config struct {
	Endpoints []string
	Username  string
	Password  string
	// CACert, Cert and Key each hold PEM content or a path to a PEM file.
	CACert                string
	Cert                  string
	Key                   string
	InsecureSkipTLSVerify *bool
	DialTimeout           time.Duration
	RequestTimeout        time.Duration

	// LookupEnv reads an environment variable; nil means os.LookupEnv.
	// Tests inject a map-backed function here.
	LookupEnv func(string) (string, bool)
}

// Source tells where a resolved setting came from, for error messages.
type Source struct {
	Attribute string // provider attribute the setting belongs to
	Env       string // environment variable it was read from; "" if from the configuration
}

func (s Source) String() string {
	if s.Env != "" {
		return fmt.Sprintf("%s (from %s)", s.Attribute, s.Env)
	}
	return s.Attribute
}

// Settings is a validated configuration, ready to connect. Build it with
// Config.Resolve; it holds secrets, so never log it (String redacts them).
type Settings struct {
	Endpoints       []string
	EndpointsSource Source
	Username        string
	UsernameSource  Source
	password        string
	TLS             *TLSFiles // nil when no TLS option is set
	DialTimeout     time.Duration
	RequestTimeout  time.Duration
	fingerprint     [sha256.Size]byte
}

// Fingerprint identifies the settings: equal fingerprints mean connections
// with identical endpoints, credentials, TLS material and timeouts. It is a
// hash, so it reveals no secret.
func (s *Settings) Fingerprint() [sha256.Size]byte { return s.fingerprint }

func (s *Settings) computeFingerprint() {
	h := sha256.New()
	field := func(b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	for _, ep := range s.Endpoints {
		field([]byte(ep))
	}
	field(nil)
	field([]byte(s.Username))
	field([]byte(s.password))
	if s.TLS != nil {
		field([]byte("tls"))
		field(s.TLS.caPEM)
		field(s.TLS.certPEM)
		field(s.TLS.keyPEM)
		field([]byte(strconv.FormatBool(s.TLS.InsecureSkipVerify)))
	}
	field([]byte(s.DialTimeout.String()))
	field([]byte(s.RequestTimeout.String()))
	h.Sum(s.fingerprint[:0])
}

// String describes the settings without the password or private key.
func (s *Settings) String() string {
	user := "none"
	if s.Username != "" {
		user = strconv.Quote(s.Username)
	}
	return fmt.Sprintf("endpoints=%s user=%s tls=%t dial_timeout=%s request_timeout=%s",
		strings.Join(s.Endpoints, ","), user, s.TLS != nil, s.DialTimeout, s.RequestTimeout)
}

// Resolve applies the environment fallbacks, reads certificate files, checks
// every value and returns settings ready for Open. Every error is a
// *ConfigError naming the attribute (and environment variable) at fault.
func (c Config) Resolve() (*Settings, error) {
	env := c.LookupEnv
	if env == nil {
		env = os.LookupEnv
	}
	lookup := func(name string) (string, bool) {
		v, ok := env(name)
		if !ok || strings.TrimSpace(v) == "" {
			return "", false
		}
		return strings.TrimSpace(v), true
	}

	s := &Settings{}

	// Endpoints.
	s.Endpoints, s.EndpointsSource = c.Endpoints, Source{Attribute: AttrEndpoints}
	if len(c.Endpoints) == 0 {
		if v, ok := lookup(EnvEndpoints); ok {
			s.Endpoints, s.EndpointsSource.Env = splitList(v), EnvEndpoints
		}
	}
	if len(s.Endpoints) == 0 {
		return nil, &ConfigError{Source: s.EndpointsSource,
			Err: fmt.Errorf("no etcd endpoints: set endpoints in the provider block or %s (comma-separated), e.g. https://10.0.0.1:2379", EnvEndpoints)}
	}
	for i, ep := range s.Endpoints {
		if err := ValidateEndpoint(ep); err != nil {
			return nil, &ConfigError{Source: s.EndpointsSource, Index: i, HasIndex: true, Err: err}
		}
	}

	// Credentials, following etcdctl: with a password given separately the
	// user name is taken as is; otherwise "user:password" is split.
	passSrc := Source{Attribute: AttrPassword}
	password := c.Password
	if password == "" {
		if v, ok := env(EnvPassword); ok && v != "" {
			password, passSrc.Env = v, EnvPassword
		}
	}
	s.UsernameSource = Source{Attribute: AttrUsername}
	s.Username = c.Username
	if s.Username == "" {
		if v, ok := lookup(EnvUser); ok {
			s.Username, s.UsernameSource.Env = v, EnvUser
			if password == "" {
				if name, pass, found := strings.Cut(v, ":"); found {
					s.Username, password = name, pass
					passSrc = Source{Attribute: AttrPassword, Env: EnvUser}
				}
			}
		}
	}
	switch {
	case s.Username != "" && password == "":
		return nil, &ConfigError{Source: passSrc,
			Err: fmt.Errorf("user %q is set by %s but no password is: set password or %s (or %s=user:password)", s.Username, s.UsernameSource, EnvPassword, EnvUser)}
	case s.Username == "" && password != "":
		return nil, &ConfigError{Source: s.UsernameSource,
			Err: fmt.Errorf("a password is set by %s but no user name is: set username or %s", passSrc, EnvUser)}
	}
	s.password = password

	// TLS.
	tlsFiles, err := c.resolveTLS(lookup)
	if err != nil {
		return nil, err
	}
	s.TLS = tlsFiles
	if s.TLS != nil {
		for i, ep := range s.Endpoints {
			if strings.HasPrefix(ep, "http://") || strings.HasPrefix(ep, "unix://") {
				return nil, &ConfigError{Source: s.EndpointsSource, Index: i, HasIndex: true,
					Err: fmt.Errorf("endpoint %q is plain text but TLS settings are given (%s); use https:// (or unixs://) so they are not silently ignored", ep, s.TLS.describe())}
			}
		}
	}

	// Timeouts.
	if s.DialTimeout, err = resolveDuration(c.DialTimeout, AttrDialTimeout, EnvDialTimeout, DefaultDialTimeout, lookup); err != nil {
		return nil, err
	}
	if s.RequestTimeout, err = resolveDuration(c.RequestTimeout, AttrRequestTimeout, EnvCommandTimeout, DefaultRequestTimeout, lookup); err != nil {
		return nil, err
	}
	s.computeFingerprint()
	return s, nil
}

func resolveDuration(v time.Duration, attr, envName string, def time.Duration, lookup func(string) (string, bool)) (time.Duration, error) {
	if v < 0 {
		return 0, &ConfigError{Source: Source{Attribute: attr}, Err: fmt.Errorf("must be positive, got %s", v)}
	}
	if v > 0 {
		return v, nil
	}
	raw, ok := lookup(envName)
	if !ok {
		return def, nil
	}
	d, err := ParseTimeout(raw)
	if err != nil {
		return 0, &ConfigError{Source: Source{Attribute: attr, Env: envName}, Err: err}
	}
	return d, nil
}

// ParseTimeout parses a positive Go duration such as "2s" or "1m30s", the
// format etcdctl uses for --dial-timeout and --command-timeout.
func ParseTimeout(raw string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(raw))
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: use a number with a unit, e.g. \"5s\", \"500ms\" or \"1m\"", raw)
	}
	if d <= 0 {
		return 0, fmt.Errorf("%q must be a positive duration, e.g. \"5s\"", raw)
	}
	return d, nil
}

// ValidateEndpoint checks one endpoint the way clientv3 will use it:
// scheme://host:port with scheme http, https, unix or unixs, or a bare
// host:port.
func ValidateEndpoint(ep string) error {
	if strings.TrimSpace(ep) == "" {
		return fmt.Errorf("endpoint is empty: use scheme://host:port, e.g. https://10.0.0.1:2379")
	}
	if ep != strings.TrimSpace(ep) {
		return fmt.Errorf("endpoint %q has leading or trailing spaces", ep)
	}
	if !strings.Contains(ep, "://") {
		if strings.HasPrefix(ep, "unix:") || strings.HasPrefix(ep, "unixs:") {
			return nil
		}
		if _, err := url.Parse("http://" + ep); err != nil || !strings.Contains(ep, ":") {
			return fmt.Errorf("endpoint %q is not host:port or scheme://host:port, e.g. https://10.0.0.1:2379", ep)
		}
		return nil
	}
	u, err := url.Parse(ep)
	if err != nil {
		return fmt.Errorf("endpoint %q is not a URL: %v", ep, err)
	}
	switch u.Scheme {
	case "http", "https":
		if u.Host == "" {
			return fmt.Errorf("endpoint %q has no host: use %s://host:port", ep, u.Scheme)
		}
		if u.Path != "" && u.Path != "/" {
			return fmt.Errorf("endpoint %q has a path (%q); etcd endpoints are scheme://host:port only", ep, u.Path)
		}
	case "unix", "unixs":
	default:
		return fmt.Errorf("endpoint %q has scheme %q; use http, https, unix or unixs", ep, u.Scheme)
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
