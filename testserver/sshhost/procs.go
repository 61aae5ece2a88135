package sshhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// procSet says which processes belong to a host: those carrying its marker
// in their environment (every session, through sshd's SetEnv, even after it
// daemonized) and, in ModeNetns, everything living in its network
// namespace. (sshd and its connections are found as a tree, see killTree:
// sshd overwrites its environment.) A process is never matched just
// because its pid was once seen: killing goes through a pidfd taken before the process is
// checked again, so a pid reused by another process is never signalled.
type procSet struct {
	marker []byte         // "\x00SSHHOST_ID=<id>\x00"; nil: namespace only
	ns     string         // network namespace name; "": marker only
	nsStat syscall.Stat_t // of the namespace's bind mount: its nsfs inode
	// never matched: this process and its ancestors (the go test binary,
	// go test, the shell), whatever their environment or namespace says.
	exclude map[int]bool
}

func newProcSet(id, ns string) (*procSet, error) {
	p := &procSet{ns: ns, exclude: selfAndAncestors()}
	if id != "" {
		p.marker = []byte("\x00" + markerVar + "=" + id + "\x00")
	}
	if ns != "" {
		var st syscall.Stat_t
		if err := syscall.Stat(netnsPath(ns), &st); err != nil {
			if p.marker == nil {
				if errors.Is(err, os.ErrNotExist) {
					return nil, nil // nothing can live in a namespace that is gone
				}
				return nil, fmt.Errorf("namespace %s: %w", ns, err)
			}
			p.ns = "" // gone: the marker still finds what ran in it
		} else {
			p.nsStat = st
		}
	}
	return p, nil
}

// selfAndAncestors returns the pids of this process and its ancestors.
func selfAndAncestors() map[int]bool {
	m := map[int]bool{os.Getpid(): true}
	for pid := os.Getppid(); pid > 1 && !m[pid]; {
		m[pid] = true
		st, err := procStat(pid)
		if err != nil {
			break
		}
		pid = st.ppid
	}
	return m
}

type procStatus struct {
	comm  string
	state byte
	ppid  int
	start uint64 // clock ticks after boot: with the pid, names one process
}

func procStat(pid int) (procStatus, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStatus{}, err
	}
	// pid (comm) state ppid ...; comm may contain spaces and parentheses.
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procStatus{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[end+1:]) // from field 3, state
	if len(f) < 20 {
		return procStatus{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ppid, _ := strconv.Atoi(f[1])
	start, _ := strconv.ParseUint(f[19], 10, 64)
	return procStatus{comm: s[open+1 : end], state: f[0][0], ppid: ppid, start: start}, nil
}

// matches reports whether pid is (still) one of the set's processes. A
// zombie matches neither way (it has no namespace and no environment left),
// so a process counts as gone once it has died, reaped or not.
func (p *procSet) matches(pid int) bool {
	if p.exclude[pid] {
		return false
	}
	dir := "/proc/" + strconv.Itoa(pid)
	if p.ns != "" {
		var st syscall.Stat_t
		if syscall.Stat(dir+"/ns/net", &st) == nil && st.Dev == p.nsStat.Dev && st.Ino == p.nsStat.Ino {
			return true
		}
	}
	if p.marker == nil {
		return false
	}
	env, err := os.ReadFile(dir + "/environ")
	if err != nil || len(env) == 0 {
		return false
	}
	b := make([]byte, 0, len(env)+2)
	b = append(append(append(b, 0), env...), 0)
	return bytes.Contains(b, p.marker)
}

// scan lists the set's processes. Reading another process's environment
// waits for that process's memory map lock, which a process stuck in the
// kernel can hold for long; the scan therefore runs aside and gives up
// with ctx.
func (p *procSet) scan(ctx context.Context) ([]int, error) {
	type result struct {
		pids []int
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		ents, err := os.ReadDir("/proc")
		if err != nil {
			ch <- result{err: err}
			return
		}
		var pids []int
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || ctx.Err() != nil {
				continue
			}
			if p.matches(pid) {
				pids = append(pids, pid)
			}
		}
		ch <- result{pids: pids}
	}()
	select {
	case r := <-ch:
		return r.pids, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("scanning /proc: %w", context.Cause(ctx))
	}
}

// kill sends SIGKILL to pid if it is one of the set's processes. The pid is
// pinned with a pidfd first and checked after: if it has been reused by then,
// the check sees the new process and either rejects it or (if it is ours as
// well) the signal goes to the pinned, dead process and is lost harmlessly.
func (p *procSet) kill(pid int) error {
	fd, err := unix.PidfdOpen(pid, 0)
	switch {
	case errors.Is(err, unix.ESRCH):
		return nil
	case errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL):
		// No pidfds (Linux < 5.3, or seccomp): check and kill, which leaves
		// the small window the pidfd closes.
		if !p.matches(pid) {
			return nil
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("kill %d: %w", pid, err)
		}
		return nil
	case err != nil:
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	if !p.matches(pid) {
		return nil
	}
	if err := unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("kill %d: %w", pid, err)
	}
	return nil
}

// killAll kills the set's processes until none is left, or fails with ctx
// naming the survivors (a process stuck in uninterruptible sleep dies only
// when the kernel lets it).
func (p *procSet) killAll(ctx context.Context) error {
	if p == nil {
		return nil
	}
	var killErrs []error
	for {
		pids, err := p.scan(ctx)
		if err != nil {
			return errors.Join(append(killErrs, err)...)
		}
		if len(pids) == 0 {
			return nil
		}
		killErrs = killErrs[:0]
		for _, pid := range pids {
			if err := p.kill(pid); err != nil {
				killErrs = append(killErrs, err)
			}
		}
		select {
		case <-ctx.Done():
			return errors.Join(append(killErrs,
				fmt.Errorf("still alive after SIGKILL: %s: %w", describePids(pids), context.Cause(ctx)))...)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func describePids(pids []int) string {
	var parts []string
	for i, pid := range pids {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("and %d more", len(pids)-i))
			break
		}
		if st, err := procStat(pid); err == nil {
			parts = append(parts, fmt.Sprintf("%d (%s, state %c)", pid, st.comm, st.state))
		} else {
			parts = append(parts, strconv.Itoa(pid))
		}
	}
	return strings.Join(parts, ", ")
}

// killTree kills root and all its descendants. sshd overwrites its
// environment area with its process titles, so its connections (which also
// leave its process group with setsid) can only be found through their
// parent. The tree is frozen first: SIGSTOP top-down, pass after pass, until
// a pass that starts when every member has stopped (a stopped process is not
// inside fork) finds no new child. Then every member gets SIGKILL.
//
// A process is taken for a child only if its parent, a member, still exists
// after the child's parent link was read (so the parent's pid had not been
// reused), and it is pinned with a pidfd before that check and signalled
// through it: a pid reused by another process is never signalled.
func killTree(ctx context.Context, root *os.Process) error {
	if err := root.Signal(syscall.SIGSTOP); err != nil {
		// Gone already: what it forked carries on without it and is left to
		// the marker and namespace scans.
		return nil
	}
	type member struct {
		fd  int // pidfd; -1 for root (os.Process has its own) or without pidfd support
		pid int
	}
	members := map[int]*member{root.Pid: {fd: -1, pid: root.Pid}}
	defer func() {
		for _, m := range members {
			if m.fd >= 0 {
				unix.Close(m.fd)
			}
		}
	}()
	signal := func(m *member, sig syscall.Signal) error {
		var err error
		switch {
		case m.pid == root.Pid:
			if err = root.Signal(sig); errors.Is(err, os.ErrProcessDone) {
				err = unix.ESRCH
			}
		case m.fd >= 0:
			err = unix.PidfdSendSignal(m.fd, sig, nil, 0)
		default:
			err = unix.Kill(m.pid, sig)
		}
		return err
	}
	// exists: alive or a zombie, which keeps its pid from being reused.
	exists := func(m *member) bool { return signal(m, 0) == nil }
	childOfMember := func(pid int) bool {
		st, err := procStat(pid)
		if err != nil {
			return false
		}
		p := members[st.ppid]
		return p != nil && exists(p)
	}
	allStopped := func() bool {
		for _, m := range members {
			st, err := procStat(m.pid)
			if err == nil && !strings.ContainsRune("TtZX", rune(st.state)) && exists(m) {
				return false
			}
		}
		return true
	}
	var errs []error
	for {
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("freezing the processes of %d: %w", root.Pid, context.Cause(ctx)))
			break
		}
		settled := allStopped()
		ents, err := os.ReadDir("/proc")
		if err != nil {
			errs = append(errs, err)
			break
		}
		added := 0
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || members[pid] != nil || !childOfMember(pid) {
				continue
			}
			fd, err := unix.PidfdOpen(pid, 0)
			switch {
			case err == nil:
			case errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL):
				fd = -1
			default:
				continue // gone
			}
			if !childOfMember(pid) { // checked again now that it is pinned
				if fd >= 0 {
					unix.Close(fd)
				}
				continue
			}
			m := &member{fd: fd, pid: pid}
			members[pid] = m
			_ = signal(m, syscall.SIGSTOP)
			added++
		}
		if settled && added == 0 {
			break
		}
		if added == 0 {
			select {
			case <-ctx.Done():
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	for _, m := range members {
		if err := signal(m, syscall.SIGKILL); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("kill %d: %w", m.pid, err))
		}
	}
	return errors.Join(errs...)
}
