package snapshotcmd

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver/stocketcd"
)

type statusJSON struct {
	Hash      uint32 `json:"hash"`
	Revision  int64  `json:"revision"`
	TotalKey  int    `json:"totalKey"`
	TotalSize int64  `json:"totalSize"`
	Version   string `json:"version"`
}

func parseStatus(t *testing.T, out string) statusJSON {
	t.Helper()
	var st statusJSON
	if err := json.Unmarshal([]byte(strings.TrimSpace(out)), &st); err != nil {
		t.Fatalf("status -w json: %v: %q", err, out)
	}
	return st
}

// Our save of a Debian etcd 3.4 member is a snapshot Debian's etcdctl
// reads and restores, and Debian's etcd serves the restored data dir.
func TestOurSaveDebianRestore(t *testing.T) {
	t.Parallel()
	deb := stocketcd.Require(t, stocketcd.V34Debian)
	src := freePeer(t)
	startStock(t, deb.Etcd, "src", filepath.Join(t.TempDir(), "data"), src)
	cli := dial(t, src.client)
	want := putKeys(t, cli, "/interop/", 50)
	resp, err := cli.Get(t.Context(), "/interop/000")
	if err != nil {
		t.Fatal(err)
	}
	rev := resp.Header.Revision

	file := filepath.Join(t.TempDir(), "ours.db")
	// Flags after the file name, as etcdctl allows.
	out := mustCmd(t, nil, "save", file, "--endpoints", src.client)
	if out != "Snapshot saved at "+file+"\n" {
		t.Fatalf("save printed %q", out)
	}
	deb34 := parseStatus(t, run(t, deb.Etcdctl, "snapshot", "status", "-w", "json", file))
	if deb34.Revision != rev || deb34.TotalKey < len(want) {
		t.Fatalf("Debian's status of our snapshot: %+v, want revision %d and at least %d keys", deb34, rev, len(want))
	}
	ours := parseStatus(t, mustCmd(t, nil, "status", "-w", "json", file))
	if ours.Revision != rev || ours.TotalKey != len(want) || ours.Hash != deb34.Hash || ours.TotalSize != deb34.TotalSize || ours.Version != "" {
		t.Fatalf("our status %+v, Debian's %+v; want revision %d, %d keys, no storage version", ours, deb34, rev, len(want))
	}

	dst := freePeer(t)
	dataDir := filepath.Join(t.TempDir(), "restored")
	run(t, deb.Etcdctl, "snapshot", "restore", file, "--name", "dst", "--data-dir", dataDir,
		"--initial-cluster", "dst="+dst.peer, "--initial-advertise-peer-urls", dst.peer,
		"--initial-cluster-token", "restored")
	startStock(t, deb.Etcd, "dst", dataDir, dst)
	checkKeys(t, dst.client, "/interop/", want)
	after, err := dial(t, dst.client).Get(t.Context(), "/interop/000")
	if err != nil {
		t.Fatal(err)
	}
	if after.Header.Revision < rev {
		t.Fatalf("restored member is at revision %d, the snapshot at %d", after.Header.Revision, rev)
	}
}

// A snapshot saved by Debian's etcdctl 3.4 is read by our status and
// restored by our restore, for the bundled etcd and for Debian's.
func TestDebianSaveOurRestore(t *testing.T) {
	t.Parallel()
	deb := stocketcd.Require(t, stocketcd.V34Debian)
	src := freePeer(t)
	startStock(t, deb.Etcd, "src", filepath.Join(t.TempDir(), "data"), src)
	cli := dial(t, src.client)
	want := putKeys(t, cli, "/interop/", 40)
	if _, err := cli.Delete(t.Context(), "/interop/039"); err != nil {
		t.Fatal(err)
	}
	delete(want, "/interop/039")
	resp, err := cli.Get(t.Context(), "/interop/000")
	if err != nil {
		t.Fatal(err)
	}
	rev := resp.Header.Revision

	file := filepath.Join(t.TempDir(), "debian.db")
	run(t, deb.Etcdctl, "--endpoints", src.client, "snapshot", "save", file)

	st := parseStatus(t, mustCmd(t, nil, "status", file, "--write-out", "json"))
	deb34 := parseStatus(t, run(t, deb.Etcdctl, "snapshot", "status", "-w", "json", file))
	if st.Revision != rev || st.TotalKey != len(want) || st.Hash != deb34.Hash || st.Version != "" {
		t.Fatalf("our status of Debian's snapshot: %+v (Debian's: %+v), want revision %d, %d live keys", st, deb34, rev, len(want))
	}
	simple := mustCmd(t, nil, "status", file)
	if wantLine := regexp.MustCompile(`^[0-9a-f]+, ` + itoa(rev) + `, ` + itoa(int64(len(want))) + `, [0-9.]+ [kMG]?B, \n$`); !wantLine.MatchString(simple) {
		t.Fatalf("status (simple): %q", simple)
	}
	table := mustCmd(t, nil, "status", "-w", "table", file)
	if !strings.Contains(table, "| REVISION |") || !strings.Contains(table, " "+itoa(rev)+" |") {
		t.Fatalf("status -w table:\n%s", table)
	}

	t.Run("bundled", func(t *testing.T) {
		p := freePeer(t)
		dataDir := filepath.Join(t.TempDir(), "restored")
		out := mustCmd(t, nil, "restore", file, "--name", "m1", "--data-dir", dataDir,
			"--initial-cluster", "m1="+p.peer, "--initial-advertise-peer-urls", p.peer, "--initial-cluster-token", "t1")
		if !strings.Contains(out, "restored into "+dataDir) {
			t.Fatalf("restore printed %q", out)
		}
		startBundled(t, "m1", dataDir, p)
		checkKeys(t, p.client, "/interop/", want)
	})
	t.Run("debian", func(t *testing.T) {
		p := freePeer(t)
		dataDir := filepath.Join(t.TempDir(), "restored")
		mustCmd(t, nil, "restore", file, "--name", "m2", "--data-dir", dataDir, "--target-version", "3.4",
			"--initial-advertise-peer-urls", p.peer)
		startStock(t, deb.Etcd, "m2", dataDir, p)
		checkKeys(t, p.client, "/interop/", want)
	})
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Our save of the bundled etcd 3.7 restores for 3.7 and is refused for
// 3.4, naming both versions, before anything is written.
func TestRestoreRefusesNewerSnapshot(t *testing.T) {
	t.Parallel()
	c := testserver.Start(t, testserver.WithMembers(1))
	want := putKeys(t, c.Client(), "/new/", 10)
	file := filepath.Join(t.TempDir(), "v37.db")
	// etcd >= 3.6 records its storage version a while after it starts, and
	// a snapshot carries it once it is committed: save until it does.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		out := mustCmd(t, nil, "save", "--endpoints", c.Endpoints()[0], file)
		if strings.Contains(out, "Server version 3.7.") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("save printed %q for two minutes, want the server version", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	st := parseStatus(t, mustCmd(t, nil, "status", "-w", "json", file))
	if !strings.HasPrefix(st.Version, "3.7") {
		t.Fatalf("status: storage version %q, want 3.7", st.Version)
	}

	dataDir := filepath.Join(t.TempDir(), "for34")
	_, errOut, code := cmd(t, nil, "restore", file, "--data-dir", dataDir, "--target-version", "3.4")
	if code != exitError || !strings.Contains(errOut, "taken from etcd 3.7 (storage version 3.7.0)") ||
		!strings.Contains(errOut, "cannot be restored for etcd 3.4") {
		t.Fatalf("restore of a 3.7 snapshot for 3.4: exit %d: %s", code, errOut)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Fatalf("refused restore left %s behind (%v)", dataDir, err)
	}
	for _, v := range []string{"3.6", "3.5.21"} {
		_, errOut, code = cmd(t, nil, "restore", file, "--data-dir", dataDir, "--target-version", v)
		if code != exitError || !strings.Contains(errOut, "for etcd "+v[:3]) {
			t.Fatalf("restore of a 3.7 snapshot for %s: exit %d: %s", v, code, errOut)
		}
	}

	p := freePeer(t)
	mustCmd(t, nil, "restore", file, "--name", "n", "--data-dir", dataDir, "--initial-advertise-peer-urls", p.peer)
	startBundled(t, "n", dataDir, p)
	checkKeys(t, p.client, "/new/", want)
}

// save reads etcdctl's environment variables: TLS client certificates and
// a user:password, and an error for bad credentials leaves no file.
func TestSaveTLSAuthFromEnvironment(t *testing.T) {
	t.Parallel()
	c := testserver.Start(t, testserver.WithMembers(1), testserver.WithTLS(), testserver.WithAuth())
	putKeys(t, c.Client(), "/tls/", 5)
	tls := c.TLS()
	user, pass := c.RootCredentials()
	env := map[string]string{
		"ETCDCTL_ENDPOINTS": c.Endpoints()[0],
		"ETCDCTL_CACERT":    tls.CAFile,
		"ETCDCTL_CERT":      tls.CertFile,
		"ETCDCTL_KEY":       tls.KeyFile,
		"ETCDCTL_USER":      user + ":" + pass,
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "tls.db")
	mustCmd(t, env, "save", file)
	if st := parseStatus(t, mustCmd(t, nil, "status", "-w", "json", file)); st.TotalKey < 5 {
		t.Fatalf("status: %+v, want the 5 keys", st)
	}

	env["ETCDCTL_USER"] = user + ":not-the-Pa55word"
	bad := filepath.Join(dir, "bad.db")
	_, errOut, code := cmd(t, env, "save", bad)
	if code == 0 || !strings.Contains(errOut, "authentication failed") || strings.Contains(errOut, "Pa55word") {
		t.Fatalf("save with a wrong password: exit %d: %s", code, errOut)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("after a failed save %s holds %v, want only tls.db", dir, entries)
	}

	// The --user flag wins over the environment.
	mustCmd(t, env, "save", filepath.Join(dir, "flag.db"), "--user", user+":"+pass)
}

// Bad arguments and damaged files are refused with a message that names
// the flag or the file, and nothing is written.
func TestBadInput(t *testing.T) {
	t.Parallel()
	c := testserver.Start(t, testserver.WithMembers(1))
	putKeys(t, c.Client(), "/bad/", 5)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	mustCmd(t, nil, "save", good, "--endpoints", c.Endpoints()[0])

	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	truncated := filepath.Join(dir, "truncated.db")
	if err := os.WriteFile(truncated, data[:len(data)/2+100], 0o600); err != nil {
		t.Fatal(err)
	}
	flipped := filepath.Join(dir, "flipped.db")
	bad := append([]byte(nil), data...)
	bad[len(bad)/2] ^= 0xff
	if err := os.WriteFile(flipped, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(dir, "restored")

	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"two endpoints", []string{"save", filepath.Join(dir, "x.db"), "--endpoints", c.Endpoints()[0] + ",http://127.0.0.1:1"}, exitBadArgs, "--endpoints names 2 endpoints"},
		{"bad endpoint", []string{"save", filepath.Join(dir, "x.db"), "--endpoints", "ftp://x:1"}, exitBadArgs, `--endpoints[0]: endpoint "ftp://x:1" has scheme "ftp"`},
		{"user without password", []string{"save", filepath.Join(dir, "x.db"), "--endpoints", c.Endpoints()[0], "--user", "root"}, exitBadArgs, "--password"},
		{"missing dir", []string{"save", filepath.Join(dir, "nope", "x.db"), "--endpoints", c.Endpoints()[0]}, exitError, "snapshot directory does not exist: " + filepath.Join(dir, "nope")},
		{"no file", []string{"save", "--endpoints", c.Endpoints()[0]}, exitBadArgs, "want exactly one file name"},
		{"bad format", []string{"status", good, "-w", "yaml"}, exitBadArgs, `--write-out "yaml" is not supported`},
		{"status missing", []string{"status", filepath.Join(dir, "none.db")}, exitError, "no such file"},
		{"status truncated", []string{"status", truncated}, exitError, "snapshot is corrupt"},
		{"restore truncated", []string{"restore", truncated, "--data-dir", dataDir}, exitError, "has no sha256 trailer"},
		{"restore flipped", []string{"restore", flipped, "--data-dir", dataDir}, exitError, "the trailer says"},
		{"bad target", []string{"restore", good, "--data-dir", dataDir, "--target-version", "three"}, exitBadArgs, "--target-version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := cmd(t, nil, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.want) {
				t.Fatalf("snapshot %v: exit %d, want %d with %q:\n%s", tc.args, code, tc.code, tc.want, errOut)
			}
		})
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Fatalf("refused restores left %s behind (%v)", dataDir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x.db")); !os.IsNotExist(err) {
		t.Fatalf("refused saves left x.db behind (%v)", err)
	}

	// A data dir that holds data is etcdutl's refusal.
	if err := os.MkdirAll(filepath.Join(dataDir, "member"), 0o700); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := cmd(t, nil, "restore", good, "--data-dir", dataDir)
	if code != exitError || !strings.Contains(errOut, "not empty") {
		t.Fatalf("restore into a data dir with data: exit %d: %s", code, errOut)
	}
}
