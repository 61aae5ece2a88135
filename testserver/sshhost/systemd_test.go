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
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver/stocketcd"
)

// waitFor polls cond every 100ms until it holds, failing the test with the
// last reason it gave when ctx ends.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	for {
		ok, why := cond()
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within the time allowed: last: %s", what, why)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// must runs cmd on h and fails the test on error.
func must(ctx context.Context, t *testing.T, h *Host, cmd string) string {
	t.Helper()
	out, err := h.Run(ctx, cmd)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// unitProp reads one property of a unit (systemctl show --value).
func unitProp(ctx context.Context, t *testing.T, h *Host, unit, prop string) string {
	t.Helper()
	return must(ctx, t, h, "systemctl show --value -p "+prop+" "+unit)
}

// installUnit writes a unit file on h and reloads systemd.
func installUnit(ctx context.Context, t *testing.T, h *Host, name, body string) {
	t.Helper()
	must(ctx, t, h, fmt.Sprintf("cat > /etc/systemd/system/%s <<'EOF'\n%s\nEOF\nsystemctl daemon-reload", name, body))
}

// Each host is a container whose PID 1 is systemd, reached over SSH as root
// with its own host key, alone in its network namespace, with its BaseDir
// shared with the test, WithBind's paths visible read-only, and the rest of
// its disk its own.
func TestSystemdHosts(t *testing.T) {
	bound := t.TempDir()
	if err := os.WriteFile(filepath.Join(bound, "note"), []byte("from the machine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rootfs, _ := RootfsDir() // when there is none, Start says why
	hosts := Start(t, 2, WithSystemd(), WithRootfs(rootfs), WithBind(bound))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cb := knownHostsCallback(t, hosts)
	for _, h := range hosts {
		if !h.Systemd || h.Mode != ModeNetns || h.User != "root" {
			t.Fatalf("%s: Systemd=%v Mode=%s User=%s, want a root netns systemd host", h.Name, h.Systemd, h.Mode, h.User)
		}
		t.Logf("%s: booted in %s", h.Name, h.LastBoot())
		if h.LastBoot() <= 0 {
			t.Errorf("%s: LastBoot %s", h.Name, h.LastBoot())
		}
		// The host key is verified the way an operator's client does.
		c, err := dialVerified(ctx, h, cb, ssh.PublicKeys(h.Signer))
		if err != nil {
			t.Fatalf("%s: ssh with known_hosts: %v", h.Name, err)
		}
		if got := strings.TrimSpace(run(t, c, "id -un")); got != "root" {
			t.Errorf("%s: logged in as %q", h.Name, got)
		}
		if got := strings.TrimSpace(run(t, c, "cat /proc/1/comm")); got != "systemd" {
			t.Errorf("%s: PID 1 is %q, want systemd", h.Name, got)
		}
		// sshd is a unit of that systemd, not a process started from outside.
		if got := strings.TrimSpace(run(t, c, "systemctl is-active ssh.service")); got != "active" {
			t.Errorf("%s: ssh.service is %q", h.Name, got)
		}
		if got := strings.TrimSpace(run(t, c, "hostname")); got != h.Name {
			t.Errorf("%s: hostname %q", h.Name, got)
		}
		c.Close()

		// Only its own address (minbase has no ip(8): the kernel's table).
		trie := must(ctx, t, h, "cat /proc/net/fib_trie")
		if !strings.Contains(trie, h.Addr) {
			t.Errorf("%s does not see its address %s", h.Name, h.Addr)
		}
		for _, o := range hosts {
			if o != h && strings.Contains(trie, o.Addr) {
				t.Errorf("%s sees %s's address %s", h.Name, o.Name, o.Addr)
			}
		}

		// BaseDir is the same directory inside and out.
		must(ctx, t, h, "echo inside > "+filepath.Join(h.BaseDir, "from-"+h.Name))
		if b, err := os.ReadFile(filepath.Join(h.BaseDir, "from-"+h.Name)); err != nil || string(b) != "inside\n" {
			t.Errorf("%s: BaseDir file read outside: %q, %v", h.Name, b, err)
		}
		// Debian's etcd, bound read-only, runs inside.
		if _, err := os.Stat("/usr/bin/etcd"); err == nil {
			if out := must(ctx, t, h, "/usr/bin/etcd --version"); !strings.Contains(out, "etcd Version:") {
				t.Errorf("%s: /usr/bin/etcd --version: %s", h.Name, out)
			}
			if _, err := h.Run(ctx, "touch /usr/bin/etcd"); err == nil {
				t.Errorf("%s: /usr/bin/etcd is writable inside", h.Name)
			}
		}
		// WithBind's directory is there, read-only.
		if out := must(ctx, t, h, "cat "+filepath.Join(bound, "note")); out != "from the machine" {
			t.Errorf("%s: bound file reads %q", h.Name, out)
		}
		if _, err := h.Run(ctx, "touch "+filepath.Join(bound, "new")); err == nil {
			t.Errorf("%s: WithBind's directory is writable inside", h.Name)
		}
		// Exec reaches the same container without SSH.
		out, err := h.Exec(ctx, "cat", "/proc/1/comm")
		if err != nil || strings.TrimSpace(string(out)) != "systemd" {
			t.Errorf("%s: Exec cat /proc/1/comm: %q, %v", h.Name, out, err)
		}
	}
	// The rest of the disk is each host's own.
	must(ctx, t, hosts[0], "echo only-here > /etc/sshhost-private")
	if _, err := hosts[1].Run(ctx, "test ! -e /etc/sshhost-private"); err != nil {
		t.Errorf("a file written to host0's /etc shows on host1: %v", err)
	}
	if _, err := os.Stat("/etc/sshhost-private"); err == nil {
		t.Errorf("a file written to host0's /etc shows on the machine")
	}
}

// A unit installed over SSH runs under the host's systemd: it starts,
// restarts, comes back after a crash (Restart=), a Type=notify unit is
// started only once it reports ready, and a timer fires.
func TestSystemdUnits(t *testing.T) {
	h := Start(t, 1, WithSystemd())[0]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	installUnit(ctx, t, h, "beat.service", `[Unit]
Description=sshhost test service
[Service]
ExecStart=/bin/sh -c 'while :; do date +%%s.%%N > /run/beat; sleep 0.2; done'
Restart=on-failure
RestartSec=200ms
[Install]
WantedBy=multi-user.target`)
	must(ctx, t, h, "systemctl enable --now beat.service")
	if got := must(ctx, t, h, "systemctl is-active beat.service"); got != "active" {
		t.Fatalf("beat.service is %q after start", got)
	}
	pid1 := unitProp(ctx, t, h, "beat.service", "MainPID")
	if pid1 == "0" || pid1 == "" {
		t.Fatalf("beat.service has no main process: %q", pid1)
	}

	must(ctx, t, h, "systemctl restart beat.service")
	pid2 := unitProp(ctx, t, h, "beat.service", "MainPID")
	if pid2 == pid1 || pid2 == "0" {
		t.Fatalf("systemctl restart: main pid %s, was %s", pid2, pid1)
	}
	if n := unitProp(ctx, t, h, "beat.service", "NRestarts"); n != "0" {
		t.Fatalf("NRestarts %s after a manual restart, want 0", n)
	}

	// A crash: systemd restarts it (Restart=on-failure).
	must(ctx, t, h, "kill -KILL "+pid2)
	waitFor(ctx, t, "restart after SIGKILL", func() (bool, string) {
		out, err := h.Run(ctx, "systemctl show -p MainPID -p NRestarts -p ActiveState beat.service")
		if err != nil {
			return false, err.Error()
		}
		props := strings.Fields(out)
		want := []string{"ActiveState=active", "NRestarts=1"}
		for _, w := range want {
			if !strings.Contains(" "+strings.Join(props, " ")+" ", " "+w+" ") {
				return false, out
			}
		}
		return !strings.Contains(out, "MainPID="+pid2+"\n") && !strings.Contains(out, "MainPID=0\n"), out
	})

	// Type=notify: start returns only after READY=1, which the service
	// sends once it has written its marker.
	installUnit(ctx, t, h, "ready.service", `[Service]
Type=notify
NotifyAccess=all
ExecStart=/bin/sh -c 'sleep 1; echo up > /run/ready-marker; systemd-notify --ready; exec sleep infinity'
TimeoutStartSec=90`)
	must(ctx, t, h, "systemctl start ready.service")
	if got := must(ctx, t, h, "cat /run/ready-marker; systemctl is-active ready.service"); got != "up\nactive" {
		t.Fatalf("after systemctl start of a Type=notify unit: %q, want the marker and active", got)
	}

	// A timer fires its service.
	installUnit(ctx, t, h, "tick.service", `[Service]
Type=oneshot
ExecStart=/bin/sh -c 'date +%%s >> /run/ticks'`)
	installUnit(ctx, t, h, "tick.timer", `[Timer]
OnActiveSec=1s
OnUnitActiveSec=1s
AccuracySec=100ms`)
	must(ctx, t, h, "systemctl start tick.timer")
	waitFor(ctx, t, "the timer fires twice", func() (bool, string) {
		out, err := h.Run(ctx, "cat /run/ticks 2>/dev/null | wc -l")
		if err != nil {
			return false, err.Error()
		}
		n, _ := strconv.Atoi(strings.TrimSpace(out))
		return n >= 2, out + " ticks"
	})
}

// Down is a power loss: the container and everything in it die at once, its
// tmpfs is gone, its disk stays. Up boots it again: enabled units start,
// files written to disk are there. Disconnect keeps it running unreachable.
func TestSystemdDownUp(t *testing.T) {
	hosts := Start(t, 2, WithSystemd())
	h, other := hosts[0], hosts[1]
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	installUnit(ctx, t, h, "idle.service", `[Service]
ExecStart=/bin/sleep infinity
[Install]
WantedBy=multi-user.target`)
	must(ctx, t, h, "systemctl enable --now idle.service && echo disk > /var/lib/sshhost-disk && echo ram > /run/sshhost-ram")
	before := unitProp(ctx, t, h, "idle.service", "MainPID")
	otherPid := unitProp(ctx, t, other, "ssh.service", "MainPID")
	cgs := append([]string(nil), h.ct.cgroups...)
	if len(cgs) == 0 {
		t.Fatal("the container has no cgroup")
	}

	// Partition: unreachable, still running.
	if err := h.DisconnectContext(ctx); err != nil {
		t.Fatal(err)
	}
	short, c1 := context.WithTimeout(ctx, 3*time.Second)
	_, err := h.Run(short, "true")
	c1()
	if err == nil {
		t.Fatal("ssh worked on a disconnected host")
	}
	if !h.sshdRunning() {
		t.Fatal("Disconnect stopped the container")
	}
	if err := h.ReconnectContext(ctx); err != nil {
		t.Fatal(err)
	}
	if got := unitProp(ctx, t, h, "idle.service", "MainPID"); got != before {
		t.Fatalf("idle.service main pid %s after a partition, was %s: it restarted", got, before)
	}

	// Power loss.
	if err := h.DownContext(ctx); err != nil {
		t.Fatal(err)
	}
	if h.sshdRunning() {
		t.Fatal("the container still runs after Down")
	}
	for _, cg := range cgs {
		if _, err := os.Stat(cg); !os.IsNotExist(err) {
			t.Errorf("cgroup %s still there after Down: %v", cg, err)
		}
	}
	if left := inNamespace(t, h); len(left) > 0 {
		t.Fatalf("processes in the host's namespace survived Down: %v", left)
	}
	if _, err := h.Exec(ctx, "true"); err == nil {
		t.Fatal("Exec worked on a host that is down")
	}
	short, c2 := context.WithTimeout(ctx, 3*time.Second)
	_, err = h.Run(short, "true")
	c2()
	if err == nil {
		t.Fatal("ssh worked on a host that is down")
	}
	// The other host did not notice.
	if got := unitProp(ctx, t, other, "ssh.service", "MainPID"); got != otherPid {
		t.Fatalf("%s's sshd changed from %s to %s during %s's Down", other.Name, otherPid, got, h.Name)
	}

	if err := h.Up(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: booted again in %s", h.Name, h.LastBoot())
	if got := must(ctx, t, h, "cat /var/lib/sshhost-disk"); got != "disk" {
		t.Fatalf("file on disk after Up: %q", got)
	}
	if _, err := h.Run(ctx, "test ! -e /run/sshhost-ram"); err != nil {
		t.Fatalf("/run survived the power loss: %v", err)
	}
	if got := must(ctx, t, h, "systemctl is-active idle.service"); got != "active" {
		t.Fatalf("enabled idle.service is %q after Up", got)
	}
}

// Close removes the containers with everything they used: cgroups, overlay
// mounts, namespaces and directories.
func TestSystemdCloseRemovesEverything(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	g, err := New(ctx, 2, WithSystemd(), WithLogf(t.Logf))
	if errors.Is(err, ErrNoSystemd) && os.Getenv(RequireSystemdEnv) != "1" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	var cgs, mounts []string
	for _, h := range g.Hosts {
		cgs = append(cgs, h.ct.cgroups...)
		mounts = append(mounts, h.ct.merged())
	}
	if err := g.CloseContext(ctx); err != nil {
		t.Fatal(err)
	}
	for _, cg := range cgs {
		if _, err := os.Stat(cg); !os.IsNotExist(err) {
			t.Errorf("cgroup %s still there: %v", cg, err)
		}
	}
	for _, mp := range overlayMounts() {
		for _, m := range mounts {
			if mp == m {
				t.Errorf("overlay still mounted on %s", m)
			}
		}
	}
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range g.Hosts {
		if strings.Contains(string(out), h.Namespace) {
			t.Errorf("namespace %s still listed", h.Namespace)
		}
	}
	if _, err := os.Stat(g.dir); !os.IsNotExist(err) {
		t.Errorf("group dir %s still there: %v", g.dir, err)
	}
}

// What a test process killed without closing leaves behind (a running
// container, its cgroups, overlay, namespace and directory) is reaped by
// the next New.
func TestSystemdReapsStale(t *testing.T) {
	if os.Getenv("SSHHOST_STALE_CHILD") == "1" {
		// The child: start a host, report it, wait to be killed.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		g, err := New(ctx, 1, WithSystemd())
		if err != nil {
			fmt.Println("ERROR", err)
			os.Exit(1)
		}
		h := g.Hosts[0]
		fmt.Printf("HOST %s %s %s %s\n", h.Namespace, g.dir, h.ct.merged(), strings.Join(h.ct.cgroups, ","))
		time.Sleep(10 * time.Minute)
		os.Exit(0)
	}
	if err := systemdUnavailable(context.Background(), &options{}); err != nil {
		if os.Getenv(RequireSystemdEnv) != "1" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	child := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSystemdReapsStale$", "-test.v=false")
	child.Env = append(os.Environ(), "SSHHOST_STALE_CHILD=1")
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	var ns, dir, merged string
	var cgs []string
	sc := bufio.NewScanner(stdout)
	for ns == "" && sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) == 5 && f[0] == "HOST" {
			ns, dir, merged, cgs = f[1], f[2], f[3], strings.Split(f[4], ",")
		} else if strings.HasPrefix(line, "ERROR") {
			t.Fatal(line)
		}
	}
	if ns == "" {
		t.Fatalf("the child ended before starting its host: %v", sc.Err())
	}
	// The child dies as a killed go test would: no cleanup.
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	if _, err := os.Stat(cgs[0]); err != nil {
		t.Fatalf("the killed child's container cgroup is already gone (%v): nothing to reap", err)
	}
	procs, _ := cgroupProcs(cgs[0])
	t.Logf("left behind: container %s with %d processes, overlay on %s", ns, len(procs), merged)

	reapStale(ctx)

	for _, cg := range cgs {
		if _, err := os.Stat(cg); !os.IsNotExist(err) {
			t.Errorf("stale cgroup %s not reaped: %v", cg, err)
		}
	}
	for _, mp := range overlayMounts() {
		if mp == merged {
			t.Errorf("stale overlay on %s not unmounted", merged)
		}
	}
	if _, err := os.Stat(netnsPath(ns)); !os.IsNotExist(err) {
		t.Errorf("stale namespace %s not removed: %v", ns, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("stale directory %s not removed: %v", dir, err)
	}
}

// BenchmarkStartHost: New to ready and Close of one host, plain sshd and
// systemd container side by side in the same run; for the container also
// its boot (launch to `systemctl is-system-running` done) and a reboot
// (Down, then Up to ready again).
//
//	go test ./testserver/sshhost -run '^$' -bench BenchmarkStartHost -benchtime 5x
func BenchmarkStartHost(b *testing.B) {
	for _, mode := range []struct {
		name string
		opts []Option
	}{{"plain", []Option{WithMode(ModeNetns)}}, {"systemd", []Option{WithSystemd()}}} {
		b.Run(mode.name, func(b *testing.B) {
			var ready, boot, reboot time.Duration
			for i := 0; i < b.N; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
				start := time.Now()
				g, err := New(ctx, 1, mode.opts...)
				if errors.Is(err, ErrNoSystemd) || errors.Is(err, ErrNoSSHD) {
					cancel()
					b.Skip(err)
				}
				if err != nil {
					cancel()
					b.Fatal(err)
				}
				ready += time.Since(start)
				h := g.Hosts[0]
				if h.Systemd {
					boot += h.LastBoot()
					start = time.Now()
					if err := h.DownContext(ctx); err != nil {
						b.Fatal(err)
					}
					if err := h.Up(ctx); err != nil {
						b.Fatal(err)
					}
					reboot += time.Since(start)
				}
				if err := g.CloseContext(ctx); err != nil {
					b.Fatal(err)
				}
				cancel()
			}
			n := float64(b.N)
			b.ReportMetric(ready.Seconds()/n, "ready-s")
			if boot > 0 {
				b.ReportMetric(boot.Seconds()/n, "boot-s")
				b.ReportMetric(reboot.Seconds()/n, "down+up-s")
			}
		})
	}
}

// A stock etcd from the bound cache runs as a Type=notify unit: systemctl
// start returns once the member is serving (etcd notifies systemd), and
// the same release's etcdctl inside and Debian's outside reach it.
func TestSystemdRunsStockEtcd(t *testing.T) {
	bins := stocketcd.Require(t, stocketcd.V36)
	h := Start(t, 1, WithSystemd())[0]
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	client := "http://" + h.Addr + ":2379"
	peer := "http://" + h.Addr + ":2380"
	installUnit(ctx, t, h, "etcd-stock.service", fmt.Sprintf(`[Service]
Type=notify
ExecStart=%s --name m0 --data-dir %s --listen-client-urls %s --advertise-client-urls %s --listen-peer-urls %s --initial-advertise-peer-urls %s --initial-cluster m0=%s
Restart=on-failure
TimeoutStartSec=120`, bins.Etcd, filepath.Join(h.BaseDir, "etcd-data"), client, client, peer, peer, peer))
	must(ctx, t, h, "systemctl start etcd-stock.service")
	if got := must(ctx, t, h, "systemctl is-active etcd-stock.service"); got != "active" {
		t.Fatalf("etcd-stock.service is %q after start", got)
	}
	must(ctx, t, h, bins.Etcdctl+" --endpoints "+client+" put /from/inside yes")
	// From the machine, through the host's address.
	if _, err := os.Stat("/usr/bin/etcdctl"); err == nil {
		out, err := exec.CommandContext(ctx, "/usr/bin/etcdctl", "--endpoints", client, "get", "--print-value-only", "/from/inside").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "yes" {
			t.Fatalf("Debian's etcdctl get from outside: %q, %v", out, err)
		}
	}
	// The data dir is BaseDir's, visible outside.
	if _, err := os.Stat(filepath.Join(h.BaseDir, "etcd-data", "member")); err != nil {
		t.Fatalf("the member's data dir is not in BaseDir: %v", err)
	}
}
