package sshhost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrNoSystemd means hosts with a booted systemd (WithSystemd) cannot run
// here: not root, no systemd-nspawn, no root file system built, no network
// namespaces or no writable cgroup hierarchy. Start skips the test on it,
// unless $SSHHOST_REQUIRE_SYSTEMD is 1.
var ErrNoSystemd = errors.New("sshhost: systemd hosts are not available")

// RequireSystemdEnv names the variable that makes Start fail instead of
// skipping when systemd hosts are not available (scripts/test.sh sets it:
// CI provides them).
const RequireSystemdEnv = "SSHHOST_REQUIRE_SYSTEMD"

// rootfsMarker is written last by scripts/install-rootfs.sh: a directory
// without it is not (yet) a complete root file system.
const rootfsMarker = ".sshhost-rootfs"

// RootfsCacheDir is where scripts/install-rootfs.sh builds root file
// systems: $ETCD_ROOTFS_CACHE, else terraform-provider-etcd/rootfs under
// the user's cache directory.
func RootfsCacheDir() string {
	if d := os.Getenv("ETCD_ROOTFS_CACHE"); d != "" {
		return d
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = filepath.Join(os.TempDir(), "cache")
	}
	return filepath.Join(base, "terraform-provider-etcd", "rootfs")
}

// RootfsDir returns the root file system that systemd hosts boot:
// $SSHHOST_ROOTFS if set, else the newest complete one that
// scripts/install-rootfs.sh built in RootfsCacheDir. The error wraps
// ErrNoSystemd and says how to build one.
func RootfsDir() (string, error) {
	if d := os.Getenv("SSHHOST_ROOTFS"); d != "" {
		return d, checkRootfs(d)
	}
	cache := RootfsCacheDir()
	ents, _ := os.ReadDir(cache)
	type cand struct {
		dir string
		mod int64
	}
	var cands []cand
	for _, e := range ents {
		if !e.IsDir() || strings.Contains(e.Name(), ".tmp-") {
			continue
		}
		dir := filepath.Join(cache, e.Name())
		fi, err := os.Stat(filepath.Join(dir, rootfsMarker))
		if err != nil {
			continue
		}
		cands = append(cands, cand{dir, fi.ModTime().UnixNano()})
	}
	if len(cands) == 0 {
		return "", fmt.Errorf("%w: no root file system in %s (run scripts/install-rootfs.sh)", ErrNoSystemd, cache)
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].mod > cands[j].mod })
	return cands[0].dir, checkRootfs(cands[0].dir)
}

func checkRootfs(dir string) error {
	for _, p := range []string{rootfsMarker, "usr/lib/systemd/systemd", "usr/sbin/sshd"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			return fmt.Errorf("%w: %s is not a complete root file system (%v; rebuild with scripts/install-rootfs.sh)", ErrNoSystemd, dir, err)
		}
	}
	// overlayfs takes its options as a comma-separated list.
	if strings.ContainsAny(dir, ",:") {
		return fmt.Errorf("%w: root file system path %q holds ',' or ':', which overlayfs options cannot carry", ErrNoSystemd, dir)
	}
	return nil
}

// systemdUnavailable returns why systemd hosts cannot run here, wrapping
// ErrNoSystemd, or nil. It settles o.systemd.rootfs.
func systemdUnavailable(ctx context.Context, o *options) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: systemd-nspawn containers need root", ErrNoSystemd)
	}
	if _, err := exec.LookPath(nspawnPath()); err != nil {
		return fmt.Errorf("%w: systemd-nspawn not found (apt-get install systemd-container)", ErrNoSystemd)
	}
	if _, err := exec.LookPath("nsenter"); err != nil {
		return fmt.Errorf("%w: nsenter not found (apt-get install util-linux)", ErrNoSystemd)
	}
	if o.systemd.rootfs == "" {
		dir, err := RootfsDir()
		if err != nil {
			return err
		}
		o.systemd.rootfs = dir
	} else if err := checkRootfs(o.systemd.rootfs); err != nil {
		return err
	}
	if _, err := cgroupHierarchies(); err != nil {
		return err
	}
	if reason := netnsUnavailable(ctx); reason != "" {
		return fmt.Errorf("%w: network namespaces unavailable: %s", ErrNoSystemd, reason)
	}
	return nil
}

func nspawnPath() string {
	if p, err := exec.LookPath("systemd-nspawn"); err == nil {
		return p
	}
	return "/usr/bin/systemd-nspawn"
}

// cgroupRoot is the directory under each hierarchy's root that holds one
// cgroup per running container, named like its network namespace.
const cgroupRoot = "sshhost"

// cgroupHierarchies returns the mount points of the cgroup hierarchies a
// container's processes must be placed in: the unified (v2) hierarchy and,
// on a hybrid or legacy system, the named "systemd" v1 one (systemd inside
// the container manages its units there).
//
// Each container runs in a cgroup of its own in every one of them: with
// --keep-unit, systemd-nspawn puts itself and the container into children
// of the cgroup it was started in, so containers started from the same
// cgroup would share one tree and their systemds would fight over it.
func cgroupHierarchies() ([]string, error) {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return nil, fmt.Errorf("%w: /sys/fs/cgroup: %v", ErrNoSystemd, err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return []string{"/sys/fs/cgroup"}, nil
	}
	var hs []string
	if unix.Statfs("/sys/fs/cgroup/unified", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		hs = append(hs, "/sys/fs/cgroup/unified")
	}
	if unix.Statfs("/sys/fs/cgroup/systemd", &st) == nil && st.Type == unix.CGROUP_SUPER_MAGIC {
		hs = append(hs, "/sys/fs/cgroup/systemd")
	}
	if len(hs) == 0 {
		return nil, fmt.Errorf("%w: neither a cgroup2 hierarchy nor a name=systemd one is mounted under /sys/fs/cgroup", ErrNoSystemd)
	}
	return hs, nil
}

// cgroupProcs lists the processes in cg and all its descendants.
func cgroupProcs(cg string) ([]int, error) {
	var pids []int
	err := filepath.WalkDir(cg, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		for _, f := range strings.Fields(string(b)) {
			var pid int
			if _, err := fmt.Sscan(f, &pid); err == nil {
				pids = append(pids, pid)
			}
		}
		return nil
	})
	return pids, err
}

// removeCgroup removes cg and its descendants, deepest first. They must be
// empty of processes.
func removeCgroup(cg string) error {
	var dirs []string
	err := filepath.WalkDir(cg, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := unix.Rmdir(dirs[i]); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("rmdir %s: %w", dirs[i], err))
		}
	}
	return errors.Join(errs...)
}
