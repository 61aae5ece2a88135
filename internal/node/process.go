package node

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Process mode runs the member under a small POSIX sh supervisor, started
// with setsid so that it outlives the SSH session:
//
//	<RunDir>/<Name>.supervise.sh   the supervisor (written by Install)
//	<RunDir>/<Name>.supervisor.pid pid of the supervisor
//	<RunDir>/<Name>.pid            pid of the member process
//	<LogFile>                      member stdout/stderr plus supervisor notes
//
// The supervisor restarts the member when it exits for any reason other
// than Stop, like systemd's Restart=always, with a back-off that doubles from
// 1s to 30s and resets once the member has run for 30s. A member that keeps
// failing (bad config, removed from the cluster) therefore keeps being
// retried; its log says why, and the provider's health wait reports it.
// Nothing restarts the supervisor itself after a reboot: process mode is for
// machines without an init system, where the provider's next apply starts it
// again.
type processService struct {
	r    Runner
	spec ServiceSpec
}

func (p *processService) Manager() ServiceManager { return ServiceProcess }

func (p *processService) base() string {
	return strings.TrimRight(p.spec.RunDir, "/") + "/" + p.spec.Name
}
func (p *processService) script() string     { return p.base() + ".supervise.sh" }
func (p *processService) pidFile() string    { return p.base() + ".pid" }
func (p *processService) supPidFile() string { return p.base() + ".supervisor.pid" }
func (p *processService) logFile() string {
	if p.spec.LogFile != "" {
		return p.spec.LogFile
	}
	return p.base() + ".log"
}

// SupervisorScript returns the process-mode supervisor for spec.
func (p *processService) supervisorScript() string {
	var b strings.Builder
	fmt.Fprintf(&b, `#!/bin/sh
# Supervisor for %[1]s, written by terraform-provider-etcd.
# Restarts the command when it exits, until it receives SIGTERM.
pidfile=%[2]s
log=%[3]s
echo $$ > %[4]s
child=
stopping=
trap 'stopping=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT HUP
`, p.spec.Name, Quote(p.pidFile()), Quote(p.logFile()), Quote(p.supPidFile()))
	if p.spec.WorkDir != "" {
		fmt.Fprintf(&b, "cd %s || exit 1\n", Quote(p.spec.WorkDir))
	}
	for _, k := range p.spec.sortedEnv() {
		fmt.Fprintf(&b, "%s=%s; export %s\n", k, Quote(p.spec.Env[k]), k)
	}
	argv := make([]string, len(p.spec.Command))
	for i, a := range p.spec.Command {
		argv[i] = Quote(a)
	}
	fmt.Fprintf(&b, `delay=1
while [ -z "$stopping" ]; do
  started=$(date +%%s)
  %[1]s >>"$log" 2>&1 </dev/null &
  child=$!
  echo "$child" > "$pidfile"
  wait "$child"; status=$?
  while kill -0 "$child" 2>/dev/null; do wait "$child"; status=$?; done
  child=
  rm -f "$pidfile"
  [ -n "$stopping" ] && break
  if [ $(( $(date +%%s) - started )) -ge 30 ]; then delay=1; fi
  echo "$(date -u +%%Y-%%m-%%dT%%H:%%M:%%SZ) supervisor: %[2]s exited with status $status; restarting in ${delay}s" >>"$log"
  sleep "$delay" & wait $!
  delay=$(( delay * 2 )); [ "$delay" -gt 30 ] && delay=30
done
rm -f %[3]s
`, strings.Join(argv, " "), p.spec.Name, Quote(p.supPidFile()))
	return b.String()
}

// shell helpers prepended to control commands: ours PIDFILE NEEDLE prints
// the pid in PIDFILE if that process is alive and its command line contains
// NEEDLE (so a recycled pid is never signalled).
const procHelpers = `alive() {
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 1
  # a zombie (killed, not yet reaped by init) is not alive
  st=$(sed 's/.*) //' /proc/$1/stat 2>/dev/null | cut -c1); [ "$st" != Z ]
}
ours() {
  [ -f "$1" ] || return 1
  p=$(cat "$1" 2>/dev/null); case "$p" in ''|*[!0-9]*) return 1;; esac
  alive "$p" || return 1
  tr '\0' ' ' < /proc/$p/cmdline | grep -qF -- "$2" || return 1
  echo "$p"
}
`

// marker is what identifies the member's process in its
// /proc/<pid>/cmdline: the command's last argument (for a member, its
// config file), which stays the same when the binary changes (an upgrade
// to another remote_binary path), so that the process of the old binary is
// still recognized, stopped and restarted.
func (p *processService) marker() string { return p.spec.Command[len(p.spec.Command)-1] }

func (p *processService) Install(ctx context.Context) (bool, error) {
	return p.r.Upload(ctx, p.script(), []byte(p.supervisorScript()), 0o755)
}

func (p *processService) Start(ctx context.Context) error {
	cmd := procHelpers + fmt.Sprintf(`set -e
sup=%[1]s; script=%[2]s; pidfile=%[3]s; bin=%[4]s
[ -f "$script" ] || { echo "supervisor script $script is missing: install first" >&2; exit 2; }
if ours "$sup" "$script" >/dev/null; then echo running; exit 0; fi
# A member left running without its supervisor (supervisor killed): stop it
# so that exactly one copy runs, under supervision.
if c=$(ours "$pidfile" "$bin"); then kill -TERM "$c" 2>/dev/null || true; i=0; while alive "$c" && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; kill -KILL "$c" 2>/dev/null || true; fi
rm -f "$sup" "$pidfile"
mkdir -p %[5]s
if command -v setsid >/dev/null 2>&1; then
  setsid sh "$script" >/dev/null 2>&1 </dev/null &
else
  nohup sh "$script" >/dev/null 2>&1 </dev/null &
fi
i=0; while ! ours "$pidfile" "$bin" >/dev/null; do
  i=$((i+1)); if [ $i -gt 100 ]; then echo "member process did not start within 10s" >&2; exit 1; fi
  sleep 0.1
done
echo started
`, Quote(p.supPidFile()), Quote(p.script()), Quote(p.pidFile()), Quote(p.marker()), Quote(dirOf(p.logFile())))
	_, err := p.r.Run(ctx, cmd)
	return err
}

func dirOf(f string) string {
	if i := strings.LastIndex(f, "/"); i > 0 {
		return f[:i]
	}
	return "/"
}

func (p *processService) Stop(ctx context.Context) error {
	tenths := int(p.spec.stopTimeout() / (100 * time.Millisecond))
	cmd := procHelpers + fmt.Sprintf(`sup=%[1]s; script=%[2]s; pidfile=%[3]s; bin=%[4]s
s=$(ours "$sup" "$script"); c=$(ours "$pidfile" "$bin")
# SIGTERM to the supervisor forwards it to the member and ends the loop.
[ -n "$s" ] && kill -TERM "$s" 2>/dev/null
[ -z "$s" ] && [ -n "$c" ] && kill -TERM "$c" 2>/dev/null
i=0
while alive "$s" || alive "$c"; do
  i=$((i+1))
  if [ $i -gt %[5]d ]; then
    echo "did not stop within the timeout; sending SIGKILL" >&2
    [ -n "$s" ] && kill -KILL "$s" 2>/dev/null; [ -n "$c" ] && kill -KILL "$c" 2>/dev/null
    sleep 0.2; break
  fi
  sleep 0.1
done
rm -f "$sup" "$pidfile"
echo stopped
`, Quote(p.supPidFile()), Quote(p.script()), Quote(p.pidFile()), Quote(p.marker()), tenths)
	_, err := p.r.Run(ctx, cmd)
	return err
}

func (p *processService) Restart(ctx context.Context) error {
	if err := p.Stop(ctx); err != nil {
		return err
	}
	return p.Start(ctx)
}

func (p *processService) Status(ctx context.Context) (ServiceStatus, error) {
	cmd := procHelpers + fmt.Sprintf(`[ -f %[2]s ] && echo installed
s=$(ours %[1]s %[2]s) && echo "supervisor $s"
c=$(ours %[3]s %[4]s) && echo "member $c"
true
`, Quote(p.supPidFile()), Quote(p.script()), Quote(p.pidFile()), Quote(p.marker()))
	out, err := p.r.Run(ctx, cmd)
	if err != nil {
		return ServiceStatus{}, err
	}
	var st ServiceStatus
	sup := false
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) == 1 && f[0] == "installed":
			st.Installed = true
		case len(f) == 2 && f[0] == "supervisor":
			sup = true
		case len(f) == 2 && f[0] == "member":
			st.PID, _ = strconv.Atoi(f[1])
			st.Running = st.PID > 0
		}
	}
	switch {
	case sup && st.Running:
		st.Detail = "running (supervised)"
	case sup:
		st.Detail = "supervisor running, member restarting"
	case st.Running:
		st.Detail = "running without supervisor"
	default:
		st.Detail = "stopped"
	}
	return st, nil
}

func (p *processService) Logs(ctx context.Context, n int) (string, error) {
	return p.r.Run(ctx, lastLinesCmd(p.logFile(), n))
}

func (p *processService) Remove(ctx context.Context) error {
	if err := p.Stop(ctx); err != nil {
		return err
	}
	_, err := p.r.Run(ctx, fmt.Sprintf("rm -f %s %s %s", Quote(p.script()), Quote(p.pidFile()), Quote(p.supPidFile())))
	return err
}
