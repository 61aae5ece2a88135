// Package stocketcd finds stock etcd releases for tests: the older servers
// (and their etcdctl and etcdutl) that scripts/install-etcd.sh builds from
// the Go module proxy into the cache, and Debian's etcd 3.4 in /usr/bin.
// Upgrade and interop tests run these unmodified upstream binaries next to
// the provider's bundled server.
//
//	bins := stocketcd.Require(t, stocketcd.V35) // skips when not built
//	bins.Etcd, bins.Etcdctl, bins.Etcdutl
//
// The versions built are the lines of versions.txt (embedded here and read
// by the script); the constants below name the role of each.
//
// Every binary is checked once per process: it must report its version
// (`etcd --version`, `etcdctl version`) or Find fails, so a stale or broken
// build is never used for another version.
//
// # Skips
//
// Require skips the test, naming the script to run, when a version is not
// built. With STOCKETCD_REQUIRE=1 in the environment (scripts/test.sh sets
// it after building them) it fails the test instead: CI has every version.
package stocketcd

import (
	"bufio"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

const (
	// V35 is the newest 3.5 release the module proxy serves.
	V35 = "3.5.36"
	// V35BelowUpgradeMinimum is a 3.5 release below UpgradeMinimum35: etcd's
	// guide does not support upgrading it to 3.6. Only etcd is built for it:
	// the proxy does not serve etcdctl and etcdutl at this version.
	V35BelowUpgradeMinimum = "3.5.23"
	// V36 is the newest 3.6 release the module proxy serves.
	V36 = "3.6.17"
	// V37 is a stock etcd 3.7, the release the provider bundles, for
	// upgrades onto a stock 3.7 given as remote_binary.
	V37 = "3.7.3"
	// V34Debian is the version of Debian bookworm's etcd-server package,
	// /usr/bin/etcd (see Debian).
	V34Debian = "3.4.23"

	// UpgradeMinimum35 is the oldest 3.5 release that etcd's upgrade guide
	// allows upgrading to 3.6: "Upgrade etcd from v3.5 to v3.6", section
	// "Upgrade checklists" / "Update 3.5" (https://etcd.io/docs/v3.6/upgrades/upgrade_3_6/).
	// The guide raised it over time (3.5.20, then 3.5.26, then 3.5.32).
	UpgradeMinimum35 = "3.5.32"
)

// RequireEnv names the variable that turns Require's skips into failures.
const RequireEnv = "STOCKETCD_REQUIRE"

// ErrNotBuilt means a version's binaries are not in the cache.
var ErrNotBuilt = errors.New("stocketcd: not built")

//go:embed versions.txt
var versionsTxt string

// Versions returns the versions scripts/install-etcd.sh builds, in the
// order of versions.txt.
func Versions() []string {
	var vs []string
	sc := bufio.NewScanner(strings.NewReader(versionsTxt))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		if line = strings.TrimSpace(line); line != "" {
			vs = append(vs, line)
		}
	}
	return vs
}

// Binaries are the stock binaries of one etcd version. Etcdctl and Etcdutl
// are "" where that version has none (etcdutl appeared in 3.5; the proxy
// lacks some releases' tools).
type Binaries struct {
	Version string
	Etcd    string
	Etcdctl string
	Etcdutl string
}

// CacheDir is where scripts/install-etcd.sh builds: $ETCD_STOCK_CACHE, else
// terraform-provider-etcd/etcd under the user's cache directory.
func CacheDir() string {
	if d := os.Getenv("ETCD_STOCK_CACHE"); d != "" {
		return d
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = filepath.Join(os.TempDir(), "cache")
	}
	return filepath.Join(base, "terraform-provider-etcd", "etcd")
}

// Dir is the directory of one version's binaries.
func Dir(version string) string { return filepath.Join(CacheDir(), "etcd-"+version) }

var checked sync.Map // path+"\x00"+version -> error

// check runs `bin args...` once per process and wants version in the first
// line of its output.
func check(bin, version string, args ...string) error {
	key := bin + "\x00" + version
	if err, ok := checked.Load(key); ok {
		if err == nil {
			return nil
		}
		return err.(error)
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	first, _, _ := strings.Cut(string(out), "\n")
	switch {
	case err != nil:
		err = fmt.Errorf("stocketcd: %s %s: %w: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	case !strings.HasSuffix(strings.TrimSpace(first), " "+version):
		err = fmt.Errorf("stocketcd: %s reports %q, want version %s (rebuild with scripts/install-etcd.sh %s)", bin, first, version, version)
	}
	checked.Store(key, err)
	return err
}

// Find returns the binaries of a version built by scripts/install-etcd.sh
// (wrapping ErrNotBuilt when they are not there) after checking that each
// reports that version. For V34Debian it returns Debian's.
func Find(version string) (Binaries, error) {
	if version == V34Debian {
		return Debian()
	}
	dir := Dir(version)
	b := Binaries{Version: version, Etcd: filepath.Join(dir, "etcd")}
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		return Binaries{}, fmt.Errorf("%w: etcd %s is not in %s (run scripts/install-etcd.sh %s)", ErrNotBuilt, version, dir, version)
	}
	if err := check(b.Etcd, version, "--version"); err != nil {
		return Binaries{}, err
	}
	for _, t := range []struct {
		name string
		dst  *string
	}{{"etcdctl", &b.Etcdctl}, {"etcdutl", &b.Etcdutl}} {
		p := filepath.Join(dir, t.name)
		if _, err := os.Stat(p); err != nil {
			continue
		}
		if err := check(p, version, "version"); err != nil {
			return Binaries{}, err
		}
		*t.dst = p
	}
	return b, nil
}

var debianVersion = regexp.MustCompile(`^etcd Version: (\S+)`)

// Debian returns Debian's etcd and etcdctl (/usr/bin; packages etcd-server
// and etcd-client) with the version the server reports, wrapping
// ErrNotBuilt when they are not installed. It has no etcdutl.
func Debian() (Binaries, error) {
	b := Binaries{Etcd: "/usr/bin/etcd", Etcdctl: "/usr/bin/etcdctl"}
	for _, p := range []string{b.Etcd, b.Etcdctl} {
		if _, err := os.Stat(p); err != nil {
			return Binaries{}, fmt.Errorf("%w: %s is missing (apt-get install etcd-server etcd-client)", ErrNotBuilt, p)
		}
	}
	out, err := exec.Command(b.Etcd, "--version").CombinedOutput()
	if err != nil {
		return Binaries{}, fmt.Errorf("stocketcd: %s --version: %w: %s", b.Etcd, err, out)
	}
	m := debianVersion.FindStringSubmatch(string(out))
	if m == nil {
		return Binaries{}, fmt.Errorf("stocketcd: %s --version: no version in %q", b.Etcd, out)
	}
	b.Version = m[1]
	if err := check(b.Etcdctl, b.Version, "version"); err != nil {
		return Binaries{}, err
	}
	return b, nil
}

// Require returns Find(version) for a test. When the version is not built it
// skips the test with the command that builds it, or fails it when
// $STOCKETCD_REQUIRE is 1; any other error fails the test.
func Require(tb testing.TB, version string) Binaries {
	tb.Helper()
	b, err := Find(version)
	if errors.Is(err, ErrNotBuilt) {
		if os.Getenv(RequireEnv) == "1" {
			tb.Fatalf("%v (%s=1: every version must be there)", err, RequireEnv)
		}
		tb.Skipf("skipping: %v", err)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
