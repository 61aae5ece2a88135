package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver/sshhost"
)

func TestUpload(t *testing.T) {
	hosts := sshhost.Start(t, 1)
	h := hosts[0]
	c := mustDial(t, sshConfig(h))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	dst := filepath.Join(h.BaseDir, "etc", "sub dir", "it's.yaml")
	changed, err := c.Upload(ctx, dst, []byte("a: 1\n"), 0o640)
	if err != nil || !changed {
		t.Fatalf("first upload: %v %v", changed, err)
	}
	got, err := os.ReadFile(dst) // the host shares our file system
	if err != nil || string(got) != "a: 1\n" {
		t.Fatalf("content %q %v", got, err)
	}
	if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", fi.Mode())
	}
	if changed, err := c.Upload(ctx, dst, []byte("a: 1\n"), 0o640); err != nil || changed {
		t.Fatalf("identical re-upload: changed=%v %v", changed, err)
	}
	if changed, err := c.Upload(ctx, dst, []byte("a: 1\n"), 0o600); err != nil || !changed {
		t.Fatalf("mode change: changed=%v %v", changed, err)
	}
	if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode after chmod %v", fi.Mode())
	}
	if changed, err := c.Upload(ctx, dst, []byte("a: 2\n"), 0o600); err != nil || !changed {
		t.Fatalf("content change: changed=%v %v", changed, err)
	}
	if got, _ := os.ReadFile(dst); string(got) != "a: 2\n" {
		t.Fatalf("content %q", got)
	}
	// No temporary files left behind.
	ents, _ := os.ReadDir(filepath.Dir(dst))
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries", len(ents))
	}
	if _, err := c.Upload(ctx, "relative/path", nil, 0o600); err == nil {
		t.Fatal("relative remote path accepted")
	}

	// A large binary, streamed; a second upload is skipped by hash.
	big := make([]byte, 8<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	local := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(local, big, 0o755); err != nil {
		t.Fatal(err)
	}
	remote := filepath.Join(h.BaseDir, "bin", "etcd")
	start := time.Now()
	if changed, err := c.UploadFile(ctx, local, remote, 0o755); err != nil || !changed {
		t.Fatalf("binary upload: %v %v", changed, err)
	}
	first := time.Since(start)
	start = time.Now()
	if changed, err := c.UploadFile(ctx, local, remote, 0o755); err != nil || changed {
		t.Fatalf("binary re-upload: %v %v", changed, err)
	}
	t.Logf("8 MiB upload %s, identical re-upload %s", first, time.Since(start))
	if got, _ := os.ReadFile(remote); !bytes.Equal(got, big) {
		t.Fatal("binary differs")
	}
	sum, err := RemoteSHA256(ctx, c, remote)
	want, _ := FileSHA256(local)
	if err != nil || sum != want {
		t.Fatalf("remote hash %q %v, want %q", sum, err, want)
	}
	if sum, err := RemoteSHA256(ctx, c, remote+".missing"); err != nil || sum != "" {
		t.Fatalf("missing file hash %q %v", sum, err)
	}

	// CopyFile: always copies, into a new directory, with the mode.
	copied := filepath.Join(h.BaseDir, "restore", "snap.db")
	if err := c.CopyFile(ctx, local, copied, 0o600); err != nil {
		t.Fatalf("copy: %v", err)
	}
	if got, _ := os.ReadFile(copied); !bytes.Equal(got, big) {
		t.Fatal("copy differs")
	}
	if fi, _ := os.Stat(copied); fi.Mode().Perm() != 0o600 {
		t.Fatalf("copy mode %v", fi.Mode())
	}
	if err := c.CopyFile(ctx, local, "relative/snap.db", 0o600); err == nil {
		t.Fatal("copy to a relative remote path accepted")
	}
	// A copy that arrives short is refused, and neither it nor its
	// temporary file is left behind.
	short := filepath.Join(h.BaseDir, "restore", "short.db")
	_, err = c.RunWithInput(ctx, copyScript(short, int64(len(big)), 0o600), bytes.NewReader(big[:len(big)/2]))
	var ce *CommandError
	if !errors.As(err, &ce) || ce.ExitStatus != 3 || !strings.Contains(ce.Stderr, "incomplete") {
		t.Fatalf("short copy: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Dir(short)); len(ents) != 1 || ents[0].Name() != "snap.db" {
		t.Fatalf("after a short copy the directory holds %v", ents)
	}
}

func TestQuote(t *testing.T) {
	hosts := sshhost.Start(t, 1)
	c := mustDial(t, sshConfig(hosts[0]))
	for _, s := range []string{"plain", "it's", `"$(touch /tmp/pwned)"`, "a b\tc", "`x`", `\`, ""} {
		out, err := c.Run(context.Background(), "printf '%s' "+Quote(s))
		if err != nil || out != s {
			t.Errorf("Quote(%q): got %q %v", s, out, err)
		}
	}
	if strings.Contains(Quote("x"), "\n") {
		t.Fatal("newline")
	}
}

func TestDataDir(t *testing.T) {
	hosts := sshhost.Start(t, 1)
	h := hosts[0]
	c := mustDial(t, sshConfig(h))
	ctx := context.Background()
	dir := filepath.Join(h.BaseDir, "var", "lib", "etcd")
	if st, err := InspectDataDir(ctx, c, dir); err != nil || st.Exists || st.HasMember {
		t.Fatalf("missing dir: %+v %v", st, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if st, _ := InspectDataDir(ctx, c, dir); !st.Exists || st.HasMember {
		t.Fatalf("empty dir: %+v", st)
	}
	if err := os.MkdirAll(filepath.Join(dir, "member", "wal"), 0o700); err != nil {
		t.Fatal(err)
	}
	if st, _ := InspectDataDir(ctx, c, dir); !st.HasMember {
		t.Fatalf("dir with a member: %+v", st)
	}
	if err := RemoveDir(ctx, c, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("still there: %v", err)
	}
	for _, bad := range []string{"/", "/var", "var/lib/etcd", "/var/../", ""} {
		if err := RemoveDir(ctx, c, bad); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("RemoveDir(%q) = %v", bad, err)
		}
	}
}

func TestDetectPlatform(t *testing.T) {
	hosts := sshhost.Start(t, 1)
	c := mustDial(t, sshConfig(hosts[0]))
	p, err := DetectPlatform(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	if p.OS != runtime.GOOS || p.Arch != runtime.GOARCH {
		t.Fatalf("platform %s, want %s/%s (the test host is this machine)", p, runtime.GOOS, runtime.GOARCH)
	}
}
