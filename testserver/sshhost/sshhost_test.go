package sshhost

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// knownHostsCallback writes every host's line to a known_hosts file and
// returns the verifying callback, as an operator's ssh client would use.
func knownHostsCallback(t *testing.T, hosts []*Host) ssh.HostKeyCallback {
	t.Helper()
	var b strings.Builder
	for _, h := range hosts {
		b.WriteString(h.KnownHostsLine() + "\n")
	}
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cb, err := knownhosts.New(p)
	if err != nil {
		t.Fatal(err)
	}
	return cb
}

func dialVerified(ctx context.Context, h *Host, cb ssh.HostKeyCallback, auth ssh.AuthMethod) (*ssh.Client, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", h.HostPort())
	if err != nil {
		return nil, err
	}
	c, chans, reqs, err := ssh.NewClientConn(conn, h.HostPort(), &ssh.ClientConfig{
		User: h.User, Auth: []ssh.AuthMethod{auth}, HostKeyCallback: cb, Timeout: 5 * time.Second,
	})
	if err != nil {
		conn.Close()
		return nil, err
	}
	return ssh.NewClient(c, chans, reqs), nil
}

func run(t *testing.T, c *ssh.Client, cmd string) string {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.CombinedOutput(cmd)
	if err != nil {
		t.Fatalf("%q: %v: %s", cmd, err, out)
	}
	return string(out)
}

func testHosts(t *testing.T, opts ...Option) {
	hosts := Start(t, 4, opts...)
	// Generous: 4 hosts and 12 connections between them, each a fork of
	// sshd, on what may be a busy machine.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cb := knownHostsCallback(t, hosts)

	seen := map[string]bool{}
	for _, h := range hosts {
		t.Logf("%s: %s mode=%s ns=%q base=%s", h.Name, h.HostPort(), h.Mode, h.Namespace, h.BaseDir)
		if seen[h.Addr] {
			t.Fatalf("address %s used twice", h.Addr)
		}
		seen[h.Addr] = true
		if fi, err := os.Stat(h.BaseDir); err != nil || !fi.IsDir() {
			t.Fatalf("BaseDir %s: %v", h.BaseDir, err)
		}

		// The plain key, with the host key verified through known_hosts.
		c, err := dialVerified(ctx, h, cb, ssh.PublicKeys(h.Signer))
		if err != nil {
			t.Fatalf("%s: ssh: %v", h.Name, err)
		}
		if got := strings.TrimSpace(run(t, c, "id -un")); got != h.User {
			t.Errorf("%s: logged in as %q, want %q", h.Name, got, h.User)
		}
		// A home of its own, so no startup file of the user running the
		// tests runs in its sessions.
		if got := strings.TrimSpace(run(t, c, "echo $HOME")); got != h.home() {
			t.Errorf("%s: HOME is %q, want the host's own %q", h.Name, got, h.home())
		}
		if h.Mode == ModeNetns {
			out := run(t, c, "ip -4 -o addr show")
			if !strings.Contains(out, " "+h.Addr+"/30") {
				t.Errorf("%s: does not see its address %s:\n%s", h.Name, h.Addr, out)
			}
			for _, o := range hosts {
				if o != h && strings.Contains(out, " "+o.Addr+"/") {
					t.Errorf("%s sees %s's address %s", h.Name, o.Name, o.Addr)
				}
			}
		}
		c.Close()

		// The passphrase-protected copy of the key decrypts to the same key.
		signer, err := ssh.ParsePrivateKeyWithPassphrase(h.EncryptedPrivateKeyPEM, []byte(h.Passphrase))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ssh.ParsePrivateKey(h.EncryptedPrivateKeyPEM); err == nil {
			t.Fatal("encrypted key parsed without passphrase")
		}
		c, err = dialVerified(ctx, h, cb, ssh.PublicKeys(signer))
		if err != nil {
			t.Fatalf("%s: ssh with decrypted key: %v", h.Name, err)
		}
		c.Close()
	}

	// A wrong host key is rejected by known_hosts verification.
	wrong := knownHostsCallback(t, []*Host{{Addr: hosts[0].Addr, Port: hosts[0].Port, HostPublicKey: hosts[1].HostPublicKey}})
	if _, err := dialVerified(ctx, hosts[0], wrong, ssh.PublicKeys(hosts[0].Signer)); err == nil {
		t.Fatal("connected despite a wrong host key")
	} else {
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) || len(ke.Want) == 0 {
			t.Fatalf("wrong host key: %v, want a knownhosts.KeyError", err)
		}
	}

	// Every host reaches every other host's sshd.
	for _, h := range hosts {
		for _, o := range hosts {
			if o == h {
				continue
			}
			// timeout: a host that does not answer fails this pair, not
			// the whole test; sshd may take seconds to fork under load.
			cmd := fmt.Sprintf("timeout 60 bash -c 'exec 3<>/dev/tcp/%s/%d && head -c 4 <&3'", o.Addr, o.Port)
			out, err := h.Run(ctx, cmd)
			// HasSuffix: the login shell's rc files may print to stderr.
			if err != nil || !strings.HasSuffix(out, "SSH-") {
				t.Errorf("%s -> %s: %q %v\n%s", h.Name, o.Name, out, err, o.sshdLog())
			}
		}
	}
}

func TestHostsNetns(t *testing.T) {
	if reason := netnsUnavailable(context.Background()); reason != "" {
		t.Skipf("network namespaces unavailable: %s (loopback mode is tested by TestHostsLoopback)", reason)
	}
	testHosts(t, WithMode(ModeNetns))
}

func TestHostsLoopback(t *testing.T) {
	testHosts(t, WithMode(ModeLoopback))
}

func TestCloseRemovesEverything(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	g, err := New(ctx, 2, WithLogf(t.Logf))
	if errors.Is(err, ErrNoSSHD) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() }) // in case the test fails before its own Close
	// A daemonized process started over SSH, like a service would be.
	for _, h := range g.Hosts {
		if _, err := h.Run(ctx, "setsid nohup sleep 600 >/dev/null 2>&1 </dev/null & echo started"); err != nil {
			t.Fatal(err)
		}
		waitMarkedSleep(t, h)
	}

	// One host closed on its own: its processes go, the other's stay.
	h, other := g.Hosts[0], g.Hosts[1]
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if left := marked(t, h); len(left) != 0 {
		t.Fatalf("processes of %s survived its Close: %v", h.Name, left)
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second Close of %s: %v", h.Name, err)
	}
	if err := h.Up(ctx); err == nil || !strings.Contains(err.Error(), "host is closed") {
		t.Fatalf("Up after Close: %v, want an error saying the host is closed", err)
	}
	if len(marked(t, other)) == 0 {
		t.Fatalf("closing %s killed %s's processes", h.Name, other.Name)
	}
	if _, err := other.Run(ctx, "true"); err != nil {
		t.Fatalf("%s after %s's Close: %v", other.Name, h.Name, err)
	}

	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	for _, hh := range g.Hosts {
		if left := marked(t, hh); len(left) != 0 {
			t.Fatalf("processes of %s survived Close: %v", hh.Name, left)
		}
	}
	if g.Mode == ModeNetns {
		out, err := exec.Command("ip", "netns", "list").Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, hh := range g.Hosts {
			if strings.Contains(string(out), hh.Namespace) {
				t.Errorf("namespace %s still listed:\n%s", hh.Namespace, out)
			}
			if _, err := net.InterfaceByName(hh.rootLink); err == nil {
				t.Errorf("veth %s still exists", hh.rootLink)
			}
		}
	}
	if _, err := os.Stat(g.dir); !os.IsNotExist(err) {
		t.Errorf("group dir %s still there: %v", g.dir, err)
	}
}

// waitMarkedSleep waits until the sleep a test started over SSH on h shows
// up among h's marked processes.
func waitMarkedSleep(t *testing.T, h *Host) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, p := range marked(t, h) {
			if strings.HasSuffix(p, " sleep") {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the sleep started over SSH is not among the marked processes: %v", h.Name, marked(t, h))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// marked lists the live processes carrying h's marker, checked here
// independently of procSet.
func marked(t *testing.T, h *Host) []string {
	t.Helper()
	var found []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && strings.Contains("\x00"+string(env), "\x00"+markerVar+"="+h.id+"\x00") {
			comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
			found = append(found, e.Name()+" "+strings.TrimSpace(string(comm)))
		}
	}
	return found
}

type pidStart struct {
	pid   int
	start uint64
}

// descendants lists h's sshd and its descendants.
func descendants(t *testing.T, h *Host) []pidStart {
	t.Helper()
	h.mu.Lock()
	root := h.sshd.Process.Pid
	h.mu.Unlock()
	st, err := procStat(root)
	if err != nil {
		t.Fatal(err)
	}
	tree := map[int]uint64{root: st.start}
	for grew := true; grew; {
		grew = false
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if _, ok := tree[pid]; ok {
				continue
			}
			if st, err := procStat(pid); err == nil {
				if _, ok := tree[st.ppid]; ok {
					tree[pid], grew = st.start, true
				}
			}
		}
	}
	var ps []pidStart
	for pid, start := range tree {
		ps = append(ps, pidStart{pid, start})
	}
	return ps
}

// inNamespace lists the processes in h's network namespace.
func inNamespace(t *testing.T, h *Host) []string {
	t.Helper()
	if h.Mode != ModeNetns {
		return nil
	}
	out, err := exec.Command("ip", "netns", "pids", h.Namespace).Output()
	if err != nil {
		t.Fatalf("ip netns pids %s: %v", h.Namespace, err)
	}
	return strings.Fields(string(out))
}

// sessionFails checks that c, connected before its host went away, cannot
// open a session any more (within a bound: in ModeNetns nothing answers).
func sessionFails(t *testing.T, c *ssh.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if s, err := newSession(ctx, c); err == nil {
		s.Close()
		t.Fatal("a connection made before Down still opens sessions")
	}
}

// timed fails the test when f takes longer than limit.
func timed(t *testing.T, what string, limit time.Duration, f func() error) error {
	t.Helper()
	start := time.Now()
	err := f()
	d := time.Since(start)
	t.Logf("%s: %s (%v)", what, d.Round(time.Millisecond), err)
	if d > limit {
		t.Errorf("%s took %s, more than %s", what, d, limit)
	}
	return err
}

func TestDownAndUp(t *testing.T) {
	hosts := Start(t, 2)
	h := hosts[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := h.Run(ctx, "setsid nohup sleep 600 >/dev/null 2>&1 </dev/null &"); err != nil {
		t.Fatal(err)
	}
	if _, err := hosts[1].Run(ctx, "setsid nohup sleep 600 >/dev/null 2>&1 </dev/null &"); err != nil {
		t.Fatal(err)
	}
	// A connection of its own, as a test's SSH client would hold one.
	held, err := h.Dial(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if len(marked(t, h)) == 0 {
		t.Fatal("the process started over SSH is not marked")
	}
	sshdTree := descendants(t, h)
	if len(sshdTree) < 2 { // sshd, the held connection
		t.Fatalf("sshd and its connection not found: %v", sshdTree)
	}
	others := len(marked(t, hosts[1]))

	if err := timed(t, "down", time.Minute, func() error { return h.DownContext(ctx) }); err != nil {
		t.Fatal(err)
	}
	if left := marked(t, h); len(left) > 0 {
		t.Fatalf("processes of the host survived Down: %v", left)
	}
	for _, p := range sshdTree {
		if st, err := procStat(p.pid); err == nil && st.start == p.start && st.state != 'Z' {
			t.Errorf("sshd process %d (%s) survived Down", p.pid, st.comm)
		}
	}
	if left := inNamespace(t, h); len(left) > 0 {
		t.Fatalf("processes in the host's namespace survived Down: %v", left)
	}
	if n := len(marked(t, hosts[1])); n < others {
		t.Fatalf("Down of %s killed processes of %s: %d left of %d", h.Name, hosts[1].Name, n, others)
	}
	sessionFails(t, held)
	short, c2 := context.WithTimeout(ctx, 3*time.Second)
	err = timed(t, "run on a down host", 10*time.Second, func() error { _, err := h.Run(short, "true"); return err })
	c2()
	if err == nil {
		t.Fatal("ssh worked on a host that is down")
	}
	// The other host is unaffected.
	if _, err := hosts[1].Run(ctx, "true"); err != nil {
		t.Fatal(err)
	}
	if err := timed(t, "up", time.Minute, func() error { return h.Up(ctx) }); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Run(ctx, "true"); err != nil {
		t.Fatal(err)
	}
	// Up starts sshd, nothing else.
	for _, p := range marked(t, h) {
		if strings.HasSuffix(p, " sleep") {
			t.Errorf("a process killed by Down is back after Up: %s", p)
		}
	}

	if h.Mode == ModeNetns {
		if err := timed(t, "disconnect", time.Minute, func() error { return h.DisconnectContext(ctx) }); err != nil {
			t.Fatal(err)
		}
		short, c3 := context.WithTimeout(ctx, 2*time.Second)
		err := timed(t, "run on a disconnected host", 10*time.Second, func() error { _, err := h.Run(short, "true"); return err })
		c3()
		if err == nil {
			t.Fatal("ssh worked on a disconnected host")
		}
		if err := timed(t, "reconnect", time.Minute, func() error { return h.ReconnectContext(ctx) }); err != nil {
			t.Fatal(err)
		}
		if _, err := h.Run(ctx, "true"); err != nil {
			t.Fatal(err)
		}
	} else if err := h.Disconnect(); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("Disconnect in loopback mode: %v", err)
	}
}

// TestDownKillsOnlyTheHost: processes that are not the host's survive its
// Down and Close, even with a marker that differs only in a suffix, and the
// test process itself is never a candidate.
func TestDownKillsOnlyTheHost(t *testing.T) {
	hosts := Start(t, 2)
	h := hosts[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var outside []*exec.Cmd
	for _, env := range []string{
		markerVar + "=" + h.id + "0",      // another host's id extending this one
		markerVar + "=" + hosts[1].id,     // the other host's
		"X" + markerVar + "=" + h.id,      // another variable ending the same
		"OTHER=" + markerVar + "=" + h.id, // the marker inside a value
	} {
		c := exec.Command("sleep", "600")
		c.Env = append(os.Environ(), env)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		outside = append(outside, c)
		t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	}
	if _, err := h.Run(ctx, "setsid nohup sleep 600 >/dev/null 2>&1 </dev/null &"); err != nil {
		t.Fatal(err)
	}
	ps, err := newProcSet(h.id, h.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	pids, err := ps.scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		for _, c := range outside {
			if pid == c.Process.Pid {
				t.Fatalf("process %d (%v) taken for one of %s's", pid, c.Env[len(c.Env)-1], h.Name)
			}
		}
		if pid == os.Getpid() || pid == os.Getppid() {
			t.Fatalf("the test process (or its parent) %d taken for one of %s's", pid, h.Name)
		}
	}
	if err := h.DownContext(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.CloseContext(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range outside {
		if err := c.Process.Signal(syscall.Signal(0)); err != nil {
			t.Errorf("process with %s did not survive %s's Down and Close: %v", c.Env[len(c.Env)-1], h.Name, err)
		}
	}
	if _, err := hosts[1].Run(ctx, "true"); err != nil {
		t.Fatal(err)
	}
}

// TestBoundedWhenSSHDHangs: an sshd that accepts connections but never
// answers (stopped) makes Run fail within its context instead of hanging,
// and Down still takes the host down within its own.
func TestBoundedWhenSSHDHangs(t *testing.T) {
	h := Start(t, 1)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := h.Run(ctx, "true"); err != nil {
		t.Fatal(err)
	}
	h.dropClient()
	h.mu.Lock()
	sshd := h.sshd.Process
	h.mu.Unlock()
	if err := sshd.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	short, c2 := context.WithTimeout(ctx, 2*time.Second)
	err := timed(t, "run with a stopped sshd", 10*time.Second, func() error { _, err := h.Run(short, "true"); return err })
	c2()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("run with a stopped sshd: %v, want a deadline error", err)
	}
	short, c3 := context.WithTimeout(ctx, 2*time.Second)
	_, err = h.Dial(short)
	c3()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial a stopped sshd: %v, want a deadline error", err)
	}
	// A context that is already done: the operation gives up at once.
	done, c4 := context.WithCancel(ctx)
	c4()
	err = timed(t, "down with a cancelled context", 5*time.Second, func() error { return h.DownContext(done) })
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("down with a cancelled context: %v", err)
	}
	if err := timed(t, "down", time.Minute, func() error { return h.DownContext(ctx) }); err != nil {
		t.Fatal(err)
	}
	if err := timed(t, "up", time.Minute, func() error { return h.Up(ctx) }); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Run(ctx, "true"); err != nil {
		t.Fatal(err)
	}
}

// TestWithSSHD: hosts run the sshd binary WithSSHD names, and one that does
// not exist is ErrNoSSHD without an attempt to install a replacement.
func TestWithSSHD(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var logs []string
	logf := func(format string, args ...any) { logs = append(logs, fmt.Sprintf(format, args...)) }
	missing := filepath.Join(t.TempDir(), "no-sshd")
	g, err := New(ctx, 1, WithSSHD(missing), WithLogf(logf))
	if err == nil {
		_ = g.Close()
		t.Fatalf("New with a missing sshd %s started hosts", missing)
	}
	if !errors.Is(err, ErrNoSSHD) {
		t.Fatalf("New with a missing sshd: %v, want ErrNoSSHD", err)
	}
	for _, l := range logs {
		if strings.Contains(l, "apt-get") {
			t.Errorf("New with a missing sshd of its choice tried to install one: %s", l)
		}
	}

	// The real sshd under another name: a host runs it, not the default.
	real, err := findSSHD(ctx, &options{logf: t.Logf})
	if errors.Is(err, ErrNoSSHD) {
		t.Skipf("sshd cannot run here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	chosen := filepath.Join(t.TempDir(), "chosen-sshd")
	if err := os.Symlink(real, chosen); err != nil {
		t.Fatal(err)
	}
	h := Start(t, 1, WithSSHD(chosen))[0]
	h.mu.Lock()
	argv := h.sshd.Args // ip netns exec NS SSHD ... in ModeNetns
	h.mu.Unlock()
	if !slices.Contains(argv, chosen) {
		t.Fatalf("host runs %q, want the sshd chosen with WithSSHD, %s", argv, chosen)
	}
	if _, err := h.Run(ctx, "true"); err != nil {
		t.Fatal(err)
	}
}

// TestWithTimeout: WithTimeout bounds an operation whose context has no
// deadline, and only such an operation.
func TestWithTimeout(t *testing.T) {
	const timeout = 2 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// New, not Start: starting and closing the host are bounded by ctx
	// here, not by a timeout this short.
	g, err := New(ctx, 1, WithTimeout(timeout), WithLogf(t.Logf))
	if errors.Is(err, ErrNoSSHD) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := g.CloseContext(cctx); err != nil {
			t.Error(err)
		}
	})
	h := g.Hosts[0]

	// A command that outlasts the host's timeout runs to its end under a
	// context with a deadline of its own.
	if _, err := h.Run(ctx, "sleep 3"); err != nil {
		t.Fatalf("a 3s command under a 2-minute context: %v", err)
	}
	// Without a deadline, the host's timeout ends it.
	_, err = h.Run(context.Background(), "sleep 600")
	want := fmt.Sprintf("gave up after %s (sshhost.WithTimeout)", timeout)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("a 600s command with no deadline: %v, want an error saying %q", err, want)
	}
	// So it does for the methods without a context, here Down waiting
	// for the host's lock, held as by another operation.
	h.mu.Lock()
	err = h.Down()
	h.mu.Unlock()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("Down while another operation holds the host: %v, want an error saying %q", err, want)
	}
}
