package backup

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/snapshot"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

func TestParseName(t *testing.T) {
	at := time.Date(2026, 12, 5, 23, 58, 1, 0, time.UTC)
	name := FileName("prod-n1", at, 42)
	if name != "prod-n1-20261205T235801Z-r42.db" {
		t.Fatalf("FileName = %q", name)
	}
	got, ok := ParseName("prod-n1", name)
	if !ok || got.Revision != 42 || !got.TakenAt.Equal(at) {
		t.Fatalf("ParseName = %+v, %v", got, ok)
	}
	for _, bad := range []string{name + ".sha256", "prod-n2-20261205T235801Z-r42.db", "prod-n1-x-r42.db", "prod-n1-20261205T235801Z-rx.db", ".prod-n1-20261205T235801Z.db.tmp"} {
		if _, ok := ParseName("prod-n1", bad); ok {
			t.Errorf("ParseName(%q) accepted", bad)
		}
	}
	l := List("p", []string{"p-20261205T000002Z-r3.db", "p-20261205T000001Z-r9.db", "other", "p-20261204T235959Z-r1.db"})
	if len(l) != 3 || l[0].Revision != 1 || l[2].Revision != 3 {
		t.Fatalf("List = %+v", l)
	}
}

// TestJobRun runs the job against a real member: the snapshot's name
// carries its revision, the sidecar is sha256sum's format and matches,
// retention keeps the newest, the copy command gets the path, and with
// LeaderOnly a follower skips and the leader does not.
func TestJobRun(t *testing.T) {
	c := testserver.Start(t, testserver.WithMembers(3))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	member := c.Members()[0]
	// Writes go through the member that takes the snapshots: a member
	// answers a put once it has applied it, but another member may apply
	// a committed put later, so a client that could reach any member
	// could see its write missing from the snapshot.
	cli, err := c.NewClient(clientv3.Config{Endpoints: member.ClientURLs, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	dir, copies := t.TempDir(), t.TempDir()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	j := Job{
		Dir: dir, Prefix: "c-n1", Keep: 2, Endpoint: member.ClientURLs[0],
		CopyCommand: `cp "$1" "$ETCD_BACKUP_SHA256_FILE" ` + copies + `/`,
		Now:         func() time.Time { return clock },
	}
	var names []string
	for i := range 3 {
		resp, err := cli.Put(ctx, "k", strings.Repeat("v", i+1))
		if err != nil {
			t.Fatal(err)
		}
		res, err := j.Run(ctx)
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if res.Skipped || res.Backup.Revision < resp.Header.Revision {
			t.Fatalf("run %d: %+v, want a backup at revision >= %d", i, res, resp.Header.Revision)
		}
		st, err := snapshot.ReadStatus(filepath.Join(dir, res.Backup.Name))
		if err != nil || st.Revision != res.Backup.Revision {
			t.Fatalf("status of %s: %+v, %v", res.Backup.Name, st, err)
		}
		sum, _ := snapshot.FileSHA256(filepath.Join(dir, res.Backup.Name))
		side, err := os.ReadFile(filepath.Join(dir, res.Backup.Name+".sha256"))
		if err != nil || string(side) != sum+"  "+res.Backup.Name+"\n" {
			t.Fatalf("sidecar %q, %v; want the sha256 %s", side, err, sum)
		}
		copied, err := os.ReadFile(filepath.Join(copies, res.Backup.Name))
		orig, _ := os.ReadFile(filepath.Join(dir, res.Backup.Name))
		if err != nil || !bytes.Equal(copied, orig) {
			t.Fatalf("copy command did not copy %s: %v", res.Backup.Name, err)
		}
		names = append(names, res.Backup.Name)
		clock = clock.Add(time.Minute)
	}
	entries, _ := os.ReadDir(dir)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	want := []string{names[1], names[1] + ".sha256", names[2], names[2] + ".sha256"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("dir holds %v, want %v (keep 2)", got, want)
	}

	// LeaderOnly. A busy machine can move the leadership between the
	// look-up and the run: such a round does not count and is repeated.
	j.LeaderOnly = true
	for round := 0; ; round++ {
		leader, err := c.Leader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var follower testserver.Member
		for _, m := range c.Members() {
			if m.ID != leader.ID {
				follower = m
			}
		}
		j.Endpoint = follower.ClientURLs[0]
		fres, ferr := j.Run(ctx)
		j.Endpoint = leader.ClientURLs[0]
		lres, lerr := j.Run(ctx)
		if now, err := c.Leader(ctx); err == nil && now.ID != leader.ID && round < 10 {
			t.Logf("the leader moved from %s to %s during the LeaderOnly runs: again", leader.Name, now.Name)
			continue
		}
		if ferr != nil || !fres.Skipped {
			t.Fatalf("follower with LeaderOnly: %+v, %v; want skipped", fres, ferr)
		}
		if lerr != nil || lres.Skipped || lres.Backup.Name == "" {
			t.Fatalf("leader with LeaderOnly: %+v, %v; want a backup", lres, lerr)
		}
		break
	}
	j.LeaderOnly = false
	j.CopyCommand = "echo no space left >&2; exit 3"
	res, err := j.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "no space left") || res.Backup.Name == "" {
		t.Fatalf("failing copy command: %+v, %v; want the backup and an error with the command's output", res, err)
	}
	if _, err := os.Stat(filepath.Join(dir, res.Backup.Name)); err != nil {
		t.Fatalf("the backup must stay when the copy fails: %v", err)
	}
}

func TestJobValidate(t *testing.T) {
	for _, j := range []Job{
		{Dir: "rel", Prefix: "p", Keep: 1, Endpoint: "http://x"},
		{Dir: "/d", Prefix: "p", Keep: 0, Endpoint: "http://x"},
		{Dir: "/d", Prefix: "a/b", Keep: 1, Endpoint: "http://x"},
		{Dir: "/d", Prefix: "p", Keep: 1},
	} {
		if err := j.Validate(); err == nil {
			t.Errorf("%+v: no error", j)
		}
	}
}

func TestSchedule(t *testing.T) {
	s := Schedule{Unit: "etcd-c-backup", Description: "d", Binary: "/opt/etcd/bin/terraform-provider-etcd",
		Job: Job{Dir: "/var/backups/etcd", Prefix: "c-n1", Keep: 3, Endpoint: "https://10.0.0.1:2379", CACert: "/ca", Cert: "/c", Key: "/k",
			LeaderOnly: true, CopyCommand: `scp "$1" host:/x/ # 100%`},
		Interval: 90 * time.Second}
	unit := s.ServiceUnit()
	if !strings.Contains(unit, `"--copy-command" "scp \"$$1\" host:/x/ # 100%%"`) || !strings.Contains(unit, `"--leader-only"`) || !strings.Contains(unit, "Type=oneshot") {
		t.Fatalf("service unit:\n%s", unit)
	}
	if timer := s.TimerUnit(); !strings.Contains(timer, "OnUnitActiveSec=90s") || !strings.Contains(timer, "Unit=etcd-c-backup.service") {
		t.Fatalf("timer unit:\n%s", timer)
	}
	loop := strings.Join(s.Command(true), " ")
	if !strings.HasPrefix(loop, "/opt/etcd/bin/terraform-provider-etcd backup loop --interval 1m30s --dir /var/backups/etcd") {
		t.Fatalf("loop command %s", loop)
	}
}

// Under etcd authentication a snapshot needs a user with the role root.
// The member's own certificate names the member ("n1"), not a user, so a
// job that used it would fail on every run; a client certificate of root
// (what etcd_cluster gives the job) works.
func TestJobRunUnderAuth(t *testing.T) {
	c := testserver.Start(t, testserver.WithMembers(1), testserver.WithTLS(), testserver.WithAuth())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir, certs := t.TempDir(), t.TempDir()
	info := c.TLS()
	files := func(cn string) (string, string) {
		certPEM, keyPEM, err := c.IssueClientCert(cn)
		if err != nil {
			t.Fatal(err)
		}
		cert, key := filepath.Join(certs, cn+".crt"), filepath.Join(certs, cn+".key")
		if err := os.WriteFile(cert, certPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(key, keyPEM, 0o600); err != nil {
			t.Fatal(err)
		}
		return cert, key
	}
	j := Job{Dir: dir, Prefix: "auth-n1", Keep: 2, Endpoint: c.Endpoints()[0], CACert: info.CAFile}

	j.Cert, j.Key = files("n1")
	// etcd says "user name not found" (no user n1), or "permission denied"
	// when such a user exists without the role root.
	if res, err := j.Run(ctx); err == nil || !strings.Contains(err.Error(), "user name not found") && !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("a job with the member's certificate (CN n1) under auth: %+v, %v; want it refused", res, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a refused snapshot left files: %v", entries)
	}

	j.Cert, j.Key = files("root")
	res, err := j.Run(ctx)
	if err != nil || res.Backup.Name == "" {
		t.Fatalf("a job with root's client certificate under auth: %+v, %v", res, err)
	}
	if _, err := snapshot.ReadStatus(filepath.Join(dir, res.Backup.Name)); err != nil {
		t.Fatal(err)
	}
}
