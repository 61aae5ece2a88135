package sshhost

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The pool the per-host /30 networks are taken from.
var netnsPool = net.IPNet{IP: net.IPv4(10, 213, 0, 0).To4(), Mask: net.CIDRMask(16, 32)}

const nsPrefix = "sshhost-"

func ipPath() string {
	if p, err := exec.LookPath("ip"); err == nil {
		return p
	}
	return "/usr/sbin/ip"
}

func netnsPath(ns string) string { return filepath.Join("/run/netns", ns) }

// ip runs ip(8), bounded by ctx: a command that does not finish (rtnl
// contention, say) is killed and reported instead of blocking the caller.
func ip(ctx context.Context, args ...string) error {
	_, err := ipOutput(ctx, args...)
	return err
}

// ipTimeout bounds one ip(8) command even when ctx allows more.
const ipTimeout = time.Minute

func ipOutput(ctx context.Context, args ...string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("ip %s: not run: %w", strings.Join(args, " "), context.Cause(ctx))
	}
	ctx, cancel := context.WithTimeoutCause(ctx, ipTimeout, fmt.Errorf("no answer within %s", ipTimeout))
	defer cancel()
	cmd := exec.CommandContext(ctx, ipPath(), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second // do not wait for the output of a killed ip
	err := cmd.Run()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("did not finish: %w", context.Cause(ctx))
		}
		return out.Bytes(), fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out.Bytes()))
	}
	return out.Bytes(), nil
}

// netnsUnavailable returns why namespaces cannot be used, or "".
func netnsUnavailable(ctx context.Context) string {
	if _, err := exec.LookPath("ip"); err != nil {
		if _, err := os.Stat("/usr/sbin/ip"); err != nil {
			return "ip(8) not found (install iproute2)"
		}
	}
	probe := fmt.Sprintf("%sprobe-%d-%s", nsPrefix, os.Getpid(), randHex(3))
	if err := ip(ctx, "netns", "add", probe); err != nil {
		return err.Error()
	}
	_ = ip(ctx, "netns", "del", probe)
	return ""
}

// lockAlloc serializes address allocation among all processes on the
// machine (go test runs packages in parallel), so two processes never pick
// the same /30: the root-side address is assigned before the lock is freed.
// Waiting for the lock is bounded by ctx.
func lockAlloc(ctx context.Context) (unlock func(), err error) {
	path := filepath.Join(os.TempDir(), "sshhost-alloc.lock")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for %s (held by another sshhost process): %w", path, context.Cause(ctx))
		case <-time.After(20 * time.Millisecond):
		}
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

// usedNets lists the IPv4 networks already present in the root namespace:
// interface addresses and routes.
func usedNets(ctx context.Context) []*net.IPNet {
	var nets []*net.IPNet
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
				nets = append(nets, n)
			}
		}
	}
	out, _ := ipOutput(ctx, "-4", "route", "show", "table", "all")
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		dst := f[0]
		switch dst {
		case "local", "broadcast", "unicast", "multicast", "blackhole", "unreachable", "prohibit", "throw", "nat", "anycast":
			if len(f) < 2 {
				continue
			}
			dst = f[1]
		}
		if dst == "default" {
			continue
		}
		if !strings.Contains(dst, "/") {
			dst += "/32"
		}
		if _, n, err := net.ParseCIDR(dst); err == nil {
			nets = append(nets, n)
		}
	}
	return nets
}

func overlaps(a, b *net.IPNet) bool { return a.Contains(b.IP) || b.Contains(a.IP) }

// createNetns makes a namespace with a veth pair and a free /30, and returns
// the host address, the root-side (gateway) address, the namespace and the
// root-side link name.
func createNetns(ctx context.Context) (addr, gw, ns, link string, err error) {
	unlock, err := lockAlloc(ctx)
	if err != nil {
		return "", "", "", "", fmt.Errorf("allocation lock: %w", err)
	}
	defer unlock()
	if err := enableForwarding(); err != nil {
		return "", "", "", "", err
	}
	used := usedNets(ctx)
	var lastErr error
	for attempt := 0; attempt < 20; attempt++ {
		if err := ctx.Err(); err != nil {
			return "", "", "", "", err
		}
		var b [4]byte
		_, _ = rand.Read(b[:])
		blocks := uint32(1) << (32 - 16 - 2) // /30s in the /16
		idx := binary.BigEndian.Uint32(b[:]) % blocks
		base := binary.BigEndian.Uint32(netnsPool.IP.To4()) + idx*4
		cand := &net.IPNet{IP: u32IP(base), Mask: net.CIDRMask(30, 32)}
		clash := false
		for _, n := range used {
			if overlaps(cand, n) {
				clash = true
				break
			}
		}
		if clash {
			lastErr = fmt.Errorf("%s is in use", cand)
			continue
		}
		tok := randHex(3)
		ns = fmt.Sprintf("%s%d-%s", nsPrefix, os.Getpid(), tok)
		link = "sshh" + tok  // root side, <= 15 chars
		peer := "sshn" + tok // namespace side, renamed to eth0
		gw, addr = u32IP(base+1).String(), u32IP(base+2).String()
		if err := buildNetns(ctx, ns, link, peer, gw, addr); err != nil {
			_ = removeNetns(ctx, ns, link)
			lastErr = err
			continue
		}
		return addr, gw, ns, link, nil
	}
	return "", "", "", "", fmt.Errorf("no free address in %s after 20 tries: %w", &netnsPool, lastErr)
}

func buildNetns(ctx context.Context, ns, link, peer, gw, addr string) error {
	steps := [][]string{
		{"netns", "add", ns},
		{"link", "add", link, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", ns},
		{"addr", "add", gw + "/30", "dev", link},
		{"link", "set", link, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "link", "set", peer, "name", "eth0"},
		{"-n", ns, "addr", "add", addr + "/30", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "route", "add", "default", "via", gw},
	}
	for _, s := range steps {
		if err := ip(ctx, s...); err != nil {
			return err
		}
	}
	return nil
}

// enableForwarding lets hosts reach each other through the root namespace.
func enableForwarding() error {
	const p = "/proc/sys/net/ipv4/ip_forward"
	b, err := os.ReadFile(p)
	if err == nil && strings.TrimSpace(string(b)) == "1" {
		return nil
	}
	if err := os.WriteFile(p, []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("enable IPv4 forwarding so hosts can reach each other: %w", err)
	}
	return nil
}

// removeNetns kills what runs in the namespace and deletes it with its veth.
func removeNetns(ctx context.Context, ns, link string) error {
	var errs []error
	if ps, err := newProcSet("", ns); err != nil {
		errs = append(errs, err)
	} else if err := ps.killAll(ctx); err != nil {
		errs = append(errs, fmt.Errorf("processes in namespace %s: %w", ns, err))
	}
	if _, err := os.Stat(netnsPath(ns)); err == nil {
		if err := ip(ctx, "netns", "del", ns); err != nil && !strings.Contains(err.Error(), "No such file") {
			errs = append(errs, err)
		}
	}
	// Deleting the namespace destroys the peer and with it the pair, but
	// asynchronously: the pair may be seen here and be gone by the time it
	// is deleted. This is for a namespace whose creation failed half-way.
	if link != "" {
		if _, err := net.InterfaceByName(link); err == nil {
			if err := ip(ctx, "link", "del", link); err != nil &&
				!strings.Contains(err.Error(), "Cannot find device") && !strings.Contains(err.Error(), "No such device") {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// killProcesses kills what the host's sessions started, daemonized or not
// (sshd and its connections are stopSSHD's): the processes carrying its
// marker in their environment and, in ModeNetns, all in its namespace. It
// returns once none is left, or fails with ctx naming the survivors.
func (h *Host) killProcesses(ctx context.Context) error {
	ns := ""
	if h.Mode == ModeNetns {
		ns = h.Namespace
	}
	ps, err := newProcSet(h.id, ns)
	if err != nil {
		return err
	}
	if err := ps.killAll(ctx); err != nil {
		return fmt.Errorf("killing the host's processes: %w", err)
	}
	return nil
}

// waitReachable waits until the host's address answers on sshd's port from
// the root namespace: a connection, or a refusal when sshd is not running.
// Right after the link comes up, the root side may still hold a failed
// neighbour entry, and the first connections fail with "no route to host".
func (h *Host) waitReachable(ctx context.Context) error {
	var lastErr error
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := (&net.Dialer{}).DialContext(actx, "tcp", h.HostPort())
		cancel()
		if err == nil {
			c.Close()
			return nil
		}
		if errors.Is(err, syscall.ECONNREFUSED) {
			return nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s is not reachable (last: %v): %w", h.HostPort(), lastErr, context.Cause(ctx))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pidAlive reports whether the process with this (decimal) pid exists;
// anything that is not a pid counts as alive, so that it is left alone.
func pidAlive(pid string) bool {
	n, err := strconv.Atoi(pid)
	if err != nil {
		return true
	}
	return syscall.Kill(n, 0) == nil || errors.Is(syscall.Kill(n, 0), syscall.EPERM)
}

// reapStale removes containers, namespaces and directories left by sshhost
// processes that died without closing.
func reapStale(ctx context.Context) {
	alive := pidAlive
	reapStaleContainers(ctx) // before their directories go
	if ents, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range ents {
			name, ok := strings.CutPrefix(e.Name(), nsPrefix)
			if !ok {
				continue
			}
			name = strings.TrimPrefix(name, "probe-")
			pid, _, _ := strings.Cut(name, "-")
			if !alive(pid) {
				_ = removeNetns(ctx, e.Name(), "")
			}
		}
	}
	if ents, err := os.ReadDir(os.TempDir()); err == nil {
		for _, e := range ents {
			name, ok := strings.CutPrefix(e.Name(), "sshhost-")
			if !ok || !e.IsDir() {
				continue
			}
			pid, _, _ := strings.Cut(name, "-")
			if !alive(pid) {
				_ = os.RemoveAll(filepath.Join(os.TempDir(), e.Name()))
			}
		}
	}
}

// loopbackAddr picks a random 127.a.b.c address and a free port on it.
func loopbackAddr() (string, int, error) {
	var lastErr error
	for range 20 {
		var b [3]byte
		_, _ = rand.Read(b[:])
		a := net.IPv4(127, 100+b[0]%150, b[1], 1+b[2]%250).String()
		l, err := net.Listen("tcp", net.JoinHostPort(a, "0"))
		if err != nil {
			lastErr = err
			continue
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		return a, port, nil
	}
	return "", 0, fmt.Errorf("no free loopback address: %w", lastErr)
}

func u32IP(v uint32) net.IP {
	b := make(net.IP, 4)
	binary.BigEndian.PutUint32(b, v)
	return b
}
