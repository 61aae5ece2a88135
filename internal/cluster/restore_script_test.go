package cluster

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/memberhost"
)

// The probe of a restore, run by sh here: a missing install dir reports the
// outermost directory the snapshot's copy will create, and a data dir that
// holds anything is busy.
func TestRestoreProbeScript(t *testing.T) {
	base := t.TempDir()
	l := memberhost.NewLayout(filepath.Join(base, "a", "b", "opt"), filepath.Join(base, "data"), "")
	probe := func() string {
		t.Helper()
		out, err := exec.Command("sh", "-c", restoreProbeScript(l)).CombinedOutput()
		if err != nil {
			t.Fatalf("probe: %v: %s", err, out)
		}
		return string(out)
	}
	out := probe()
	if got := createdDir(out); got != filepath.Join(base, "a") || strings.Contains(out, "busy") {
		t.Fatalf("nothing there: created %q, output %q", got, out)
	}
	if err := os.MkdirAll(l.InstallDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(l.DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out := probe(); createdDir(out) != "" || strings.Contains(out, "busy") {
		t.Fatalf("empty dirs: output %q", out)
	}
	if err := os.WriteFile(filepath.Join(l.DataDir, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := probe(); !strings.HasPrefix(strings.TrimSpace(out), "busy") {
		t.Fatalf("data dir with a file: output %q", out)
	}
}
