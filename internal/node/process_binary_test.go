package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver/sshhost"
)

// TestProcessServiceBinaryChange: when the service's binary changes (an
// etcd upgrade to another remote_binary path) but not its last argument
// (the member's config file), the member of the old binary is still seen
// running, and Restart replaces it with one of the new binary.
func TestProcessServiceBinaryChange(t *testing.T) {
	h := sshhost.Start(t, 1)[0]
	c := mustDial(t, sshConfig(h))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conf := filepath.Join(h.BaseDir, "opt", "etc", "member.yaml")
	var bins []string
	for _, v := range []string{"old", "new"} {
		bin := filepath.Join(h.BaseDir, "opt", "bin", "member-"+v)
		script := fmt.Sprintf("#!/bin/sh\necho \"member %s up\"\ntrap 'exit 0' TERM\nwhile :; do sleep 1; done\n", v)
		if _, err := c.Upload(ctx, bin, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		bins = append(bins, bin)
	}
	spec := func(bin string) ServiceSpec {
		return ServiceSpec{Name: "member-bin", Command: []string{bin, "--config-file", conf}, WorkDir: h.BaseDir,
			RunDir: filepath.Join(h.BaseDir, "opt", "run"), StopTimeout: 5 * time.Second}
	}
	old, err := NewService(ctx, c, ServiceProcess, spec(bins[0]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Install(ctx); err != nil {
		t.Fatal(err)
	}
	if err := old.Start(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := old.Status(ctx)
	if err != nil || !st.Running {
		t.Fatalf("old member: %+v %v", st, err)
	}
	svc, err := NewService(ctx, c, ServiceProcess, spec(bins[1]))
	if err != nil {
		t.Fatal(err)
	}
	if changed, err := svc.Install(ctx); err != nil || !changed {
		t.Fatalf("install of the new binary: changed %v, %v", changed, err)
	}
	if st2, err := svc.Status(ctx); err != nil || !st2.Running || st2.PID != st.PID {
		t.Fatalf("the old binary's member is not seen by the new service: %+v %v (old pid %d)", st2, err, st.PID)
	}
	if err := svc.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	st2, err := svc.Status(ctx)
	if err != nil || !st2.Running || st2.PID == st.PID {
		t.Fatalf("after restart: %+v %v", st2, err)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", st2.PID))
	if err != nil || !strings.Contains(string(cmdline), bins[1]) {
		t.Fatalf("the member after the restart runs %q (%v), want %s", cmdline, err, bins[1])
	}
	if processAlive(st.PID) {
		t.Fatal("the old member still runs")
	}
	if err := svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}
