package backup

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// Exit codes, as the binary's other subcommands.
const (
	exitError   = 1
	exitBadArgs = 2
)

const cmdUsage = `Usage:
  terraform-provider-etcd backup run  --dir DIR --prefix P --keep N --endpoint URL [flags]
  terraform-provider-etcd backup loop --interval D --dir DIR --prefix P --keep N --endpoint URL [flags]

run takes one backup of the local member (a snapshot named <prefix>-<time>-r<revision>.db and its
.sha256 sidecar), deletes all but the newest --keep backups and runs --copy-command; loop does so
at once and then every --interval, until it is stopped. etcd_cluster's backup installs them.
`

// Main runs the backup subcommand with args (the arguments after
// "backup") and returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		_, _ = fmt.Fprint(stderr, cmdUsage)
		return exitBadArgs
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "run", "loop":
	case "-h", "-help", "--help", "help":
		_, _ = fmt.Fprint(stdout, cmdUsage)
		return 0
	default:
		_, _ = fmt.Fprintf(stderr, "backup: unknown command %q\n\n%s", args[0], cmdUsage)
		return exitBadArgs
	}
	loop := args[0] == "loop"
	fs := flag.NewFlagSet("backup "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var j Job
	var interval time.Duration
	fs.StringVar(&j.Dir, "dir", "", "backup `directory` (absolute; must exist)")
	fs.StringVar(&j.Prefix, "prefix", "", "file name prefix (cluster and node name)")
	fs.IntVar(&j.Keep, "keep", 0, "how many backups to keep")
	fs.StringVar(&j.Endpoint, "endpoint", "", "the local member's client URL")
	fs.StringVar(&j.CACert, "cacert", "", "CA bundle `file` (TLS)")
	fs.StringVar(&j.Cert, "cert", "", "client certificate `file` (TLS)")
	fs.StringVar(&j.Key, "key", "", "client key `file` (TLS)")
	fs.BoolVar(&j.LeaderOnly, "leader-only", false, "skip unless the local member is the leader")
	fs.StringVar(&j.CopyCommand, "copy-command", "", "sh command run after each backup, with the file's path as $1 and $ETCD_BACKUP_FILE")
	if loop {
		fs.DurationVar(&interval, "interval", 0, "time between backups")
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitBadArgs
	}
	if fs.NArg() > 0 {
		_, _ = fmt.Fprintf(stderr, "backup %s: unexpected arguments %s\n", args[0], strings.Join(fs.Args(), " "))
		return exitBadArgs
	}
	if err := j.Validate(); err != nil {
		_, _ = fmt.Fprintf(stderr, "Error: backup %s: %v\n", args[0], err)
		return exitBadArgs
	}
	if !loop {
		if err := runOnce(ctx, j, stdout); err != nil {
			_, _ = fmt.Fprintf(stderr, "Error: backup run: %v\n", err)
			return exitError
		}
		return 0
	}
	if interval < MinInterval {
		_, _ = fmt.Fprintf(stderr, "Error: backup loop: --interval %s is shorter than %s\n", interval, MinInterval)
		return exitBadArgs
	}
	for {
		if err := runOnce(ctx, j, stdout); err != nil {
			// The loop goes on: the next run may succeed (a member that was
			// restarting, a full disk that was cleaned up).
			_, _ = fmt.Fprintf(stderr, "%s backup: error: %v\n", time.Now().UTC().Format(time.RFC3339), err)
		}
		select {
		case <-ctx.Done():
			return 0
		case <-time.After(interval):
		}
	}
}

func runOnce(ctx context.Context, j Job, stdout io.Writer) error {
	res, err := j.Run(ctx)
	if err != nil && res.Backup.Name == "" {
		return err
	}
	ts := time.Now().UTC().Format(time.RFC3339)
	if res.Skipped {
		_, _ = fmt.Fprintf(stdout, "%s backup: skipped: the local member is not the leader\n", ts)
		return nil
	}
	_, _ = fmt.Fprintf(stdout, "%s backup: saved %s (revision %d)", ts, res.Backup.Name, res.Backup.Revision)
	if len(res.Removed) > 0 {
		_, _ = fmt.Fprintf(stdout, "; removed %s", strings.Join(res.Removed, ", "))
	}
	_, _ = fmt.Fprintln(stdout)
	return err
}
