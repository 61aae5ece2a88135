package cluster

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/etcdconf"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/memberhost"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/pki"
)

// NodeError is a failure on one node.
type NodeError struct {
	Node string
	Host string
	Err  error
}

func (e *NodeError) Error() string { return fmt.Sprintf("node %q (%s): %v", e.Node, e.Host, e.Err) }
func (e *NodeError) Unwrap() error { return e.Err }

func nodeErr(n Node, err error) error {
	if err == nil {
		return nil
	}
	var ne *NodeError
	if errors.As(err, &ne) && ne.Node == n.Name {
		return err
	}
	return &NodeError{Node: n.Name, Host: n.Host, Err: err}
}

// Progress receives progress messages (the resource logs them with tflog).
type Progress func(msg string, fields map[string]any)

// Cluster runs operations for one Spec. It caches one SSH connection per
// node; Close closes them.
type Cluster struct {
	spec Spec
	log  Progress

	mu    sync.Mutex
	conns map[string]*node.Client

	hashOnce sync.Once
	binHash  string
	hashErr  error

	// versions is ApplyOptions.Versions during an Apply (see upgrade.go).
	versions map[string]string
}

// Option configures New.
type Option func(*Cluster)

// WithProgress sets where progress messages go.
func WithProgress(p Progress) Option { return func(c *Cluster) { c.log = p } }

// New returns a Cluster for spec; nothing is contacted yet.
func New(spec Spec, opts ...Option) *Cluster {
	c := &Cluster{spec: spec, log: func(string, map[string]any) {}, conns: map[string]*node.Client{}}
	for _, o := range opts {
		o(c)
	}
	return c
}

// Close closes every SSH connection.
func (c *Cluster) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for k, cl := range c.conns {
		errs = append(errs, cl.Close())
		delete(c.conns, k)
	}
	return errors.Join(errs...)
}

func (c *Cluster) progress(msg string, kv ...any) {
	f := map[string]any{"cluster": c.spec.Name}
	for i := 0; i+1 < len(kv); i += 2 {
		f[fmt.Sprint(kv[i])] = kv[i+1]
	}
	c.log(msg, f)
}

// conn returns the SSH connection to n, dialing it once.
func (c *Cluster) conn(ctx context.Context, n Node) (*node.Client, error) {
	c.mu.Lock()
	cl, ok := c.conns[n.Name]
	c.mu.Unlock()
	if ok {
		return cl, nil
	}
	cl, err := node.Dial(ctx, c.spec.sshConfig(n))
	if err != nil {
		return nil, nodeErr(n, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if prev, ok := c.conns[n.Name]; ok {
		_ = cl.Close()
		return prev, nil
	}
	c.conns[n.Name] = cl
	return cl, nil
}

// dropConn forgets a connection that failed (the host may come back).
func (c *Cluster) dropConn(n Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.conns[n.Name]; ok {
		_ = cl.Close()
		delete(c.conns, n.Name)
	}
}

// parallel runs f for every node at once and joins the errors, each naming
// its node.
func parallel(nodes []Node, f func(n Node) error) error {
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = nodeErr(n, f(n))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Connect dials every node of the spec in parallel (ssh only, nothing is
// changed). The error joins one *NodeError per node that failed.
func (c *Cluster) Connect(ctx context.Context) error {
	return c.connect(ctx, c.spec.Nodes)
}

func (c *Cluster) connect(ctx context.Context, nodes []Node) error {
	return parallel(nodes, func(n Node) error {
		_, err := c.conn(ctx, n)
		return err
	})
}

// watchdog guards a long transfer to n: a lost link (a node that powered
// off) does not close a TCP connection, and a write into it would block for
// many minutes. Every 2s it dials n's SSH port; after two failures in a row
// it closes n's SSH connection, which fails whatever is blocked on it. The
// returned stop function ends the watch and returns the reason it fired,
// nil if it did not.
func (c *Cluster) watchdog(ctx context.Context, n Node) (stop func() error) {
	cfg := c.spec.sshConfig(n)
	if cfg.Bastion != nil {
		return func() error { return nil } // not reachable directly
	}
	done := make(chan struct{})
	var fired error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		fails := 0
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-time.After(2 * time.Second):
			}
			d := net.Dialer{Timeout: 3 * time.Second}
			conn, err := d.DialContext(ctx, "tcp", cfg.Addr())
			if err != nil {
				if fails++; fails >= 2 {
					fired = fmt.Errorf("the node stopped answering on %s (%v): lost contact", cfg.Addr(), err)
					c.dropConn(n)
					return
				}
				continue
			}
			_ = conn.Close()
			fails = 0
		}
	}()
	return func() error {
		close(done)
		wg.Wait()
		return fired
	}
}

// nodeState is what is on a node before anything is changed.
type nodeState struct {
	n    Node
	cl   *node.Client
	svc  node.Service
	data node.DataDirState
	// conf is the member's config file on the node, nil if there is none.
	conf *etcdconf.Config
	// running: the service's member process runs.
	running bool
	// certsValid: the node's certificates chain to the spec's CA and cover
	// the member's addresses.
	certsValid bool
	// files holds the config file ("config") and certificates on the node.
	files map[string][]byte
	// renewed: startAll gave the member new certificates (rotate.go).
	renewed bool
	// platform is the node's OS and CPU (uname); platformErr when uname's
	// answer is not one the provider knows.
	platform    node.Platform
	platformErr error
}

// probe inspects n without changing anything, in two SSH round trips (one
// script for the platform, service manager, data dir, config file and
// certificates; one for the service status): on a loaded machine every
// session costs.
func (c *Cluster) probe(ctx context.Context, n Node) (*nodeState, error) {
	cl, err := c.conn(ctx, n)
	if err != nil {
		return nil, err
	}
	st := &nodeState{n: n, cl: cl, files: map[string][]byte{}}
	l := c.spec.layout(n)
	var b strings.Builder
	b.WriteString("echo '==uname=='; uname -s; uname -m\n")
	b.WriteString("echo '==manager=='; " + node.ServiceManagerScript + "\n")
	fmt.Fprintf(&b, "echo '==binary=='; if [ -x %s ] && [ -f %[1]s ]; then echo executable; fi\n", node.Quote(l.Binary))
	b.WriteString("echo '==data=='\n" + node.DataDirScript(l.DataDir))
	files := map[string]string{"config": l.Config}
	if c.spec.TLS != nil {
		for _, f := range memberhost.PKIFiles {
			files[f] = path.Join(l.PKIDir, f)
		}
	}
	for name, p := range files {
		fmt.Fprintf(&b, "echo '==file %s=='; if [ -f %s ]; then base64 < %[2]s | tr -d '\\n'; fi; echo\n", name, node.Quote(p))
	}
	out, err := cl.Run(ctx, b.String())
	if err != nil {
		return nil, err
	}
	sections := map[string][]string{}
	var cur string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "==") && strings.HasSuffix(line, "==") && len(line) > 4 {
			cur = strings.Trim(line, "=")
			continue
		}
		if strings.TrimSpace(line) != "" {
			sections[cur] = append(sections[cur], strings.TrimSpace(line))
		}
	}
	st.platformErr = fmt.Errorf("uname printed %q", sections["uname"])
	if u := sections["uname"]; len(u) == 2 {
		st.platform, st.platformErr = node.ParseUname(u[0], u[1])
	}
	if c.spec.Binary.RemotePath != "" {
		if len(sections["binary"]) == 0 {
			return nil, fmt.Errorf("remote_binary %s is not an executable file on the node", l.Binary)
		}
	} else if u := sections["uname"]; len(u) == 2 {
		p, perr := st.platform, st.platformErr
		if err := node.CheckBinary(c.spec.Binary.LocalPath, p); err != nil {
			if perr != nil {
				err = fmt.Errorf("%w (%v)", err, perr)
			}
			return nil, err
		}
	}
	manager := c.spec.ServiceManager
	if manager == "" || manager == node.ServiceAuto {
		if m := sections["manager"]; len(m) == 1 {
			manager = node.ServiceManager(m[0])
		}
	}
	st.data = node.ParseDataDir(strings.Join(sections["data"], "\n"))
	for name := range files {
		if v := sections["file "+name]; len(v) == 1 {
			if data, err := base64.StdEncoding.DecodeString(v[0]); err == nil {
				st.files[name] = data
			}
		}
	}
	if conf, ok := st.files["config"]; ok && len(conf) > 0 {
		if parsed, err := etcdconf.Parse(conf); err == nil {
			st.conf = &parsed
		}
	}
	if c.spec.TLS != nil {
		st.certsValid = c.remoteCertsValid(st)
	}
	if st.svc, err = node.NewService(ctx, cl, manager, c.spec.serviceSpec(n)); err != nil {
		return nil, err
	}
	ss, err := st.svc.Status(ctx)
	if err != nil {
		return nil, err
	}
	st.running = ss.Running
	return st, nil
}

// files is what a member needs on its node besides the binary.
type files struct {
	config []byte
	// pki maps file names in the PKI dir to content; empty when the node's
	// certificates are kept.
	pki map[string][]byte
}

// memberFiles renders n's files. initial and state go into the config file
// unless the node already has one, whose initial-cluster settings are kept
// (etcd ignores them once the member has data, and keeping them keeps the
// file unchanged when nothing else changes).
func (c *Cluster) memberFiles(st *nodeState, initial []etcdconf.Member, state string) (files, error) {
	var f files
	if st.conf != nil && len(st.conf.InitialCluster) > 0 && st.conf.InitialClusterToken == c.spec.Name &&
		(st.data.HasMember || st.conf.InitialClusterState == etcdconf.StateNew && state == etcdconf.StateNew) {
		initial, state = st.conf.InitialCluster, st.conf.InitialClusterState
	}
	conf, err := c.spec.render(st.n, initial, state)
	if err != nil {
		return f, err
	}
	f.config = conf
	t := c.spec.TLS
	switch {
	case t == nil:
	case !st.certsValid:
		if t.CA.Key == nil {
			return f, fmt.Errorf("the member's certificates must be issued again by the CA %q, but %w (during a CA rotation, "+
				"the old CA's key given as tls.ca_key_pem_wo): give the old CA's key as tls.ca_key_pem for this apply, or bring the node back with valid certificates",
				t.CA.Cert.Subject.CommonName, ErrNoCAKey)
		}
		certs, err := t.CA.IssueMember(pki.MemberRequest{Name: st.n.Name, Hosts: c.spec.certHosts(st.n), Window: t.window(time.Now())})
		if err != nil {
			return f, err
		}
		f.pki = memberhost.CertFiles(t.TrustPEM(), certs)
	case !bytes.Equal(st.files[memberhost.CAFile], t.TrustPEM()):
		// The certificates stay; the CA file changes (a CA rotation).
		f.pki = map[string][]byte{memberhost.CAFile: t.TrustPEM()}
	}
	return f, nil
}

// stagedSuffix marks files uploaded next to the live ones of a running
// member; they replace the live files right before the member restarts.
const stagedSuffix = ".next"

// install writes the binary, certificates, config and service of n. With
// stage, the binary and config go next to the live files (see
// stagedSuffix) and changed reports whether anything differs from what the
// member runs with. It never starts or stops anything.
func (c *Cluster) install(ctx context.Context, st *nodeState, f files, stage bool) (changed bool, err error) {
	stop := c.watchdog(ctx, st.n)
	changed, err = c.installFiles(ctx, st, f, stage)
	if cause := stop(); cause != nil && err != nil {
		err = fmt.Errorf("%w (%v)", cause, err)
	}
	return changed, err
}

func (c *Cluster) installFiles(ctx context.Context, st *nodeState, f files, stage bool) (changed bool, err error) {
	l := c.spec.layout(st.n)
	suffix := ""
	if stage {
		suffix = stagedSuffix
	}
	if c.spec.Binary.RemotePath == "" {
		upload := true
		if stage {
			// The live binary decides; the staged copy is only written
			// when it differs.
			same, err := c.remoteHasFile(ctx, st.cl, l.Binary)
			if err != nil {
				return false, err
			}
			upload = !same
		}
		if upload {
			sum, err := c.binarySHA256()
			if err != nil {
				return false, err
			}
			begin := time.Now()
			up, err := st.cl.UploadFileSum(ctx, c.spec.Binary.LocalPath, sum, l.Binary+suffix, 0o755)
			if err != nil {
				return false, err
			}
			if up {
				c.progress("uploaded binary", "node", st.n.Name, "path", l.Binary, "took", time.Since(begin).Round(time.Millisecond).String())
				changed = true
			}
		}
	}
	if len(f.pki) > 0 {
		// All in one round trip; staged next to the live ones for a
		// running member, so that each member switches at its own
		// restart (rotate.go).
		pkiFiles := f.pki
		if stage {
			pkiFiles = stageNames(pkiFiles)
		}
		if err := writeFiles(ctx, st.cl, l.PKIDir, pkiFiles); err != nil {
			return false, err
		}
		changed = true
	}
	if live, ok := st.files["config"]; !ok || string(live) != string(f.config) {
		if _, err := st.cl.Upload(ctx, l.Config+suffix, f.config, 0o600); err != nil {
			return false, err
		}
		changed = true
	}
	svcChanged, err := st.svc.Install(ctx)
	if err != nil {
		return false, err
	}
	return changed || svcChanged, nil
}

// writeFiles writes small files (certificates) into dir with mode 0600,
// each atomically, in one SSH session.
func writeFiles(ctx context.Context, cl *node.Client, dir string, files map[string][]byte) error {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	var b strings.Builder
	fmt.Fprintf(&b, "set -e\numask 077\nmkdir -p %s\n", node.Quote(dir))
	for _, n := range names {
		p := path.Join(dir, n)
		fmt.Fprintf(&b, "printf '%%s' %s | base64 -d > %s\nmv -f %[2]s %[3]s\n",
			node.Quote(base64.StdEncoding.EncodeToString(files[n])), node.Quote(p+".tmp"), node.Quote(p))
	}
	_, err := cl.Run(ctx, b.String())
	return err
}

// binarySHA256 is the sha256 of the local binary, hashed once for every
// node.
func (c *Cluster) binarySHA256() (string, error) {
	local, attr := c.spec.Binary.LocalPath, "binary_path"
	if c.spec.Binary.RemotePath != "" {
		local, attr = c.spec.Binary.ToolPath, "the provider binary uploaded as a tool next to remote_binary"
	}
	c.hashOnce.Do(func() { c.binHash, c.hashErr = node.FileSHA256(local) })
	if c.hashErr != nil {
		return "", fmt.Errorf("%s: %w", attr, c.hashErr)
	}
	return c.binHash, nil
}

// remoteHasFile tells whether remote holds exactly the local binary.
func (c *Cluster) remoteHasFile(ctx context.Context, cl *node.Client, remote string) (bool, error) {
	want, err := c.binarySHA256()
	if err != nil {
		return false, err
	}
	got, err := node.RemoteSHA256(ctx, cl, remote)
	if err != nil {
		return false, err
	}
	return got == want, nil
}

// activateStaged moves staged files into place (right before a restart).
func (c *Cluster) activateStaged(ctx context.Context, st *nodeState) error {
	l := c.spec.layout(st.n)
	var cmds []string
	for _, p := range []string{l.Binary, l.Config} {
		cmds = append(cmds, fmt.Sprintf("if [ -f %[1]s ]; then mv -f %[1]s %[2]s; fi", node.Quote(p+stagedSuffix), node.Quote(p)))
	}
	if c.spec.TLS != nil {
		cmds = append(cmds, stagedPKIMoves(l.PKIDir))
	}
	_, err := st.cl.Run(ctx, strings.Join(cmds, "\n"))
	return err
}

// logTail is the end of the member's log, for error messages.
func logTail(ctx context.Context, st *nodeState, n int) string {
	if st == nil || st.svc == nil {
		return ""
	}
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	out, err := st.svc.Logs(lctx, max(n, crashLogLines))
	if err != nil || strings.TrimSpace(out) == "" {
		return ""
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if i := crashStart(lines); i >= 0 {
		// A crash's cause is at its start; the last lines are only the
		// bottom of its stack trace.
		return "\nits log from the last crash on:\n" + strings.Join(lines[i:min(len(lines), i+n)], "\n")
	}
	return "\nlast lines of its log:\n" + strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// crashLogLines is how far back logTail looks for a crash: a Go stack
// trace of etcd runs to a few hundred lines.
const crashLogLines = 400

// crashStart is the index of the line where the last crash in lines begins,
// or -1 when there is none: the Go runtime's last "panic: " or "fatal error: "
// line, or etcd's own panic entry just before it (zap logs one, then
// panics); else etcd's last fatal entry (zap logs it and exits).
func crashStart(lines []string) int {
	isEntry := func(l string) bool {
		return strings.Contains(l, `"level":"panic"`) || strings.Contains(l, `"level":"fatal"`)
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "panic: ") || strings.HasPrefix(lines[i], "fatal error: ") {
			for j := i - 1; j >= max(0, i-5); j-- {
				if isEntry(lines[j]) {
					return j
				}
			}
			return i
		}
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if isEntry(lines[i]) {
			return i
		}
	}
	return -1
}
