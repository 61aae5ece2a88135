package sshhost

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/sys/unix"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver/stocketcd"
)

// Systemd hosts (WithSystemd): how they are built.
//
// Each host is a systemd-nspawn container booted from a shared, read-only
// root file system (scripts/install-rootfs.sh: Debian with systemd, dbus and
// openssh-server), with systemd as PID 1 and sshd started by systemd:
//
//	systemd-nspawn --register=no --keep-unit --boot --directory=<overlay>
//	    --network-namespace-path=/run/netns/<host's namespace> ...
//
// The host's disk is an overlay: the rootfs below, an upper directory of
// its own above, so a host boots in well under a second of file system work
// and keeps what was written to it across Down and Up. The host's BaseDir is
// bind-mounted at the same path inside, so tests read it from outside as
// with plain hosts; a few read-only binds (Debian's etcd and etcdctl, the
// stock etcd cache, WithBind) make binaries available at their usual paths.
// Nothing else of the machine's file system is visible: units installed in
// /etc/systemd/system are the container's own.
//
// Each container runs in a cgroup of its own (see cgroupHierarchies), which
// Down kills as a whole: a power loss. Up boots it again from the same disk.

// systemdOptions configure WithSystemd hosts.
type systemdOptions struct {
	enabled bool
	rootfs  string   // "" = RootfsDir()
	binds   []string // read-only, at the same path inside
}

// WithSystemd makes every host a systemd-nspawn container with a booted
// systemd as PID 1 and sshd started by that systemd, in the host's network
// namespace, so that tests can install systemd units that really run.
//
//   - Each host boots an overlay of the root file system built by
//     scripts/install-rootfs.sh (Debian with systemd, dbus and
//     openssh-server) with an upper directory of its own: writes stay on
//     the host, across Down and Up.
//   - BaseDir is bind-mounted at the same path inside, read-write; Debian's
//     /usr/bin/etcd and /usr/bin/etcdctl and the stock etcd cache
//     (stocketcd.CacheDir) read-only, where they exist, plus WithBind's
//     paths. Nothing else of the machine's file system is visible.
//   - The user logs in as root with the group's user key; the host key is
//     generated for the host as for plain hosts. Host.Systemd is true.
//   - New returns once sshd answers and `systemctl is-system-running` says
//     running or degraded (failed units are logged), bounded by its context.
//   - Down kills the whole container at once (its cgroup) after taking the
//     link down, a power loss; Up boots it again from the same disk, and
//     enabled units start as on a real boot. Disconnect and Reconnect work
//     as for plain hosts. Exec runs inside the container (nsenter).
//
// It needs root, network namespaces, systemd-nspawn (Debian package
// systemd-container) and the root file system; Start skips the test when
// one is missing, and fails it instead with $SSHHOST_REQUIRE_SYSTEMD=1.
func WithSystemd() Option { return func(o *options) { o.systemd.enabled = true } }

// WithRootfs boots WithSystemd hosts from dir instead of RootfsDir().
func WithRootfs(dir string) Option { return func(o *options) { o.systemd.rootfs = dir } }

// WithBind makes paths of the machine visible read-only, at the same path,
// inside WithSystemd hosts (plain hosts see the whole file system anyway).
// Debian's /usr/bin/etcd and /usr/bin/etcdctl and the stock etcd cache
// (stocketcd.CacheDir) are bound without it when they exist.
func WithBind(paths ...string) Option {
	return func(o *options) { o.systemd.binds = append(o.systemd.binds, paths...) }
}

// container is the state of a WithSystemd host's container.
type container struct {
	name   string // machine name, the same as the network namespace's
	dir    string // upper, work, merged, console.log
	rootfs string
	binds  []string // read-only binds
	rw     []string // read-write binds (BaseDir)

	mu      sync.Mutex // guards cmd, exited, initPid
	cmd     *exec.Cmd  // the systemd-nspawn process; nil when not running
	exited  chan struct{}
	initPid int // the container's PID 1 as seen from here; 0 = not looked up

	mounted  bool          // h.mu
	cgroups  []string      // h.mu: one per hierarchy, created at launch
	started  time.Time     // h.mu: when the last boot was launched
	lastBoot time.Duration // mu: how long the last boot took, launch to ready
}

func (ct *container) merged() string { return filepath.Join(ct.dir, "merged") }

// LastBoot returns how long the host's last boot took, from launching the
// container to sshd answering and systemd reporting the boot finished.
// Zero for plain hosts.
func (h *Host) LastBoot() time.Duration {
	if h.ct == nil {
		return 0
	}
	h.ct.mu.Lock()
	defer h.ct.mu.Unlock()
	return h.ct.lastBoot
}

// running reports whether the container's systemd-nspawn is still running.
func (ct *container) running() bool {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if ct.cmd == nil {
		return false
	}
	select {
	case <-ct.exited:
		return false
	default:
		return true
	}
}

// defaultBinds are the read-only binds every systemd host gets: the stock
// etcd binaries tests run as remote binaries, where they exist.
func defaultBinds() []string {
	var bs []string
	for _, p := range []string{"/usr/bin/etcd", "/usr/bin/etcdctl", stocketcd.CacheDir()} {
		if _, err := os.Stat(p); err == nil {
			bs = append(bs, p)
		}
	}
	return bs
}

// newContainer prepares h's container; nothing is started.
func (h *Host) newContainer() *container {
	return &container{
		name:   h.Namespace,
		dir:    filepath.Join(filepath.Dir(h.dir), "systemd"),
		rootfs: h.opts.systemd.rootfs,
		binds:  append(defaultBinds(), h.opts.systemd.binds...),
		rw:     []string{h.BaseDir},
	}
}

// bootContainer launches the container and waits until it is ready.
// h.mu must be held.
func (h *Host) bootContainer(ctx context.Context) error {
	if err := h.launchContainer(ctx); err != nil {
		return err
	}
	return h.waitBooted(ctx)
}

// launchContainer mounts the host's disk, installs its identity and starts
// systemd-nspawn, without waiting for the boot. h.mu must be held.
func (h *Host) launchContainer(ctx context.Context) (err error) {
	if h.ct == nil {
		h.ct = h.newContainer()
	}
	ct := h.ct
	if ct.running() {
		return nil
	}
	defer func() {
		if err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = errors.Join(err, h.stopContainer(sctx))
		}
	}()
	if err := ct.mount(); err != nil {
		return err
	}
	if err := h.installIdentity(); err != nil {
		return fmt.Errorf("installing the host key and authorized key: %w", err)
	}
	hs, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	ct.cgroups = ct.cgroups[:0]
	for _, hier := range hs {
		cg := filepath.Join(hier, cgroupRoot, ct.name)
		if err := os.MkdirAll(cg, 0o755); err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
		ct.cgroups = append(ct.cgroups, cg)
	}

	args := []string{
		"--register=no", "--keep-unit", "--boot",
		"--directory=" + ct.merged(),
		"--machine=" + ct.name, "--hostname=" + h.Name,
		"--network-namespace-path=" + netnsPath(h.Namespace),
		"--console=read-only", "--link-journal=no", "--resolv-conf=off", "--timezone=off",
	}
	for _, p := range ct.rw {
		args = append(args, "--bind="+p)
	}
	for _, p := range ct.binds {
		args = append(args, "--bind-ro="+p)
	}
	// The wrapper moves itself into the container's cgroups before it
	// becomes systemd-nspawn, which then keeps them (--keep-unit).
	wrapper := `for cg in $SSHHOST_CGROUPS; do echo $$ > "$cg/cgroup.procs" || exit 1; done; exec "$@"`
	cmd := exec.Command("/bin/sh", append([]string{"-c", wrapper, "sh", nspawnPath()}, args...)...)
	// Each container has a directory of its own: no image lock, whose file
	// systemd-nspawn would leave in /run/systemd/nspawn/locks when killed.
	cmd.Env = append(os.Environ(), "SSHHOST_CGROUPS="+strings.Join(ct.cgroups, " "), "SYSTEMD_NSPAWN_LOCK=0")
	logf, err := os.OpenFile(filepath.Join(ct.dir, "console.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "\n===== sshhost: boot at %s\n", time.Now().Format(time.RFC3339Nano))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	ct.started = time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start systemd-nspawn: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(exited)
	}()
	ct.mu.Lock()
	ct.cmd, ct.exited, ct.initPid = cmd, exited, 0
	ct.mu.Unlock()
	h.opts.logf("sshhost: %s booting systemd at %s (container %s)", h.Name, h.HostPort(), ct.name)
	return nil
}

// waitBooted waits until sshd answers and systemd has finished booting
// (`systemctl is-system-running --wait` says running or degraded), bounded
// by ctx. On failure the container is stopped. h.mu must be held.
func (h *Host) waitBooted(ctx context.Context) (err error) {
	ct := h.ct
	ct.mu.Lock()
	exited := ct.exited
	ct.mu.Unlock()
	defer func() {
		if err != nil {
			err = fmt.Errorf("%w; console: %s", err, ct.console())
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = errors.Join(err, h.stopContainer(sctx))
		}
	}()
	var lastErr error
	for {
		if lastErr = sshBanner(ctx, h.HostPort()); lastErr == nil {
			break
		}
		select {
		case <-exited:
			return errors.New("the container exited while booting")
		case <-ctx.Done():
			return fmt.Errorf("sshd in the container on %s did not answer: %w (last attempt: %v)", h.HostPort(), context.Cause(ctx), lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
	// is-system-running exits non-zero for degraded: judge by what it says.
	out, rerr := h.Run(ctx, "systemctl is-system-running --wait")
	state := lastLine(out)
	switch state {
	case "running":
	case "degraded":
		failed, _ := h.Run(ctx, "systemctl --failed --no-legend --plain")
		h.opts.logf("sshhost: %s: systemd is degraded; failed units:\n%s", h.Name, strings.TrimSpace(failed))
	default:
		return fmt.Errorf("systemd did not finish booting: state %q: %v", state, rerr)
	}
	ct.mu.Lock()
	ct.lastBoot = time.Since(ct.started)
	ct.mu.Unlock()
	h.opts.logf("sshhost: %s up at %s: systemd %s after %s (container %s, base dir %s)",
		h.Name, h.HostPort(), state, ct.lastBoot.Round(time.Millisecond), ct.name, h.BaseDir)
	return nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func (ct *container) console() string {
	b, _ := os.ReadFile(filepath.Join(ct.dir, "console.log"))
	return lastLines(b, 15)
}

// waitBooted boots every host of the group at once, each bounded by ctx.
func (g *Group) waitBooted(ctx context.Context) error {
	errs := make([]error, len(g.Hosts))
	var wg sync.WaitGroup
	for i, h := range g.Hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.lock(ctx, "boot"); err != nil {
				errs[i] = err
				return
			}
			defer h.mu.Unlock()
			errs[i] = h.errorf("boot", h.waitBooted(ctx))
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// mount mounts the overlay: the rootfs below, the host's upper dir above.
func (ct *container) mount() error {
	if ct.mounted {
		return nil
	}
	upper, work := filepath.Join(ct.dir, "upper"), filepath.Join(ct.dir, "work")
	for _, d := range []string{upper, work, ct.merged()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if strings.ContainsAny(ct.dir, ",:") {
		return fmt.Errorf("overlay: path %q holds ',' or ':'", ct.dir)
	}
	opts := "lowerdir=" + ct.rootfs + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", ct.merged(), "overlay", 0, opts); err != nil {
		return fmt.Errorf("mount overlay on %s (%s): %w", ct.merged(), opts, err)
	}
	ct.mounted = true
	return nil
}

// unmount unmounts the overlay, waiting (bounded by ctx) while it is busy:
// the container's last processes may still be exiting.
func (ct *container) unmount(ctx context.Context) error {
	if !ct.mounted {
		return nil
	}
	for {
		err := unix.Unmount(ct.merged(), 0)
		if err == nil || errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			ct.mounted = false
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("unmount %s: %w", ct.merged(), err)
		}
		select {
		case <-ctx.Done():
			// Detach it so that Close can go on; the upper dir may then
			// refuse a new mount until the kernel lets go of it.
			derr := unix.Unmount(ct.merged(), unix.MNT_DETACH)
			ct.mounted = derr != nil
			return fmt.Errorf("unmount %s: still busy: %w (detached: %v)", ct.merged(), context.Cause(ctx), derr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// installIdentity writes the host key, the authorized user key and the
// hostname into the container's disk. The overlay must be mounted.
func (h *Host) installIdentity() error {
	root := h.ct.merged()
	key, err := os.ReadFile(filepath.Join(h.dir, "ssh_host_ed25519_key"))
	if err != nil {
		return err
	}
	files := []struct {
		path string
		mode os.FileMode
		data []byte
	}{
		{"etc/ssh/ssh_host_ed25519_key", 0o600, key},
		{"etc/ssh/ssh_host_ed25519_key.pub", 0o644, []byte(h.HostKey + " " + h.Name + "\n")},
		{"root/.ssh/authorized_keys", 0o600, ssh.MarshalAuthorizedKey(h.Signer.PublicKey())},
		// systemd sets the hostname from this file, over nspawn's.
		{"etc/hostname", 0o644, []byte(h.Name + "\n")},
	}
	if err := os.MkdirAll(filepath.Join(root, "root/.ssh"), 0o700); err != nil {
		return err
	}
	for _, f := range files {
		p := filepath.Join(root, f.path)
		if err := os.WriteFile(p, f.data, f.mode); err != nil {
			return err
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return err
		}
	}
	return nil
}

// stopContainer kills the container as a power loss would (every process
// at once, no shutdown), waits until nothing of it is left, removes its
// cgroups and unmounts its disk, bounded by ctx. The disk's upper dir stays
// for the next boot. h.mu must be held.
func (h *Host) stopContainer(ctx context.Context) error {
	ct := h.ct
	if ct == nil {
		return nil
	}
	ct.mu.Lock()
	cmd, exited := ct.cmd, ct.exited
	ct.mu.Unlock()
	var errs []error
	if cmd != nil {
		if err := killCgroups(ctx, ct.cgroups, ct.name); err != nil {
			errs = append(errs, err)
			// Without the cgroups, the process tree (the container's PID 1
			// takes its PID namespace with it).
			errs = append(errs, killTree(ctx, cmd.Process))
		}
		select {
		case <-exited:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("systemd-nspawn (pid %d) has not exited after SIGKILL: %w", cmd.Process.Pid, context.Cause(ctx)))
		}
		ct.mu.Lock()
		ct.cmd, ct.initPid = nil, 0
		ct.mu.Unlock()
	}
	if len(errs) == 0 {
		for _, cg := range ct.cgroups {
			errs = append(errs, removeCgroup(cg))
		}
		ct.cgroups = nil
	}
	// systemd-nspawn leaves this behind when it is killed.
	_ = os.RemoveAll(filepath.Join("/run/systemd/nspawn/propagate", ct.name))
	errs = append(errs, ct.unmount(ctx))
	return errors.Join(errs...)
}

// killCgroups kills every process in the container's cgroups and waits,
// bounded by ctx, until they are empty: through cgroup.kill where the
// kernel has it (Linux 5.14), else process by process, each pinned with a
// pidfd and checked to still be in the container's cgroup before it is
// signalled.
func killCgroups(ctx context.Context, cgs []string, name string) error {
	for _, cg := range cgs {
		if err := os.WriteFile(filepath.Join(cg, "cgroup.kill"), []byte("1"), 0); err == nil {
			break
		}
	}
	for {
		var pids []int
		for _, cg := range cgs {
			ps, err := cgroupProcs(cg)
			if err != nil {
				return err
			}
			pids = append(pids, ps...)
		}
		if len(pids) == 0 {
			return nil
		}
		for _, pid := range pids {
			killIfInCgroup(pid, name)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("container %s: still alive after SIGKILL: %s: %w", name, describePids(pids), context.Cause(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// killIfInCgroup sends SIGKILL to pid if it is (still) in a cgroup of the
// container name. A zombie, already dead, is left for its parent.
func killIfInCgroup(pid int, name string) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup")
	if err != nil || !strings.Contains(string(b), "/"+cgroupRoot+"/"+name+"\n") && !strings.Contains(string(b), "/"+cgroupRoot+"/"+name+"/") {
		return
	}
	_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
}

// execContainer runs a command inside the running container (all its
// namespaces, its root), as Exec does for plain hosts.
func (h *Host) execContainer(ctx context.Context, name string, args ...string) ([]byte, error) {
	pid, err := h.ct.containerInit()
	if err != nil {
		return nil, fmt.Errorf("sshhost: %s: %s %v: %w", h.Name, name, args, err)
	}
	nsenter := []string{"--target", strconv.Itoa(pid), "--mount", "--uts", "--ipc", "--net", "--pid", "--cgroup", "--root", "--wd", "--", name}
	cmd := exec.CommandContext(ctx, "nsenter", append(nsenter, args...)...)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"}
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", err, context.Cause(ctx))
		}
		return out, fmt.Errorf("sshhost: %s: %s %v: %w: %s", h.Name, name, args, err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// containerInit returns the container's PID 1 as seen from here: the child
// of systemd-nspawn that lives in another PID namespace.
func (ct *container) containerInit() (int, error) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if ct.cmd == nil {
		return 0, errors.New("the container is not running (host down?)")
	}
	if ct.initPid != 0 {
		if st, err := procStat(ct.initPid); err == nil && st.ppid == ct.cmd.Process.Pid {
			return ct.initPid, nil
		}
	}
	self, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return 0, err
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := procStat(pid)
		if err != nil || st.ppid != ct.cmd.Process.Pid {
			continue
		}
		if ns, err := os.Readlink("/proc/" + e.Name() + "/ns/pid"); err == nil && ns != self {
			ct.initPid = pid
			return pid, nil
		}
	}
	return 0, errors.New("the container's PID 1 was not found (still starting?)")
}

// reapStaleContainers kills and removes what containers of sshhost
// processes that died without closing left behind: their cgroups (and so
// every process in them), overlay mounts and systemd-nspawn's propagation
// directories. It runs before the stale directories are removed.
func reapStaleContainers(ctx context.Context) {
	stale := func(name string) bool {
		rest, ok := strings.CutPrefix(name, nsPrefix)
		if !ok {
			return false
		}
		pid, _, _ := strings.Cut(rest, "-")
		return !pidAlive(pid)
	}
	if hs, err := cgroupHierarchies(); err == nil {
		byName := map[string][]string{}
		for _, hier := range hs {
			ents, _ := os.ReadDir(filepath.Join(hier, cgroupRoot))
			for _, e := range ents {
				if e.IsDir() && stale(e.Name()) {
					byName[e.Name()] = append(byName[e.Name()], filepath.Join(hier, cgroupRoot, e.Name()))
				}
			}
		}
		for name, cgs := range byName {
			kctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if killCgroups(kctx, cgs, name) == nil {
				for _, cg := range cgs {
					_ = removeCgroup(cg)
				}
			}
			cancel()
		}
	}
	tmp := filepath.Clean(os.TempDir()) + "/"
	for _, mp := range overlayMounts() {
		rest, ok := strings.CutPrefix(mp, tmp)
		if !ok {
			continue
		}
		group, _, _ := strings.Cut(rest, "/")
		if stale(group) {
			_ = unix.Unmount(mp, unix.MNT_DETACH)
		}
	}
	if ents, err := os.ReadDir("/run/systemd/nspawn/propagate"); err == nil {
		for _, e := range ents {
			if stale(e.Name()) {
				_ = os.RemoveAll(filepath.Join("/run/systemd/nspawn/propagate", e.Name()))
			}
		}
	}
}

// overlayMounts lists the mount points of overlay file systems.
func overlayMounts() []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var mps []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mount-point options ... - fstype source ...
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if !ok || len(fields) < 5 || !strings.HasPrefix(post, "overlay ") {
			continue
		}
		mps = append(mps, unescapeMountinfo(fields[4]))
	}
	return mps
}

// unescapeMountinfo undoes the octal escapes (\040 for a space) of mountinfo.
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
