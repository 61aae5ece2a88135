package backup

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
)

// MinInterval is the shortest interval between backups.
const MinInterval = 10 * time.Second

// ErrDirNotWritable: the backup dir cannot be created or written on the
// node.
var ErrDirNotWritable = errors.New("backup dir is not writable")

// Schedule is the backup job of one node and how it runs there.
type Schedule struct {
	// Unit names the service (and, with systemd, the timer):
	// "etcd-<cluster>-backup".
	Unit        string
	Description string
	// Binary is the bundled terraform-provider-etcd binary on the node.
	Binary   string
	Job      Job
	Interval time.Duration
	// RunDir holds the process manager's files (the member's run dir).
	RunDir string
	// Manager is how the node runs services (auto is resolved on the node).
	Manager node.ServiceManager
}

// Command is the job's argv: `backup run` (systemd) or `backup loop`.
func (s Schedule) Command(loop bool) []string {
	j := s.Job
	argv := []string{s.Binary, "backup", "run"}
	if loop {
		argv[2] = "loop"
		argv = append(argv, "--interval", s.Interval.String())
	}
	argv = append(argv, "--dir", j.Dir, "--prefix", j.Prefix, "--keep", strconv.Itoa(j.Keep), "--endpoint", j.Endpoint)
	if j.CACert != "" {
		argv = append(argv, "--cacert", j.CACert, "--cert", j.Cert, "--key", j.Key)
	}
	if j.LeaderOnly {
		argv = append(argv, "--leader-only")
	}
	if j.CopyCommand != "" {
		argv = append(argv, "--copy-command", j.CopyCommand)
	}
	return argv
}

func (s Schedule) processSpec() node.ServiceSpec {
	return node.ServiceSpec{
		Name: s.Unit, Description: s.Description, Command: s.Command(true),
		WorkDir: s.Job.Dir, RunDir: s.RunDir, StopTimeout: 10 * time.Second,
	}
}

// ServiceUnit is the systemd oneshot service that takes one backup.
func (s Schedule) ServiceUnit() string {
	args := s.Command(false)
	for i, a := range args {
		args[i] = unitQuote(a)
	}
	return fmt.Sprintf(`# Written by terraform-provider-etcd; changes are overwritten on apply.
[Unit]
Description=%s
Wants=network-online.target
After=network-online.target

[Service]
Type=oneshot
WorkingDirectory=%s
ExecStart=%s
`, oneLine(s.Description), strings.ReplaceAll(s.Job.Dir, "%", "%%"), strings.Join(args, " "))
}

// TimerUnit starts the service a second after the timer is started (on
// install and at boot) and then every interval.
func (s Schedule) TimerUnit() string {
	return fmt.Sprintf(`# Written by terraform-provider-etcd; changes are overwritten on apply.
[Unit]
Description=%s (every %s)

[Timer]
OnActiveSec=1s
OnUnitActiveSec=%ds
AccuracySec=1s
Unit=%s.service

[Install]
WantedBy=timers.target
`, oneLine(s.Description), s.Interval, int64(s.Interval/time.Second), s.Unit)
}

func oneLine(s string) string { return strings.ReplaceAll(s, "\n", " ") }

// unitQuote quotes one ExecStart word: double quotes, backslash escapes,
// specifiers (%) and variables ($) neutralized.
func unitQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, `%`, `%%`, `$`, `$$`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// CheckDir checks, without changing anything, that dir exists and is a
// writable directory on the node, or can be created there: the nearest
// existing ancestor must be a directory in which a file can be created
// (a file is created and removed at once to be sure).
func CheckDir(ctx context.Context, r node.Runner, dir string) error {
	out, err := r.Run(ctx, fmt.Sprintf(`d=%s
while [ ! -e "$d" ] && [ "$d" != / ]; do d=$(dirname "$d"); done
if [ ! -d "$d" ]; then echo "notdir $d"; exit 0; fi
if t=$(mktemp -p "$d" .etcd-backup-check.XXXXXX 2>/dev/null); then rm -f "$t"; echo ok; else echo "notwritable $d"; fi
`, node.Quote(dir)))
	if err != nil {
		return err
	}
	verdict, where, _ := strings.Cut(strings.TrimSpace(out), " ")
	switch verdict {
	case "ok":
		return nil
	case "notdir":
		return fmt.Errorf("%w: %s on %s: %s is not a directory", ErrDirNotWritable, dir, r.Target(), where)
	default:
		return fmt.Errorf("%w: %s on %s: cannot create a file in %s", ErrDirNotWritable, dir, r.Target(), where)
	}
}

// Install creates the backup dir and installs and starts the schedule on
// the node; changed reports whether anything was (re)written.
func Install(ctx context.Context, r node.Runner, s Schedule) (changed bool, err error) {
	if err := s.Job.Validate(); err != nil {
		return false, err
	}
	if s.Interval < MinInterval {
		return false, fmt.Errorf("%w: interval %s is shorter than %s", ErrInvalidJob, s.Interval, MinInterval)
	}
	if _, err := r.Run(ctx, "mkdir -p -m 0700 "+node.Quote(s.Job.Dir)); err != nil {
		return false, err
	}
	m := s.Manager
	if m == "" || m == node.ServiceAuto {
		if m, err = node.DetectServiceManager(ctx, r); err != nil {
			return false, err
		}
	}
	if m != node.ServiceSystemd {
		svc, err := node.NewService(ctx, r, node.ServiceProcess, s.processSpec())
		if err != nil {
			return false, err
		}
		changed, err := svc.Install(ctx)
		if err != nil {
			return false, err
		}
		if changed {
			return true, svc.Restart(ctx)
		}
		return false, svc.Start(ctx)
	}
	c1, err := r.Upload(ctx, path.Join(node.UnitDir, s.Unit+".service"), []byte(s.ServiceUnit()), 0o644)
	if err != nil {
		return false, err
	}
	c2, err := r.Upload(ctx, path.Join(node.UnitDir, s.Unit+".timer"), []byte(s.TimerUnit()), 0o644)
	if err != nil {
		return false, err
	}
	timer := node.Quote(s.Unit + ".timer")
	cmd := "systemctl enable " + timer + " && systemctl start " + timer
	if c1 || c2 {
		cmd = "systemctl daemon-reload && systemctl enable " + timer + " && systemctl restart " + timer
	}
	_, err = r.Run(ctx, cmd)
	return c1 || c2, err
}

// Remove stops and deletes the schedule unit from the node, whichever
// manager runs it; the backups stay.
func Remove(ctx context.Context, r node.Runner, unit, binary, runDir string) error {
	svc, err := node.NewService(ctx, r, node.ServiceProcess, node.ServiceSpec{Name: unit, Command: []string{binary}, RunDir: runDir})
	if err != nil {
		return err
	}
	if err := svc.Remove(ctx); err != nil {
		return err
	}
	_, err = r.Run(ctx, fmt.Sprintf(`svc=%[1]s; tmr=%[2]s
if [ -f %[3]s/"$tmr" ] || [ -f %[3]s/"$svc" ]; then
  systemctl disable --now "$tmr" >/dev/null 2>&1 || true
  systemctl stop "$svc" >/dev/null 2>&1 || true
  rm -f %[3]s/"$tmr" %[3]s/"$svc"
  systemctl daemon-reload
  systemctl reset-failed "$svc" "$tmr" >/dev/null 2>&1 || true
fi
`, node.Quote(unit+".service"), node.Quote(unit+".timer"), node.UnitDir))
	return err
}

// Newest returns the newest backup of prefix in dir on the node; ok is
// false when there is none (or no dir).
func Newest(ctx context.Context, r node.Runner, dir, prefix string) (Info, bool, error) {
	out, err := r.Run(ctx, fmt.Sprintf("if [ -d %[1]s ]; then ls -1A %[1]s; fi", node.Quote(dir)))
	if err != nil {
		return Info{}, false, err
	}
	all := List(prefix, strings.Split(strings.TrimSpace(out), "\n"))
	if len(all) == 0 {
		return Info{}, false, nil
	}
	return all[len(all)-1], true, nil
}
