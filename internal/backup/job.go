package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/snapshot"
)

// TimeLayout is the time in a backup's name (UTC).
const TimeLayout = "20060102T150405Z"

// Job is one backup run on a member's node.
type Job struct {
	// Dir is the backup dir; it must exist.
	Dir string
	// Prefix starts every file name (the cluster and node name).
	Prefix string
	// Keep is how many backups stay after a run (at least 1).
	Keep int
	// Endpoint is the local member's client URL.
	Endpoint string
	// CACert, Cert and Key are TLS files for Endpoint (empty: plain http).
	CACert, Cert, Key string
	// LeaderOnly skips the run unless the local member is the leader.
	LeaderOnly bool
	// CopyCommand, when set, runs with sh -c after each snapshot, with the
	// snapshot's path as $1 and in $ETCD_BACKUP_FILE, its sidecar's in
	// $ETCD_BACKUP_SHA256_FILE.
	CopyCommand string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Result is what a run did.
type Result struct {
	// Skipped: the member is not the leader (LeaderOnly); nothing was done.
	Skipped bool
	// Backup is the new backup (when not Skipped).
	Backup Info
	// Removed are the file names retention deleted.
	Removed []string
}

// Info describes one backup in a backup dir.
type Info struct {
	Name     string // file name of the snapshot
	Revision int64
	TakenAt  time.Time
}

// ErrInvalidJob is a Job that cannot run.
var ErrInvalidJob = errors.New("invalid backup job")

// Validate checks the job's settings.
func (j Job) Validate() error {
	var errs []string
	if !filepath.IsAbs(j.Dir) {
		errs = append(errs, fmt.Sprintf("dir %q must be an absolute path", j.Dir))
	}
	if j.Keep < 1 {
		errs = append(errs, fmt.Sprintf("keep is %d: keep at least 1 backup", j.Keep))
	}
	if !prefixRE.MatchString(j.Prefix) {
		errs = append(errs, fmt.Sprintf("prefix %q: use letters, digits, '.', '_' and '-'", j.Prefix))
	}
	if j.Endpoint == "" {
		errs = append(errs, "an endpoint is required")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidJob, strings.Join(errs, "; "))
	}
	return nil
}

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// FileName is the name of a backup of prefix taken at t at revision rev.
func FileName(prefix string, t time.Time, rev int64) string {
	return fmt.Sprintf("%s-%s-r%d.db", prefix, t.UTC().Format(TimeLayout), rev)
}

// ParseName reads a backup file name of prefix; ok is false for any other
// file.
func ParseName(prefix, name string) (Info, bool) {
	rest, found := strings.CutPrefix(name, prefix+"-")
	if !found {
		return Info{}, false
	}
	rest, found = strings.CutSuffix(rest, ".db")
	if !found {
		return Info{}, false
	}
	ts, rev, found := strings.Cut(rest, "-r")
	if !found {
		return Info{}, false
	}
	t, err := time.Parse(TimeLayout, ts)
	if err != nil {
		return Info{}, false
	}
	r, err := strconv.ParseInt(rev, 10, 64)
	if err != nil || r < 0 {
		return Info{}, false
	}
	return Info{Name: name, Revision: r, TakenAt: t}, true
}

// List returns the backups of prefix among names, oldest first.
func List(prefix string, names []string) []Info {
	var out []Info
	for _, n := range names {
		if i, ok := ParseName(prefix, n); ok {
			out = append(out, i)
		}
	}
	sort.Slice(out, func(a, b int) bool {
		if !out[a].TakenAt.Equal(out[b].TakenAt) {
			return out[a].TakenAt.Before(out[b].TakenAt)
		}
		return out[a].Revision < out[b].Revision
	})
	return out
}

// Run takes one backup: it checks leadership (LeaderOnly), saves a
// snapshot of the member, writes the sidecar, applies retention, then runs
// the copy command. A failed copy command is an error; the backup stays.
func (j Job) Run(ctx context.Context) (Result, error) {
	if err := j.Validate(); err != nil {
		return Result{}, err
	}
	now := time.Now
	if j.Now != nil {
		now = j.Now
	}
	settings, err := client.Config{
		Endpoints: []string{j.Endpoint}, CACert: j.CACert, Cert: j.Cert, Key: j.Key,
		LookupEnv: func(string) (string, bool) { return "", false },
	}.Resolve()
	if err != nil {
		return Result{}, err
	}
	cl, err := client.Open(ctx, settings, snapshot.DialOptions()...)
	if err != nil {
		return Result{}, err
	}
	defer cl.Close()
	if j.LeaderOnly {
		sctx, cancel := context.WithTimeout(ctx, settings.RequestTimeout)
		st, err := cl.Client.Status(sctx, j.Endpoint)
		cancel()
		if err != nil {
			return Result{}, fmt.Errorf("asking %s whether it is the leader: %w", j.Endpoint, err)
		}
		if st.Leader != st.Header.MemberId {
			return Result{Skipped: true}, nil
		}
	}
	taken := now()
	tmp := filepath.Join(j.Dir, fmt.Sprintf(".%s-%s.db.tmp", j.Prefix, taken.UTC().Format(TimeLayout)))
	if _, err := snapshot.Save(ctx, cl.Client, tmp); err != nil {
		return Result{}, fmt.Errorf("snapshot of %s into %s: %w", j.Endpoint, j.Dir, err)
	}
	defer os.Remove(tmp) // after a failure below; renamed away otherwise
	st, err := snapshot.ReadStatus(tmp)
	if err != nil {
		return Result{}, err
	}
	sum, err := snapshot.FileSHA256(tmp)
	if err != nil {
		return Result{}, err
	}
	name := FileName(j.Prefix, taken, st.Revision)
	final := filepath.Join(j.Dir, name)
	if err := writeFileSync(final+".sha256", []byte(sum+"  "+name+"\n")); err != nil {
		return Result{}, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return Result{}, err
	}
	res := Result{Backup: Info{Name: name, Revision: st.Revision, TakenAt: taken.UTC().Truncate(time.Second)}}
	if res.Removed, err = j.prune(); err != nil {
		return res, fmt.Errorf("retention: %w", err)
	}
	if j.CopyCommand != "" {
		if err := j.copy(ctx, final); err != nil {
			return res, err
		}
	}
	return res, nil
}

func writeFileSync(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	return f.Close()
}

// prune deletes all but the newest Keep backups of Prefix, with their
// sidecars.
func (j Job) prune() ([]string, error) {
	entries, err := os.ReadDir(j.Dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	all := List(j.Prefix, names)
	if len(all) <= j.Keep {
		return nil, nil
	}
	var removed []string
	var errs []error
	for _, b := range all[:len(all)-j.Keep] {
		p := filepath.Join(j.Dir, b.Name)
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		if err := os.Remove(p + ".sha256"); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		removed = append(removed, b.Name)
	}
	return removed, errors.Join(errs...)
}

// copy runs the copy command for the backup at p.
func (j Job) copy(ctx context.Context, p string) error {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", j.CopyCommand, "sh", p)
	cmd.Dir = j.Dir
	cmd.Env = append(os.Environ(), "ETCD_BACKUP_FILE="+p, "ETCD_BACKUP_SHA256_FILE="+p+".sha256")
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if len(msg) > 2000 {
			msg = "..." + msg[len(msg)-2000:]
		}
		return fmt.Errorf("copy_command failed for %s: %w: %s", filepath.Base(p), err, msg)
	}
	return nil
}
