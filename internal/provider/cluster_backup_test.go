package provider

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/backup"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/snapshot"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver/sshhost"
)

// backupHCL is a backup block.
func backupHCL(dir, rest string) string {
	return fmt.Sprintf("  backup = {\n    dir = %s\n%s  }\n", hclString(dir), rest)
}

// waitFor polls cond every second until it holds or the deadline passes;
// the error names the last reason it did not hold.
func waitFor(what string, limit time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(limit)
	var why string
	for {
		var ok bool
		if ok, why = cond(); ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not after %s: %s", what, limit, why)
		}
		time.Sleep(time.Second)
	}
}

// backupFiles lists the backups of prefix in dir on h.
func backupFiles(ctx context.Context, h *sshhost.Host, dir, prefix string) ([]string, error) {
	out, err := h.Run(ctx, fmt.Sprintf("ls -1A %s 2>/dev/null || true", hclString(dir)))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, b := range backup.List(prefix, strings.Fields(out)) {
		names = append(names, b.Name)
	}
	return names, nil
}

// backupsState checks the backups attribute: one entry per node, named and
// timed as the job names them. No value that varies with time is compared.
func backupsState(cluster string, nodes ...string) statecheck.StateCheck {
	var checks []knownvalue.Check
	for _, n := range nodes {
		checks = append(checks, knownvalue.ObjectExact(map[string]knownvalue.Check{
			"node":     knownvalue.StringExact(n),
			"name":     knownvalue.StringRegexp(regexp.MustCompile(`^` + regexp.QuoteMeta(cluster+"-"+n) + `-\d{8}T\d{6}Z-r\d+\.db$`)),
			"revision": knownvalue.NotNull(),
			"taken_at": knownvalue.StringRegexp(regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)),
		}))
	}
	return statecheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("backups"), knownvalue.ListExact(checks))
}

// Scheduled backups in process mode, on a TLS cluster: bad input fails before anything
// changes; the supervised loop takes backups on every node, keeps the
// newest `keep`, and copies each one with scp to another sshd host; the
// node selection changes to the leader; removing the block stops the jobs
// and keeps the backups.
func TestAccClusterBackupProcess(t *testing.T) {
	hosts := clusterHosts(t, 3)
	nodes, target := hosts[:2], hosts[2]
	bin := binaryLine(t)
	const name = "bk"
	dir := path.Join(nodes[0].BaseDir, "backups") // plain hosts share the file system: one dir, a prefix per node
	offsite := path.Join(target.BaseDir, "offsite")
	if err := os.MkdirAll(offsite, 0o700); err != nil {
		t.Fatal(err)
	}
	keys := t.TempDir()
	keyFile, knownHosts := filepath.Join(keys, "id"), filepath.Join(keys, "known_hosts")
	if err := os.WriteFile(keyFile, target.PrivateKeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(knownHosts, []byte(target.KnownHostsLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// -O: the classic scp protocol; the test sshd has no sftp subsystem.
	copyCmd := fmt.Sprintf(`scp -O -q -i %s -P %d -o BatchMode=yes -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes "$1" "$ETCD_BACKUP_SHA256_FILE" %s@%s:%s/`,
		keyFile, target.Port, knownHosts, target.User, target.Addr, offsite)
	// With TLS: the job reaches its member with the member's own
	// certificates.
	cfg := func(b string) string { return clusterHCL(name, hosts, 2, bin+"  tls = { auto = true }\n"+b) }
	all := backupHCL(dir, `    interval = "10s"
    keep = 2
    node = "all"
    copy_command = `+hclString(copyCmd)+"\n")
	ctx := stepsContext(t)
	unit := "etcd-" + name + "-backup"
	script := func(h *sshhost.Host) string {
		return path.Join(h.BaseDir, name, "opt", "run", unit+".supervise.sh")
	}

	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config:      cfg(backupHCL(dir, "    keep = 0\n")),
				ExpectError: regexp.MustCompile(`backup\.keep[\s\S]*at\s+least\s+1`),
			},
			{
				Config:      cfg(backupHCL(dir, "    interval = \"soon\"\n")),
				ExpectError: regexp.MustCompile(`Invalid\s+backup\s+interval[\s\S]*backup\.interval`),
			},
			{
				Config:      cfg(backupHCL(dir, "    interval = \"1s\"\n")),
				ExpectError: errorText("shorter than the minimum 10s"),
			},
			{
				Config:      cfg(backupHCL(dir, "    node = \"n9\"\n")),
				ExpectError: errorText(`backup.node "n9" is neither "leader", "all" nor a node's name (n1, n2)`),
			},
			{
				Config:      cfg(backupHCL("backups", "")),
				ExpectError: errorText("must be an absolute path"),
			},
			{
				// /proc takes no new files, even for root: the check on the
				// nodes fails before anything is installed.
				Config:      cfg(backupHCL("/proc/etcd-acc-backups", "")),
				ExpectError: regexp.MustCompile(`Backup\s+dir\s+not\s+writable[\s\S]*/proc/etcd-acc-backups`),
			},
			{
				PreConfig: func() { checkHostsEmpty(t, nodes) },
				Config:    cfg(all),
				ConfigStateChecks: []statecheck.StateCheck{
					backupsState(name, "n1", "n2"),
				},
				Check: func(*terraform.State) error {
					// Every backup is copied, and retention keeps the newest
					// two: wait until at least three were taken.
					for _, n := range []string{"n1", "n2"} {
						prefix := name + "-" + n
						var local, copied []string
						err := waitFor("three backups of "+n+" copied, two kept", 4*time.Minute, func() (bool, string) {
							var err1, err2 error
							local, err1 = backupFiles(ctx, nodes[0], dir, prefix)
							copied, err2 = backupFiles(ctx, target, offsite, prefix)
							if err1 != nil || err2 != nil {
								return false, fmt.Sprint(err1, err2)
							}
							return len(copied) >= 3 && len(local) == 2 && slices.Contains(copied, local[1]),
								fmt.Sprintf("local %v, copied %v", local, copied)
						})
						if err != nil {
							log, _ := os.ReadFile(path.Join(nodes[0].BaseDir, name, "opt", "run", unit+".log"))
							return fmt.Errorf("%w\nn1's backup log:\n%s", err, log)
						}
						if slices.Contains(local, copied[0]) {
							return fmt.Errorf("%s: the oldest backup %s was not deleted (local %v)", n, copied[0], local)
						}
						newest := local[1]
						if out, err := target.Run(ctx, fmt.Sprintf("cd %s && sha256sum -c %s", offsite, newest+".sha256")); err != nil {
							return fmt.Errorf("the copied sidecar does not verify the copy: %v %s", err, out)
						}
						info, _ := backup.ParseName(prefix, newest)
						st, err := snapshot.ReadStatus(path.Join(offsite, newest))
						if err != nil || st.Revision != info.Revision {
							return fmt.Errorf("%s: snapshot status %+v, %v; the name says revision %d", newest, st, err, info.Revision)
						}
					}
					return nil
				},
			},
			{
				Config:            cfg(strings.Replace(strings.Replace(all, `node = "all"`, `node = "leader"`, 1), "keep = 2", "keep = 3", 1)),
				ConfigStateChecks: []statecheck.StateCheck{backupsState(name, "n1", "n2")},
				Check: func(*terraform.State) error {
					for _, h := range nodes {
						b, err := os.ReadFile(script(h))
						if err != nil || !strings.Contains(string(b), "'--leader-only'") || !strings.Contains(string(b), "'--keep' '3'") {
							return fmt.Errorf("%s: the job does not run for the leader only with keep 3: %v\n%s", h.Name, err, b)
						}
					}
					return nil
				},
			},
			{
				Config: cfg(""),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("backups"), knownvalue.Null()),
				},
				Check: func(*terraform.State) error {
					for _, h := range nodes {
						if _, err := os.Stat(script(h)); !os.IsNotExist(err) {
							return fmt.Errorf("%s: the backup job is still installed (%v)", h.Name, err)
						}
						// Only this host's loop: the hosts share the machine's
						// processes, and other tests run backup loops too.
						out, _ := h.Run(ctx, "ps -eo args | grep '[b]ackup loop' | grep -cF '"+path.Join(h.BaseDir, name)+"/' || true")
						if strings.TrimSpace(out) != "0" {
							return fmt.Errorf("%s: a backup loop still runs", h.Name)
						}
					}
					kept, err := backupFiles(ctx, nodes[0], dir, name+"-n1")
					if err != nil || len(kept) == 0 {
						return fmt.Errorf("the backups must stay when the jobs are removed: %v %v", kept, err)
					}
					return nil
				},
			},
		},
	})
}

// Scheduled backups with systemd as PID 1 (an nspawn container): the timer
// and oneshot service are installed, the timer fires again and again, and
// each run leaves a backup; destroy removes the units.
func TestAccClusterBackupSystemd(t *testing.T) {
	accCluster(t)
	hosts := sshhost.Start(t, 1, sshhost.WithSystemd())
	h := hosts[0]
	const name = "sd"
	dir := "/var/backups/etcd-acc"
	config := clusterHCL(name, hosts, 1, binaryLine(t)+"  service_manager = \"systemd\"\n"+backupHCL(dir, `    interval = "10s"
    keep = 3
    node = "all"
`))
	ctx := stepsContext(t)
	timer := "etcd-" + name + "-backup.timer"
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: func(*terraform.State) error {
			out, err := h.Run(ctx, "ls /etc/systemd/system/ | grep -c backup || true")
			if err != nil {
				return fmt.Errorf("listing the units after destroy: %w", err)
			}
			if strings.TrimSpace(out) != "0" {
				return fmt.Errorf("%s backup units left after destroy", strings.TrimSpace(out))
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				Config:            config,
				ConfigStateChecks: []statecheck.StateCheck{backupsState(name, "n1")},
				Check: func(*terraform.State) error {
					if out, err := h.Run(ctx, "systemctl is-enabled "+timer+" && systemctl is-active "+timer); err != nil {
						return fmt.Errorf("timer not enabled and active: %v %s", err, out)
					}
					// The first backup came with the install; the timer then
					// fires every 10s: wait for two more.
					var files []string
					err := waitFor("the timer fires twice more", 4*time.Minute, func() (bool, string) {
						var err error
						files, err = backupFiles(ctx, h, dir, name+"-n1")
						runs, _ := h.Run(ctx, "journalctl --no-pager -o cat -u etcd-"+name+"-backup.service | grep -c 'backup: saved' || true")
						n, _ := strconv.Atoi(strings.TrimSpace(runs))
						return err == nil && len(files) == 3 && n >= 3, fmt.Sprintf("files %v, runs %s, %v", files, strings.TrimSpace(runs), err)
					})
					if err != nil {
						return err
					}
					res, err := h.Run(ctx, "systemctl show -p Result --value etcd-"+name+"-backup.service")
					if err != nil || strings.TrimSpace(res) != "success" {
						return fmt.Errorf("the backup service's last run: %q %v", res, err)
					}
					if out, err := h.Run(ctx, fmt.Sprintf("cd %s && sha256sum -c %s.sha256", dir, files[2])); err != nil {
						return fmt.Errorf("sidecar does not verify: %v %s", err, out)
					}
					return nil
				},
			},
		},
	})
}

// Scheduled backups under etcd authentication, on a TLS cluster: the jobs
// are installed, then authentication is turned on (user root, etcd_auth,
// through a provider wired to the cluster's root client certificate). The
// jobs keep taking backups: each talks to its member with that certificate,
// not with the member's own (whose common name is no user). Neither the
// key nor anything from it is in the job's arguments or log.
func TestAccClusterBackupUnderAuth(t *testing.T) {
	hosts := clusterHosts(t, 2)
	const name = "bkauth"
	dir := path.Join(hosts[0].BaseDir, "backups")
	cluster := clusterHCL(name, hosts, 2, binaryLine(t)+"  tls = { auto = true }\n"+backupHCL(dir, `    interval = "10s"
    keep = 3
    node = "all"
`))
	wired := wiredProviderHCL + `
resource "etcd_user" "root" {
  provider = etcdwired
  name        = "root"
  roles       = ["root"]
  no_password = true
}

resource "etcd_auth" "on" {
  provider   = etcdwired
  depends_on = [etcd_user.root]
}
`
	ctx := stepsContext(t)
	unit := "etcd-" + name + "-backup"
	var authOn time.Time
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: map[string]func() (tfprotov6.ProviderServer, error){
			"etcd":      NewProtocol6Server("test"),
			"etcdwired": NewProtocol6Server("test"),
		},
		Steps: []resource.TestStep{
			{
				Config: cluster + wired,
				Check: func(s *terraform.State) error {
					authOn = time.Now().UTC().Truncate(time.Second)
					cli, err := clusterClient(s)
					if err != nil {
						return err
					}
					defer cli.Close()
					if st, err := cli.AuthStatus(ctx); err != nil || !st.Enabled {
						return fmt.Errorf("authentication is not on: %+v %v", st, err)
					}
					// Two backups of every node taken after auth was on.
					for i, n := range []string{"n1", "n2"} {
						prefix := name + "-" + n
						err := waitFor("two backups of "+n+" under auth", 4*time.Minute, func() (bool, string) {
							names, err := backupFiles(ctx, hosts[0], dir, prefix)
							if err != nil {
								return false, err.Error()
							}
							after := 0
							for _, b := range backup.List(prefix, names) {
								if b.TakenAt.After(authOn) {
									after++
								}
							}
							return after >= 2, fmt.Sprintf("backups %v, %d after %s", names, after, authOn.Format(time.RFC3339))
						})
						logf := path.Join(hosts[i].BaseDir, name, "opt", "run", unit+".log")
						log, _ := os.ReadFile(logf)
						if err != nil {
							return fmt.Errorf("%w\n%s's backup log:\n%s", err, n, log)
						}
						if strings.Contains(string(log), "error") {
							return fmt.Errorf("%s's backup log has errors:\n%s", n, log)
						}
						key, err := os.ReadFile(path.Join(hosts[i].BaseDir, name, "opt", "pki", backupClientKey))
						if err != nil {
							return err
						}
						fi, err := os.Stat(path.Join(hosts[i].BaseDir, name, "opt", "pki", backupClientKey))
						if err != nil || fi.Mode().Perm() != 0o600 {
							return fmt.Errorf("%s: the job's key file mode %v, %v; want 0600", n, fi.Mode(), err)
						}
						script, _ := os.ReadFile(path.Join(hosts[i].BaseDir, name, "opt", "run", unit+".supervise.sh"))
						for _, text := range [][]byte{log, script} {
							if bytes.Contains(text, bytes.TrimSpace(key)) || bytes.Contains(text, []byte("PRIVATE KEY")) {
								return fmt.Errorf("%s: the job's script or log carries the key", n)
							}
						}
					}
					return nil
				},
			},
		},
	})
}
