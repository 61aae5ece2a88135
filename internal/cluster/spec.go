package cluster

import (
	"errors"
	"fmt"
	"net"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/etcdconf"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/memberhost"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/pki"
)

// Defaults of the cluster-wide settings.
const (
	DefaultClientPort = 2379
	DefaultPeerPort   = 2380
	DefaultInstallDir = memberhost.DefaultInstallDir
	DefaultDataDir    = memberhost.DefaultDataDir
)

// ErrInvalidSpec is wrapped by every *FieldError.
var ErrInvalidSpec = errors.New("invalid cluster specification")

// ErrDuplicateNodeName is wrapped by the *FieldError of a node whose name
// an earlier node has.
var ErrDuplicateNodeName = errors.New("node names must be unique")

// Spec is the desired cluster.
type Spec struct {
	// Name is the cluster's initial-cluster-token and the service name's
	// suffix ("etcd-<name>").
	Name string
	// SSH is how every node is reached; Host is taken from each Node.
	SSH node.SSHConfig
	// Nodes run one member each, in this order.
	Nodes []Node
	// ClientPort and PeerPort default to 2379 and 2380.
	ClientPort int
	PeerPort   int
	// Settings are extra etcd config-file keys (see etcdconf.SettingKeys).
	Settings map[string]string
	// TLS, when set, secures client and peer traffic with client-cert
	// authentication. Nil: plain http.
	TLS *TLS
	// Binary says what runs the member.
	Binary Binary
	// ServiceManager is node.ServiceAuto when empty.
	ServiceManager node.ServiceManager
	// InstallDir and DataDir are the defaults of the per-node directories.
	InstallDir string
	DataDir    string
}

// Node is one machine and its member.
type Node struct {
	// Name is the member name; unique in the cluster.
	Name string
	// Host is the SSH address, optionally with a port ("10.0.0.1:2222")
	// that overrides the cluster-wide SSH port.
	Host string
	// PeerAddress and ClientAddress are the IP addresses the member
	// listens on and advertises; Host when empty (then Host must be an IP
	// address).
	PeerAddress   string
	ClientAddress string
	// InstallDir and DataDir override the cluster-wide ones.
	InstallDir string
	DataDir    string
}

// TLS is the cluster's certificate authority and the client certificate the
// provider (and the user) talk to the cluster with. Member certificates are
// issued from CA as needed and live only on their nodes.
type TLS struct {
	// CA issues the member certificates (and is the CA file's content
	// unless Trust is set).
	CA     *pki.CA
	Client *pki.KeyPair
	// Trust, when set, is the members' CA file instead of CA's certificate:
	// during a CA rotation, the old and the new CA (carotate.go).
	Trust []byte
	// Validity is how long issued member certificates last (pki's default
	// when zero); RenewBefore how long before their expiry they are
	// issued again (memberhost.RenewBefore when zero). See rotate.go.
	Validity    time.Duration
	RenewBefore time.Duration
}

// Binary is what runs a member: the bundled server (a local provider binary
// uploaded to every node) or a binary already on the node.
type Binary struct {
	// LocalPath is a terraform-provider-etcd binary to upload; it runs as
	// "<bin> server --config-file F".
	LocalPath string
	// RemotePath is an etcd binary already on the node (e.g. /usr/bin/etcd);
	// it runs as "<bin> --config-file F". Takes precedence over LocalPath.
	RemotePath string
	// ToolPath, with RemotePath, is a local terraform-provider-etcd binary
	// that operations needing etcd's tools on the nodes (a restore, a
	// recovery from a snapshot, the backup job) upload to the place of the
	// bundled server (memberhost.Layout.Tool) and run as a tool only: the
	// member keeps running RemotePath. Nothing is uploaded without such an
	// operation.
	ToolPath string
}

// FieldError is a problem with one part of a Spec. Attr is the attribute
// name as in the etcd_cluster schema ("nodes", "settings", "ssh", ...), Index
// the node's index for "nodes" (else -1) and Field the node's attribute.
type FieldError struct {
	Attr  string
	Index int
	Field string
	Err   error
}

func (e *FieldError) Error() string {
	where := e.Attr
	if e.Index >= 0 {
		where = fmt.Sprintf("%s[%d]", e.Attr, e.Index)
	}
	if e.Field != "" {
		where += "." + e.Field
	}
	return fmt.Sprintf("%s: %v", where, e.Err)
}

func (e *FieldError) Unwrap() []error { return []error{ErrInvalidSpec, e.Err} }

// NameRE is what a cluster name may be (it becomes the
// initial-cluster-token and part of the service name): letters, digits,
// '.', '_' and '-', starting with a letter or digit.
var NameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

func (s Spec) clientPort() int {
	if s.ClientPort == 0 {
		return DefaultClientPort
	}
	return s.ClientPort
}

func (s Spec) peerPort() int {
	if s.PeerPort == 0 {
		return DefaultPeerPort
	}
	return s.PeerPort
}

func (s Spec) scheme() string {
	if s.TLS != nil {
		return "https"
	}
	return "http"
}

// ServiceName is the name of every member's service ("etcd-<name>").
func (s Spec) ServiceName() string { return "etcd-" + s.Name }

// Validate checks the whole spec without touching any node. The error joins
// one *FieldError per problem.
func (s Spec) Validate() error {
	var errs []error
	bad := func(attr string, index int, field string, err error) {
		errs = append(errs, &FieldError{Attr: attr, Index: index, Field: field, Err: err})
	}
	if !NameRE.MatchString(s.Name) || len(s.Name) > 100 {
		bad("name", -1, "", fmt.Errorf("%q: "+etcdconf.NameRule, s.Name))
	}
	for _, p := range []struct {
		attr string
		v    int
	}{{"client_port", s.ClientPort}, {"peer_port", s.PeerPort}} {
		if p.v < 0 || p.v > 65535 {
			bad(p.attr, -1, "", fmt.Errorf("%d is not a port number", p.v))
		}
	}
	if s.clientPort() == s.peerPort() {
		bad("peer_port", -1, "", fmt.Errorf("client_port and peer_port are both %d", s.peerPort()))
	}
	if err := etcdconf.ValidateSettings(s.Settings); err != nil {
		for _, e := range unjoin(err) {
			bad("settings", -1, "", e)
		}
	}
	switch s.ServiceManager {
	case "", node.ServiceAuto, node.ServiceSystemd, node.ServiceProcess:
	default:
		bad("service_manager", -1, "", fmt.Errorf("%q: use auto, systemd or process", s.ServiceManager))
	}
	if s.Binary.RemotePath != "" && !path.IsAbs(s.Binary.RemotePath) {
		bad("remote_binary", -1, "", fmt.Errorf("%q must be an absolute path", s.Binary.RemotePath))
	}
	if s.Binary.RemotePath == "" && s.Binary.LocalPath == "" {
		bad("binary_path", -1, "", errors.New("no binary: set binary_path or remote_binary"))
	}
	if s.TLS != nil && (s.TLS.CA == nil || s.TLS.Client == nil) {
		bad("tls", -1, "", errors.New("a certificate authority and a client certificate are required"))
	}
	sshCheck := s.SSH
	sshCheck.Host = "node"
	if err := sshCheck.Validate(); err != nil {
		bad("ssh", -1, "", errors.New(strings.Replace(err.Error(), " for "+sshCheck.Addr(), "", 1)))
	}
	if len(s.Nodes) == 0 {
		bad("nodes", -1, "", errors.New("at least one node is required"))
	}
	names := map[string]int{}
	peers := map[string]int{}
	clients := map[string]int{}
	for i, n := range s.Nodes {
		if j, dup := names[n.Name]; dup {
			bad("nodes", i, "name", fmt.Errorf("%q is the name of nodes[%d] too; %w", n.Name, j, ErrDuplicateNodeName))
		}
		names[n.Name] = i
		if !etcdconf.MemberNameRE.MatchString(n.Name) {
			bad("nodes", i, "name", fmt.Errorf("%q: "+etcdconf.NameRule, n.Name))
		}
		if strings.TrimSpace(n.Host) == "" {
			bad("nodes", i, "host", errors.New("host is required"))
		}
		for _, a := range []struct {
			field, v string
			seen     map[string]int
			port     int
		}{{"peer_address", n.peerAddress(), peers, s.peerPort()}, {"client_address", n.clientAddress(), clients, s.clientPort()}} {
			field := a.field
			if (field == "peer_address" && n.PeerAddress == "") || (field == "client_address" && n.ClientAddress == "") {
				field = "host"
			}
			if net.ParseIP(a.v) == nil {
				bad("nodes", i, field, fmt.Errorf("%q is not an IP address: etcd binds to IP addresses; set %s", a.v, a.field))
				continue
			}
			key := net.JoinHostPort(a.v, strconv.Itoa(a.port))
			if j, dup := a.seen[key]; dup {
				bad("nodes", i, field, fmt.Errorf("%s is used by nodes[%d] too", key, j))
			}
			a.seen[key] = i
		}
		l := s.layout(n)
		for _, d := range []struct{ field, v string }{{"install_dir", l.InstallDir}, {"data_dir", l.DataDir}} {
			if !node.DeepPath(d.v) {
				bad("nodes", i, d.field, fmt.Errorf("%q must be an absolute path at least two levels deep (e.g. /var/lib/etcd)", d.v))
			}
		}
		if strings.HasPrefix(path.Clean(l.DataDir)+"/", path.Clean(l.InstallDir)+"/") || strings.HasPrefix(path.Clean(l.InstallDir)+"/", path.Clean(l.DataDir)+"/") {
			bad("nodes", i, "data_dir", fmt.Errorf("data dir %s and install dir %s must not contain each other", l.DataDir, l.InstallDir))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// Rendering validates the URLs and TLS sections as etcd would see them.
	for i, n := range s.Nodes {
		if _, err := s.render(n, s.bootstrapCluster(), etcdconf.StateNew); err != nil {
			bad("nodes", i, "", err)
		}
	}
	return errors.Join(errs...)
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// sshAddr splits Host into the address and an optional port ("10.0.0.1",
// "10.0.0.1:2222", "[fd00::1]:22"); port is 0 when Host has none.
func (n Node) sshAddr() (host string, port int) { return node.SplitAddress(n.Host) }

func (n Node) peerAddress() string {
	if n.PeerAddress != "" {
		return n.PeerAddress
	}
	h, _ := n.sshAddr()
	return h
}

func (n Node) clientAddress() string {
	if n.ClientAddress != "" {
		return n.ClientAddress
	}
	h, _ := n.sshAddr()
	return h
}

// PeerAddressOrHost is the address the member's peer URL carries.
func (n Node) PeerAddressOrHost() string { return n.peerAddress() }

// sshConfig is how to reach n.
func (s Spec) sshConfig(n Node) node.SSHConfig {
	return s.SSH.At(n.Host)
}

// PeerURL is the member's peer URL.
func (s Spec) PeerURL(n Node) string {
	return s.scheme() + "://" + net.JoinHostPort(n.peerAddress(), strconv.Itoa(s.peerPort()))
}

// ClientURL is the member's client URL.
func (s Spec) ClientURL(n Node) string {
	return s.scheme() + "://" + net.JoinHostPort(n.clientAddress(), strconv.Itoa(s.clientPort()))
}

// Endpoints are the client URLs of every node, in node order.
func (s Spec) Endpoints() []string {
	out := make([]string, len(s.Nodes))
	for i, n := range s.Nodes {
		out[i] = s.ClientURL(n)
	}
	return out
}

// Node returns the node named name.
func (s Spec) Node(name string) (Node, bool) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// Layout returns the paths of n's member.
func (s Spec) Layout(n Node) memberhost.Layout { return s.layout(n) }

func (s Spec) layout(n Node) memberhost.Layout {
	return memberhost.NewLayout(
		path.Clean(firstOf(n.InstallDir, s.InstallDir, DefaultInstallDir)),
		path.Clean(firstOf(n.DataDir, s.DataDir, DefaultDataDir)),
		s.Binary.RemotePath)
}

func firstOf(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// bootstrapCluster is initial-cluster for a cluster created from s.
func (s Spec) bootstrapCluster() []etcdconf.Member {
	out := make([]etcdconf.Member, len(s.Nodes))
	for i, n := range s.Nodes {
		out[i] = etcdconf.Member{Name: n.Name, PeerURLs: []string{s.PeerURL(n)}}
	}
	return out
}

// render returns n's config file with the given initial cluster.
func (s Spec) render(n Node, initial []etcdconf.Member, state string) ([]byte, error) {
	return s.layout(n).Render(etcdconf.Config{
		Name:                n.Name,
		ListenPeerURLs:      []string{s.PeerURL(n)},
		AdvertisePeerURLs:   []string{s.PeerURL(n)},
		ListenClientURLs:    []string{s.ClientURL(n)},
		AdvertiseClientURLs: []string{s.ClientURL(n)},
		InitialCluster:      initial,
		InitialClusterState: state,
		InitialClusterToken: s.Name,
		Settings:            s.Settings,
	}, s.TLS != nil)
}

// serviceSpec is n's service.
func (s Spec) serviceSpec(n Node) node.ServiceSpec {
	return s.layout(n).Service(s.ServiceName(), fmt.Sprintf("etcd member %s of cluster %s", n.Name, s.Name))
}

// certHosts are the SANs of n's member certificates: its addresses, the SSH
// host, and loopback (etcd checks a peer's source address against the
// peer certificate, and members on one machine talk over loopback).
func (s Spec) certHosts(n Node) []string {
	h, _ := n.sshAddr()
	hosts := []string{n.peerAddress(), n.clientAddress(), h}
	return append(hosts, pki.LocalHosts...)
}
