package node

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func etcdSpec(bin string) ServiceSpec {
	return ServiceSpec{
		Name:        "etcd-m1",
		Description: "etcd member m1 of cluster prod",
		Command:     []string{bin, "--config-file", "/opt/etcd/etc/etcd 100%.yaml"},
		WorkDir:     "/opt/etcd",
		Env:         map[string]string{"GOMAXPROCS": "2", "ETCD_UNSUPPORTED_ARCH": `a "quoted" $value`},
		Notify:      true,
	}
}

func TestRenderSystemdUnit(t *testing.T) {
	unit, err := RenderSystemdUnit(etcdSpec("/usr/bin/etcd"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(unit)
	for _, want := range []string{
		"Type=notify\n",
		"NotifyAccess=main\n",
		`ExecStart="/usr/bin/etcd" "--config-file" "/opt/etcd/etc/etcd 100%%.yaml"` + "\n",
		`Environment="ETCD_UNSUPPORTED_ARCH=a \"quoted\" $$value"` + "\n",
		`Environment="GOMAXPROCS=2"` + "\n",
		"Restart=on-failure\n",
		"TimeoutStartSec=infinity\n",
		"WantedBy=multi-user.target\n",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("unit lacks %q:\n%s", want, s)
		}
	}
	spec := etcdSpec("/usr/bin/etcd")
	spec.Notify = false
	unit, _ = RenderSystemdUnit(spec)
	if !strings.Contains(string(unit), "Type=exec\n") || strings.Contains(string(unit), "NotifyAccess") {
		t.Errorf("non-notify unit:\n%s", unit)
	}
	for name, bad := range map[string]ServiceSpec{
		"relative binary": {Name: "x", Command: []string{"etcd"}},
		"bad name":        {Name: "../x", Command: []string{"/bin/etcd"}},
		"bad env":         {Name: "x", Command: []string{"/bin/etcd"}, Env: map[string]string{"A B": "1"}},
		"newline arg":     {Name: "x", Command: []string{"/bin/etcd", "a\nb"}},
	} {
		if _, err := RenderSystemdUnit(bad); !errors.Is(err, ErrInvalidService) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSystemdAnalyzeVerify checks the rendered unit with systemd's own
// offline verifier. ExecStart must exist for verify to pass, so the unit
// points at a real executable.
func TestSystemdAnalyzeVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed (apt-get install systemd)")
	}
	bin := "/usr/bin/etcd"
	if _, err := os.Stat(bin); err != nil {
		bin = filepath.Join(t.TempDir(), "etcd")
		if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, notify := range []bool{true, false} {
		spec := etcdSpec(bin)
		spec.Notify = notify
		spec.WorkDir = t.TempDir()
		unit, err := RenderSystemdUnit(spec)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), spec.Name+".service")
		if err := os.WriteFile(p, unit, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(context.Background(), sa, "verify", p).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify (notify=%v): %v\n%s\nunit:\n%s", notify, err, out, unit)
		}
	}
	// And verify does catch a broken unit, so the check above means something.
	p := filepath.Join(t.TempDir(), "broken.service")
	if err := os.WriteFile(p, []byte("[Service]\nType=notify\nExecStart=relative/etcd\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(sa, "verify", p).CombinedOutput(); err == nil {
		t.Errorf("systemd-analyze verify accepted a broken unit: %s", out)
	}
}

func TestParseSystemdShow(t *testing.T) {
	st := parseSystemdShow("LoadState=loaded\nActiveState=activating\nSubState=start\nMainPID=42\n")
	if !st.Installed || !st.Running || st.PID != 42 {
		t.Fatalf("%+v", st)
	}
	st = parseSystemdShow("LoadState=not-found\nActiveState=inactive\nSubState=dead\nMainPID=0\n")
	if st.Installed || st.Running || st.PID != 0 {
		t.Fatalf("%+v", st)
	}
}
