// Package etcdconf renders one etcd member's configuration in etcd's own
// config-file format, the YAML read by `etcd --config-file` and by
// embed.ConfigFromFile, so the same file drives the provider's bundled server
// and a stock etcd binary.
//
// The keys a cluster resource owns (name, data dir, URLs, initial cluster,
// TLS) are fields of Config; everything else goes through Settings, whose
// keys are checked against the keys embed.Config accepts (derived by
// reflection from its json tags, so the list follows the etcd version in
// go.mod) before anything is rendered.
package etcdconf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Initial cluster states.
const (
	// StateNew bootstraps a new cluster: every member in InitialCluster
	// starts with this state and the same token.
	StateNew = "new"
	// StateExisting joins a running cluster. A member that was added with
	// MemberAdd must start with it (and an empty data dir), or it mints a
	// new member ID and the cluster rejects it ("member ID mismatch").
	StateExisting = "existing"
)

// Sentinel errors; the errors returned wrap one of them.
var (
	ErrInvalidConfig  = errors.New("invalid etcd configuration")
	ErrUnknownSetting = errors.New("unknown etcd setting")
	ErrManagedSetting = errors.New("setting is managed by the resource")
	ErrInvalidValue   = errors.New("invalid setting value")
)

// Member is one entry of initial-cluster.
type Member struct {
	Name     string
	PeerURLs []string
}

// TLS is a client-transport-security or peer-transport-security section.
type TLS struct {
	CertFile       string
	KeyFile        string
	TrustedCAFile  string
	ClientCertAuth bool
}

// Config is one member's configuration.
type Config struct {
	Name    string
	DataDir string

	ListenPeerURLs      []string
	ListenClientURLs    []string
	AdvertisePeerURLs   []string // initial-advertise-peer-urls
	AdvertiseClientURLs []string

	InitialCluster      []Member
	InitialClusterState string // StateNew or StateExisting
	InitialClusterToken string

	ClientTLS *TLS
	PeerTLS   *TLS

	// Settings are extra config-file keys, e.g. "snapshot-count": "10000".
	// Values are strings and converted to the key's type: booleans,
	// integers, durations ("5s"; written as nanoseconds as etcd expects),
	// and comma-separated lists.
	Settings map[string]string
}

// MemberNameRE is what a member name (etcd's --name) may be: letters,
// digits, '.', '_' and '-', starting with a letter or digit. Every check of
// a member name (config files, etcd_member, etcd_cluster's nodes) uses it.
var MemberNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// NameRule says what MemberNameRE (and cluster names) allow, for errors.
const NameRule = "use letters, digits, '.', '_' and '-', starting with a letter or digit"

// Validate checks c without rendering it. All problems are reported, joined.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: "+format, append([]any{ErrInvalidConfig}, args...)...))
	}
	if !MemberNameRE.MatchString(c.Name) {
		bad("name %q: "+NameRule, c.Name)
	}
	if c.DataDir == "" || !strings.HasPrefix(c.DataDir, "/") {
		bad("data dir %q must be an absolute path", c.DataDir)
	}
	checkURLs := func(what string, urls []string, tls *TLS, bind bool) {
		if len(urls) == 0 {
			bad("%s: at least one URL is required", what)
		}
		for _, s := range urls {
			u, err := url.Parse(s)
			if err != nil || u.Host == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") {
				bad("%s: %q is not a URL of the form scheme://host:port", what, s)
				continue
			}
			if bind && u.Hostname() != "localhost" && net.ParseIP(u.Hostname()) == nil {
				bad("%s: %q: etcd binds listen URLs to an IP address (or localhost), not a host name", what, s)
			}
			switch u.Scheme {
			case "http":
			case "https":
				if tls == nil {
					bad("%s: %q uses https but no TLS section is configured", what, s)
				}
			default:
				bad("%s: %q: scheme must be http or https", what, s)
			}
		}
	}
	checkURLs("listen-peer-urls", c.ListenPeerURLs, c.PeerTLS, true)
	checkURLs("initial-advertise-peer-urls", c.AdvertisePeerURLs, c.PeerTLS, false)
	checkURLs("listen-client-urls", c.ListenClientURLs, c.ClientTLS, true)
	checkURLs("advertise-client-urls", c.AdvertiseClientURLs, c.ClientTLS, false)

	switch c.InitialClusterState {
	case StateNew, StateExisting:
	default:
		bad("initial-cluster-state %q: must be %q or %q", c.InitialClusterState, StateNew, StateExisting)
	}
	if c.InitialClusterToken == "" {
		bad("initial-cluster-token is required")
	}
	self := false
	seen := map[string]bool{}
	for _, m := range c.InitialCluster {
		if !MemberNameRE.MatchString(m.Name) {
			bad("initial-cluster: member name %q is invalid", m.Name)
		}
		if seen[m.Name] {
			bad("initial-cluster: member %q listed twice", m.Name)
		}
		seen[m.Name] = true
		checkURLs("initial-cluster member "+m.Name, m.PeerURLs, c.PeerTLS, false)
		if m.Name == c.Name {
			self = true
			if strings.Join(sortedCopy(m.PeerURLs), ",") != strings.Join(sortedCopy(c.AdvertisePeerURLs), ",") {
				bad("initial-cluster lists %s with %v but its initial-advertise-peer-urls are %v; they must match", m.Name, m.PeerURLs, c.AdvertisePeerURLs)
			}
		}
	}
	if !self {
		bad("initial-cluster must include this member (%q)", c.Name)
	}
	for _, t := range []struct {
		name string
		tls  *TLS
	}{{"client-transport-security", c.ClientTLS}, {"peer-transport-security", c.PeerTLS}} {
		if t.tls == nil {
			continue
		}
		if t.tls.CertFile == "" || t.tls.KeyFile == "" {
			bad("%s: cert-file and key-file are required", t.name)
		}
		if t.tls.ClientCertAuth && t.tls.TrustedCAFile == "" {
			bad("%s: client-cert-auth needs trusted-ca-file", t.name)
		}
	}
	if err := ValidateSettings(c.Settings); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func sortedCopy(s []string) []string {
	c := append([]string(nil), s...)
	sort.Strings(c)
	return c
}

// SettingError describes one rejected settings entry.
type SettingError struct {
	Key         string
	Err         error // ErrUnknownSetting, ErrManagedSetting or ErrInvalidValue
	Detail      string
	Suggestions []string // close matches for an unknown key
}

func (e *SettingError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "settings[%q]: %v", e.Key, e.Err)
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	if len(e.Suggestions) > 0 {
		fmt.Fprintf(&b, "; did you mean %s?", quoteJoin(e.Suggestions))
	}
	return b.String()
}

func (e *SettingError) Unwrap() error { return e.Err }

func quoteJoin(s []string) string {
	q := make([]string, len(s))
	for i, v := range s {
		q[i] = strconv.Quote(v)
	}
	if len(q) == 1 {
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " or " + q[len(q)-1]
}

// ValidateSettings checks every key and value; the error joins one
// *SettingError per bad entry, in key order.
func ValidateSettings(settings map[string]string) error {
	_, err := convertSettings(settings)
	return err
}

// NormalizeSettings returns settings with every value in canonical form
// (e.g. "1m0s" for "60s", "true" for "1"), as Parse reports them, so a caller
// can compare configured and deployed settings.
func NormalizeSettings(settings map[string]string) (map[string]string, error) {
	conv, err := convertSettings(settings)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(conv))
	for k, v := range conv {
		out[k] = canonical(allKeys[k], v)
	}
	return out, nil
}

func convertSettings(settings map[string]string) (map[string]any, error) {
	loadKeys()
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make(map[string]any, len(settings))
	var errs []error
	for _, k := range keys {
		if field, ok := managedKeys[k]; ok {
			errs = append(errs, &SettingError{Key: k, Err: ErrManagedSetting,
				Detail: fmt.Sprintf("it is derived from the cluster and node attributes (%s); remove it from settings", field)})
			continue
		}
		if why, ok := refusedKeys[k]; ok {
			errs = append(errs, &SettingError{Key: k, Err: ErrManagedSetting, Detail: why})
			continue
		}
		info, ok := allKeys[k]
		if !ok {
			detail := "not a key of etcd's config file"
			if known[k] {
				detail = "a structured key that cannot be given as a single value"
			}
			errs = append(errs, &SettingError{Key: k, Err: ErrUnknownSetting, Detail: detail, Suggestions: suggest(k)})
			continue
		}
		v, err := convert(info, settings[k])
		if err != nil {
			errs = append(errs, &SettingError{Key: k, Err: ErrInvalidValue,
				Detail: fmt.Sprintf("%q is not %s", settings[k], info.kind)})
			continue
		}
		if check, ok := valueChecks[k]; ok {
			if err := check(settings[k]); err != nil {
				errs = append(errs, &SettingError{Key: k, Err: ErrInvalidValue, Detail: err.Error()})
				continue
			}
		}
		out[k] = v
	}
	return out, errors.Join(errs...)
}

// valueChecks validate values etcd would otherwise die on at start (it
// panics or exits on a malformed URL in these keys).
var valueChecks = map[string]func(string) error{
	"listen-client-http-urls": urlList(true, false),
	"listen-metrics-urls":     urlList(true, false),
	"cors":                    urlList(false, true),
}

func urlList(bind, star bool) func(string) error {
	return func(s string) error {
		for _, p := range strings.Split(s, ",") {
			p = strings.TrimSpace(p)
			if p == "" || (star && p == "*") {
				continue
			}
			u, err := url.Parse(p)
			if err != nil || u.Scheme == "" || u.Host == "" || u.Port() == "" {
				return fmt.Errorf("%q is not a URL of the form scheme://host:port", p)
			}
			if bind && u.Hostname() != "localhost" && net.ParseIP(u.Hostname()) == nil {
				return fmt.Errorf("%q: etcd binds to an IP address (or localhost), not a host name", p)
			}
		}
		return nil
	}
}

func convert(info keyInfo, s string) (any, error) {
	s = strings.TrimSpace(s)
	switch info.kind {
	case kindBool:
		return strconv.ParseBool(s)
	case kindInt:
		return strconv.ParseInt(s, 10, info.bits)
	case kindUint:
		return strconv.ParseUint(s, 10, info.bits)
	case kindFloat:
		return strconv.ParseFloat(s, info.bits)
	case kindDuration:
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, nil
		}
		d, err := time.ParseDuration(s)
		return int64(d), err
	case kindStrings:
		var list []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				list = append(list, p)
			}
		}
		if list == nil {
			list = []string{}
		}
		return list, nil
	default:
		return s, nil
	}
}

func canonical(info keyInfo, v any) string {
	switch x := v.(type) {
	case []string:
		return strings.Join(x, ",")
	case int64:
		if info.kind == kindDuration {
			return time.Duration(x).String()
		}
		return strconv.FormatInt(x, 10)
	case uint64:
		return strconv.FormatUint(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, info.bits)
	case bool:
		return strconv.FormatBool(x)
	case string:
		return x
	}
	return fmt.Sprint(v)
}

// Render validates c and returns the config file. Output is deterministic:
// managed keys in a fixed order, then settings sorted by key.
func Render(c Config) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	settings, _ := convertSettings(c.Settings)

	var b bytes.Buffer
	fmt.Fprintf(&b, "# etcd configuration for member %s, written by terraform-provider-etcd.\n", c.Name)
	b.WriteString("# Format: etcd --config-file (https://etcd.io/docs/latest/op-guide/configuration/).\n")
	kv := func(indent, k string, v any) {
		fmt.Fprintf(&b, "%s%s: %s\n", indent, k, yamlValue(v))
	}
	kv("", "name", c.Name)
	kv("", "data-dir", c.DataDir)
	kv("", "listen-peer-urls", strings.Join(c.ListenPeerURLs, ","))
	kv("", "listen-client-urls", strings.Join(c.ListenClientURLs, ","))
	kv("", "initial-advertise-peer-urls", strings.Join(c.AdvertisePeerURLs, ","))
	kv("", "advertise-client-urls", strings.Join(c.AdvertiseClientURLs, ","))
	kv("", "initial-cluster", InitialClusterString(c.InitialCluster))
	kv("", "initial-cluster-state", c.InitialClusterState)
	kv("", "initial-cluster-token", c.InitialClusterToken)
	for _, sec := range []struct {
		key string
		tls *TLS
	}{{"client-transport-security", c.ClientTLS}, {"peer-transport-security", c.PeerTLS}} {
		if sec.tls == nil {
			continue
		}
		b.WriteString(sec.key + ":\n")
		kv("  ", "cert-file", sec.tls.CertFile)
		kv("  ", "key-file", sec.tls.KeyFile)
		if sec.tls.TrustedCAFile != "" {
			kv("  ", "trusted-ca-file", sec.tls.TrustedCAFile)
		}
		kv("  ", "client-cert-auth", sec.tls.ClientCertAuth)
	}
	if len(settings) > 0 {
		b.WriteString("# settings\n")
		keys := make([]string, 0, len(settings))
		for k := range settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			kv("", k, settings[k])
		}
	}
	return b.Bytes(), nil
}

// InitialClusterString formats members as etcd's initial-cluster value:
// "a=https://10.0.0.1:2380,b=https://10.0.0.2:2380".
func InitialClusterString(members []Member) string {
	var parts []string
	for _, m := range members {
		for _, u := range m.PeerURLs {
			parts = append(parts, m.Name+"="+u)
		}
	}
	return strings.Join(parts, ",")
}

// yamlValue writes v as a YAML flow value. JSON is used for scalars and
// lists: a JSON string is a valid YAML double-quoted scalar, so no value can
// turn into YAML syntax (e.g. "yes", ": ", "#").
func yamlValue(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // only strings, numbers, bools and []string reach here
	}
	return strings.TrimSpace(b.String())
}
