package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver/sshhost"
)

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestProcessService drives the process-mode supervisor over SSH with a
// stand-in member (a shell script that logs and sleeps).
func TestProcessService(t *testing.T) {
	hosts := sshhost.Start(t, 1)
	h := hosts[0]
	c := mustDial(t, sshConfig(h))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	bin := filepath.Join(h.BaseDir, "opt", "bin", "fake-member")
	script := "#!/bin/sh\necho \"member up pid $$ arg=$1 env=$MEMBER_ENV\"\ntrap 'echo member got TERM; exit 0' TERM\nwhile :; do sleep 1; done\n"
	if _, err := c.Upload(ctx, bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	m, err := DetectServiceManager(ctx, c)
	if err != nil || m != ServiceProcess {
		t.Fatalf("auto on a host without systemd: %q %v", m, err)
	}
	spec := ServiceSpec{
		Name:        "fake-m1",
		Command:     []string{bin, "it's an arg"},
		WorkDir:     h.BaseDir,
		Env:         map[string]string{"MEMBER_ENV": "x y"},
		RunDir:      filepath.Join(h.BaseDir, "opt", "run"),
		StopTimeout: 5 * time.Second,
	}
	svc, err := NewService(ctx, c, ServiceAuto, spec)
	if err != nil {
		t.Fatal(err)
	}
	if svc.Manager() != ServiceProcess {
		t.Fatalf("manager %s", svc.Manager())
	}
	if err := svc.Start(ctx); err == nil {
		t.Fatal("Start before Install succeeded")
	}
	if changed, err := svc.Install(ctx); err != nil || !changed {
		t.Fatalf("install: %v %v", changed, err)
	}
	if changed, err := svc.Install(ctx); err != nil || changed {
		t.Fatalf("re-install: %v %v", changed, err)
	}
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := svc.Status(ctx)
	if err != nil || !st.Running || !st.Installed || st.PID == 0 {
		t.Fatalf("status after start: %+v %v", st, err)
	}
	t.Logf("started: %+v", st)
	first := st.PID

	// Start again: no-op, same process.
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if st2, _ := svc.Status(ctx); st2.PID != first {
		t.Fatalf("second Start replaced the process: %d -> %d", first, st2.PID)
	}
	logs, err := svc.Logs(ctx, 10)
	if err != nil || !strings.Contains(logs, "arg=it's an arg env=x y") {
		t.Fatalf("logs %q %v", logs, err)
	}

	// The member crashes: the supervisor starts a new one.
	if err := syscall.Kill(first, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var second int
	waitFor(t, "restart after crash", 15*time.Second, func() bool {
		st, err := svc.Status(ctx)
		second = st.PID
		return err == nil && st.Running && st.PID != first
	})
	logs, _ = svc.Logs(ctx, 20)
	if !strings.Contains(logs, "exited with status") {
		t.Errorf("supervisor did not log the crash:\n%s", logs)
	}
	t.Logf("restarted %d -> %d", first, second)

	// The process outlives the SSH connection it was started from.
	c.Close()
	c = mustDial(t, sshConfig(h))
	svc, _ = NewService(ctx, c, ServiceProcess, spec)
	if st, _ := svc.Status(ctx); st.PID != second {
		t.Fatalf("after reconnect: %+v", st)
	}

	// Stop: SIGTERM reaches the member, nothing is restarted.
	if err := svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ = svc.Status(ctx)
	if st.Running || st.Detail != "stopped" {
		t.Fatalf("after stop: %+v", st)
	}
	if processAlive(second) {
		t.Fatal("member process still alive")
	}
	logs, _ = svc.Logs(ctx, 20)
	if !strings.Contains(logs, "member got TERM") {
		t.Errorf("member did not get SIGTERM:\n%s", logs)
	}
	time.Sleep(1500 * time.Millisecond)
	if st, _ := svc.Status(ctx); st.Running {
		t.Fatal("restarted after Stop")
	}
	if err := svc.Stop(ctx); err != nil {
		t.Fatalf("second Stop: %v", err)
	}

	// A member that ignores SIGTERM is killed after StopTimeout.
	stubborn := "#!/bin/sh\ntrap '' TERM\nwhile :; do sleep 1; done\n"
	if _, err := c.Upload(ctx, bin, []byte(stubborn), 0o755); err != nil {
		t.Fatal(err)
	}
	spec.StopTimeout = time.Second
	svc, _ = NewService(ctx, c, ServiceProcess, spec)
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ = svc.Status(ctx)
	start := time.Now()
	if err := svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if processAlive(st.PID) {
		t.Fatal("stubborn member survived Stop")
	}
	t.Logf("stubborn member killed after %s", time.Since(start))

	// A stale pid file naming some other live process is not trusted.
	if err := os.WriteFile(filepath.Join(spec.RunDir, spec.Name+".pid"), fmt.Appendf(nil, "%d\n", os.Getpid()), 0o644); err != nil {
		t.Fatal(err)
	}
	if st, _ := svc.Status(ctx); st.Running {
		t.Fatalf("a foreign pid counted as the member: %+v", st)
	}
	if err := svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	if err := svc.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := svc.Status(ctx); st.Installed || st.Running {
		t.Fatalf("after remove: %+v", st)
	}
}

// processAlive is false for a gone process and for a zombie.
func processAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndex(string(b), ") ")
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
