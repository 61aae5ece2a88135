package provider

import (
	"context"
	"debug/elf"
	"encoding/binary"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/memberhost"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/snapshot"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver/sshhost"
)

// recoverySnapshotLine is a recovery block from a snapshot file whose
// sha256 is sum, or filesha256(p) when sum is empty.
func recoverySnapshotLine(p, sum string) string {
	s := "filesha256(" + hclString(p) + ")"
	if sum != "" {
		s = hclString(sum)
	}
	return fmt.Sprintf("  recovery = {\n    snapshot = %s\n    sha256   = %s\n  }\n", hclString(p), s)
}

// stateClusterID is etcd_cluster.c's cluster_id in the state.
func stateClusterID(s *terraform.State) string {
	if rs, ok := s.RootModule().Resources["etcd_cluster.c"]; ok {
		return rs.Primary.Attributes["cluster_id"]
	}
	return ""
}

// snapshotCluster takes a snapshot of the cluster in the state into p
// through the client API, after writing keys under prefix+"before/"; then
// it writes keys under prefix+"after/" that the snapshot does not hold.
func snapshotCluster(t *testing.T, s *terraform.State, prefix, p string) (map[string]storedKV, error) {
	cli, err := clusterClient(s)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	// One member takes the writes and the snapshot: a member answers a
	// write once it has applied it, but another member may not have yet,
	// and the snapshot is of whichever member serves it.
	cli.SetEndpoints(cli.Endpoints()[0])
	before := putKeys(t, cli, prefix+"before/", 30)
	if _, err := snapshot.Save(etcdCtx(t), cli, p); err != nil {
		return nil, err
	}
	putKeys(t, cli, prefix+"after/", 10)
	return before, nil
}

// truncatedCopy writes the first half of the file src to dst.
func truncatedCopy(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data[:len(data)/2], 0o600)
}

// Disaster recovery from a snapshot: two of three members are lost for
// good, the survivor holds writes newer than the snapshot. Conflicting or
// missing sources, a wrong sha256 and a truncated file fail at plan,
// naming the attribute; the apply rebuilds three members from the
// snapshot (a new cluster ID; keys written before it byte for byte at
// their revisions, keys written after it absent, the survivor's data dir
// moved aside), and without the block the plan is empty again.
func TestAccClusterRecoverySnapshot(t *testing.T) {
	hosts := clusterHosts(t, 3)
	needEtcdctl(t)
	bin := binaryLine(t)
	const name = "drs"
	dir := t.TempDir()
	snap, truncated := filepath.Join(dir, "snap.db"), filepath.Join(dir, "truncated.db")
	var before map[string]storedKV
	var oldID string
	var began time.Time
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: clusterHCL(name, hosts, 3, bin),
				Check: func(s *terraform.State) error {
					oldID = stateClusterID(s)
					var err error
					if before, err = snapshotCluster(t, s, "/drs/", snap); err != nil {
						return err
					}
					return truncatedCopy(snap, truncated)
				},
			},
			{
				PreConfig: func() {
					loseMember(t, hosts[1], name)
					loseMember(t, hosts[2], name)
				},
				Config: clusterHCL(name, hosts, 3, bin+`  recovery = {
    from_node = "n1"
    snapshot  = `+hclString(snap)+`
    sha256    = filesha256(`+hclString(snap)+`)
  }
`),
				PlanOnly:    true,
				ExpectError: errorText("recovery.from_node and recovery.snapshot are mutually exclusive"),
			},
			{
				Config:      clusterHCL(name, hosts, 3, bin+"  recovery = {}\n"),
				PlanOnly:    true,
				ExpectError: errorText("recovery needs a source: set recovery.from_node"),
			},
			{
				Config:      clusterHCL(name, hosts, 3, bin+"  recovery = {\n    snapshot = "+hclString(snap)+"\n  }\n"),
				PlanOnly:    true,
				ExpectError: errorText("recovery.sha256 is required with recovery.snapshot"),
			},
			{
				Config:      clusterHCL(name, hosts, 3, bin+recoverySnapshotLine(snap, strings.Repeat("ab", 32))),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`recovery\.sha256:\s+the\s+sha256\s+of[\s\S]*is\s+[0-9a-f]{64},\s+not\s+` + strings.Repeat("ab", 32)),
			},
			{
				Config:      clusterHCL(name, hosts, 3, bin+recoverySnapshotLine(truncated, "")),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`recovery\.snapshot:\s+the\s+file\s+is\s+not\s+an\s+intact\s+etcd\s+snapshot`),
			},
			{
				PreConfig: func() { began = time.Now() },
				Config:    clusterHCL(name, hosts, 3, bin+recoverySnapshotLine(snap, "")),
				Check: resource.ComposeTestCheckFunc(
					func(*terraform.State) error {
						t.Logf("disaster recovery from a snapshot to 3 members, plan and apply through the CLI: %s", time.Since(began).Round(time.Millisecond))
						return nil
					},
					func(s *terraform.State) error { return checkServes("/drs/", before, "/drs/after/")(s) },
					checkClusterMembers("n1", "n2", "n3"),
					func(s *terraform.State) error {
						if id := stateClusterID(s); id == "" || id == oldID {
							return fmt.Errorf("cluster_id %q after the recovery, was %q: a restore makes a new cluster", id, oldID)
						}
						aside, _ := filepath.Glob(path.Join(hosts[0].BaseDir, name, "data.before-recovery-*", "member", "wal"))
						if len(aside) != 1 {
							return fmt.Errorf("the survivor's data dir was not moved aside: %v", aside)
						}
						return nil
					},
				),
			},
			{
				Config:   clusterHCL(name, hosts, 3, bin),
				PlanOnly: true,
			},
		},
	})
}

// systemdHosts starts n hosts with systemd as PID 1 (nspawn containers).
func systemdHosts(t *testing.T, n int) []*sshhost.Host {
	t.Helper()
	accCluster(t)
	return sshhost.Start(t, n, sshhost.WithSystemd())
}

const systemdLine = "  service_manager = \"systemd\"\n"

// unitProps reads properties of a unit on h with systemctl show.
func unitProps(ctx context.Context, h *sshhost.Host, unit string, props ...string) (map[string]string, error) {
	cmd := "systemctl show " + unit
	for _, p := range props {
		cmd += " -p " + p
	}
	out, err := h.Run(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("%s: %s: %v %s", h.Name, cmd, err, out)
	}
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			m[k] = v
		}
	}
	return m, nil
}

// checkMemberUnits checks every node's member unit: a Type=notify unit
// that systemd reports active and running (a notify unit is active only
// once the member has sent READY=1), enabled, with Restart=on-failure.
func checkMemberUnits(ctx context.Context, hosts []*sshhost.Host, unit string) error {
	for _, h := range hosts {
		p, err := unitProps(ctx, h, unit, "Type", "ActiveState", "SubState", "Restart", "UnitFileState", "MainPID")
		if err != nil {
			return err
		}
		want := map[string]string{"Type": "notify", "ActiveState": "active", "SubState": "running", "Restart": "on-failure", "UnitFileState": "enabled"}
		for k, v := range want {
			if p[k] != v {
				return fmt.Errorf("%s: %s has %s=%s, want %s (%v)", h.Name, unit, k, p[k], v, p)
			}
		}
		if p["MainPID"] == "0" || p["MainPID"] == "" {
			return fmt.Errorf("%s: %s has no main process (%v)", h.Name, unit, p)
		}
	}
	return nil
}

// unitRestarts follows the member units of a systemd cluster across
// applies that must restart every member through systemd (an upgrade, a
// certificate rotation): record notes each unit's main process, restarted
// checks that each unit has another one since, started by systemd on
// request (active, running, no automatic restart counted) and running the
// expected binary, and records the new ones.
type unitRestarts struct {
	ctx   context.Context
	hosts []*sshhost.Host
	unit  string
	pids  map[string]string
}

func newUnitRestarts(ctx context.Context, hosts []*sshhost.Host, unit string) *unitRestarts {
	return &unitRestarts{ctx: ctx, hosts: hosts, unit: unit, pids: map[string]string{}}
}

// record checks the units (checkMemberUnits) and notes their main processes.
func (u *unitRestarts) record(*terraform.State) error {
	if err := checkMemberUnits(u.ctx, u.hosts, u.unit); err != nil {
		return err
	}
	for _, h := range u.hosts {
		p, err := unitProps(u.ctx, h, u.unit, "MainPID")
		if err != nil {
			return err
		}
		u.pids[h.Name] = p["MainPID"]
	}
	return nil
}

// restarted checks that every unit was restarted since the last record and
// that its main process runs binary(h), a path on host h; then records.
func (u *unitRestarts) restarted(binary func(h *sshhost.Host) string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		for _, h := range u.hosts {
			p, err := unitProps(u.ctx, h, u.unit, "MainPID", "ActiveState", "SubState", "NRestarts")
			if err != nil {
				return err
			}
			if p["MainPID"] == u.pids[h.Name] || p["ActiveState"] != "active" || p["SubState"] != "running" || p["NRestarts"] != "0" {
				return fmt.Errorf("%s: %s was not restarted on request: %v, main pid was %s", h.Name, u.unit, p, u.pids[h.Name])
			}
			exe, err := h.Run(u.ctx, "readlink /proc/"+p["MainPID"]+"/exe")
			if err != nil {
				return fmt.Errorf("%s: the executable of %s's main process %s: %v %s", h.Name, u.unit, p["MainPID"], err, exe)
			}
			if want := binary(h); strings.TrimSpace(exe) != want {
				return fmt.Errorf("%s: %s's main process runs %s, want %s", h.Name, u.unit, strings.TrimSpace(exe), want)
			}
		}
		return u.record(s)
	}
}

// inTurn checks that the last restarts went one member at a time: in the
// order systemd stopped the units (ActiveExitTimestamp), each was stopped
// only after the one before had its new main process
// (ExecMainStartTimestamp). The timestamps are of the one monotonic clock
// the containers share with the machine.
func (u *unitRestarts) inTurn(*terraform.State) error {
	type restart struct {
		host        string
		stop, start uint64
	}
	var rs []restart
	for _, h := range u.hosts {
		p, err := unitProps(u.ctx, h, u.unit, "ActiveExitTimestampMonotonic", "ExecMainStartTimestampMonotonic")
		if err != nil {
			return err
		}
		r := restart{host: h.Name}
		if _, err := fmt.Sscan(p["ActiveExitTimestampMonotonic"], &r.stop); err != nil {
			return fmt.Errorf("%s: %s: ActiveExitTimestampMonotonic %q", h.Name, u.unit, p["ActiveExitTimestampMonotonic"])
		}
		if _, err := fmt.Sscan(p["ExecMainStartTimestampMonotonic"], &r.start); err != nil {
			return fmt.Errorf("%s: %s: ExecMainStartTimestampMonotonic %q", h.Name, u.unit, p["ExecMainStartTimestampMonotonic"])
		}
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].stop < rs[j].stop })
	for i := 1; i < len(rs); i++ {
		if rs[i].stop < rs[i-1].start {
			return fmt.Errorf("%s's member was stopped (at %dµs) before %s's had restarted (at %dµs): not one at a time (%v)",
				rs[i].host, rs[i].stop, rs[i-1].host, rs[i-1].start, rs)
		}
	}
	return nil
}

// bundledUnitRestarts follows the member units of the systemd cluster name
// on hosts, which run the bundled server (binaryLine).
func bundledUnitRestarts(ctx context.Context, hosts []*sshhost.Host, name string) (u *unitRestarts, restarted resource.TestCheckFunc) {
	u = newUnitRestarts(ctx, hosts, "etcd-"+name+".service")
	return u, u.restarted(func(h *sshhost.Host) string {
		return path.Join(h.BaseDir, name, "opt", "bin", memberhost.BinaryName)
	})
}

// waitWritable waits until the cluster in the state takes a write.
func waitWritable(s *terraform.State, limit time.Duration) error {
	cli, err := clusterClient(s)
	if err != nil {
		return err
	}
	defer cli.Close()
	return waitFor("the cluster takes writes", limit, func() (bool, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := cli.Put(ctx, "/acc/systemd-check", "ok")
		return err == nil, fmt.Sprint(err)
	})
}

// loseSystemdMember stops the member's unit on h (systemctl stop) and
// deletes its data dir: a member gone for good.
func loseSystemdMember(t *testing.T, h *sshhost.Host, name string) {
	t.Helper()
	dataDir := path.Join(h.BaseDir, name, "data")
	if out, err := h.Run(etcdCtx(t), fmt.Sprintf("systemctl stop etcd-%s.service && rm -rf %s", name, dataDir)); err != nil {
		t.Fatalf("%s: %v %s", h.Name, err, out)
	}
}

// A cluster restored from a snapshot at create, on three hosts with
// systemd as PID 1: the members run as Type=notify units that systemd
// reports ready; the restored keys are served byte for byte; `systemctl
// restart` of a member and a crash (SIGKILL, restarted by Restart=) each
// bring the member back into a healthy cluster; the next plan is empty.
func TestAccClusterSystemdRestore(t *testing.T) {
	hosts := systemdHosts(t, 3)
	needEtcdctl(t)
	bin := binaryLine(t)
	const name = "sdrs"
	unit := "etcd-" + name + ".service"
	src := testserver.Start(t, testserver.WithMembers(1))
	dir := t.TempDir()
	before := putKeys(t, src.Client(), "/sdrs/before/", 30)
	snap := filepath.Join(dir, "snap.db")
	sum := saveSnapshot(t, src, snap)
	putKeys(t, src.Client(), "/sdrs/after/", 5)
	ctx := stepsContext(t)
	config := clusterHCL(name, hosts, 3, bin+systemdLine+restoreLine(snap, sum))
	var began time.Time
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: func(*terraform.State) error {
			for _, h := range hosts {
				if out, _ := h.Run(ctx, "ls /etc/systemd/system/ | grep -c "+name+" || true"); strings.TrimSpace(out) != "0" {
					return fmt.Errorf("%s: units of %s left after destroy", h.Name, name)
				}
			}
			return nil
		},
		Steps: []resource.TestStep{
			{
				PreConfig: func() { began = time.Now() },
				Config:    config,
				Check: resource.ComposeTestCheckFunc(
					func(*terraform.State) error {
						t.Logf("restore of a 3-node systemd cluster, plan and apply through the CLI: %s", time.Since(began).Round(time.Millisecond))
						return checkMemberUnits(ctx, hosts, unit)
					},
					checkServes("/sdrs/", before, "/sdrs/after/"),
					checkClusterMembers("n1", "n2", "n3"),
					func(s *terraform.State) error {
						// systemctl restart: a new main process, no automatic
						// restart counted, the member back in the cluster.
						h := hosts[0]
						p, err := unitProps(ctx, h, unit, "MainPID")
						if err != nil {
							return err
						}
						if out, err := h.Run(ctx, "systemctl restart "+unit); err != nil {
							return fmt.Errorf("systemctl restart: %v %s", err, out)
						}
						q, err := unitProps(ctx, h, unit, "MainPID", "NRestarts", "ActiveState")
						if err != nil {
							return err
						}
						if q["MainPID"] == p["MainPID"] || q["ActiveState"] != "active" || q["NRestarts"] != "0" {
							return fmt.Errorf("after systemctl restart: %v, main pid was %s", q, p["MainPID"])
						}
						return nil
					},
					func(s *terraform.State) error {
						// A crash: systemd restarts the member (Restart=on-failure).
						h := hosts[1]
						p, err := unitProps(ctx, h, unit, "MainPID")
						if err != nil {
							return err
						}
						if out, err := h.Run(ctx, "kill -KILL "+p["MainPID"]); err != nil {
							return fmt.Errorf("kill: %v %s", err, out)
						}
						err = waitFor("systemd restarts the killed member", 3*time.Minute, func() (bool, string) {
							q, err := unitProps(ctx, h, unit, "MainPID", "NRestarts", "ActiveState")
							if err != nil {
								return false, err.Error()
							}
							return q["NRestarts"] == "1" && q["ActiveState"] == "active" && q["MainPID"] != p["MainPID"] && q["MainPID"] != "0", fmt.Sprint(q)
						})
						if err != nil {
							return err
						}
						if err := waitWritable(s, 2*time.Minute); err != nil {
							return err
						}
						return checkMemberUnits(ctx, hosts, unit)
					},
					checkClusterMembers("n1", "n2", "n3"),
				),
			},
			{
				Config:   config,
				PlanOnly: true,
			},
		},
	})
}

// Disaster recovery on three hosts with systemd as PID 1. Every member is
// lost (units stopped, data dirs deleted): the plan fails, naming them and
// showing a snapshot recovery; the apply with recovery from a snapshot
// taken earlier brings back three members serving the snapshot's keys.
// Then two members are lost: recovery from the survivor brings them back
// with the survivor's data. Without the block the plan is empty.
func TestAccClusterSystemdRecovery(t *testing.T) {
	hosts := systemdHosts(t, 3)
	needEtcdctl(t)
	bin := binaryLine(t) + systemdLine
	const name = "sddr"
	unit := "etcd-" + name + ".service"
	snap := filepath.Join(t.TempDir(), "snap.db")
	ctx := stepsContext(t)
	var before, later map[string]storedKV
	var began time.Time
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config: clusterHCL(name, hosts, 3, bin),
				Check: func(s *terraform.State) error {
					if err := checkMemberUnits(ctx, hosts, unit); err != nil {
						return err
					}
					var err error
					before, err = snapshotCluster(t, s, "/sddr/", snap)
					return err
				},
			},
			{
				PreConfig: func() {
					for _, h := range hosts {
						loseSystemdMember(t, h, name)
					}
				},
				Config:      clusterHCL(name, hosts, 3, bin),
				PlanOnly:    true,
				ExpectError: regexp.MustCompile(`lost\s+every\s+member[\s\S]*Lost\s+members:\s+n1,\s+n2,\s+n3[\s\S]*recovery\s+=\s+\{\s+snapshot\s+=`),
			},
			{
				PreConfig: func() { began = time.Now() },
				Config:    clusterHCL(name, hosts, 3, bin+recoverySnapshotLine(snap, "")),
				Check: resource.ComposeTestCheckFunc(
					func(*terraform.State) error {
						t.Logf("disaster recovery of a systemd cluster from a snapshot (every member lost), plan and apply: %s", time.Since(began).Round(time.Millisecond))
						return checkMemberUnits(ctx, hosts, unit)
					},
					func(s *terraform.State) error { return checkServes("/sddr/", before, "/sddr/after/")(s) },
					checkClusterMembers("n1", "n2", "n3"),
					func(s *terraform.State) error {
						cli, err := clusterClient(s)
						if err != nil {
							return err
						}
						defer cli.Close()
						later = putKeys(t, cli, "/sddr/later/", 10)
						return nil
					},
				),
			},
			{
				Config:   clusterHCL(name, hosts, 3, bin),
				PlanOnly: true,
			},
			{
				PreConfig: func() {
					loseSystemdMember(t, hosts[1], name)
					loseSystemdMember(t, hosts[2], name)
					began = time.Now()
				},
				Config: clusterHCL(name, hosts, 3, bin+"  recovery = {\n    from_node = \"n1\"\n  }\n"),
				Check: resource.ComposeTestCheckFunc(
					func(*terraform.State) error {
						t.Logf("disaster recovery of a systemd cluster from one survivor, plan and apply: %s", time.Since(began).Round(time.Millisecond))
						return checkMemberUnits(ctx, hosts, unit)
					},
					func(s *terraform.State) error { return checkServes("/sddr/before/", before, "")(s) },
					func(s *terraform.State) error { return checkServes("/sddr/later/", later, "")(s) },
					checkClusterMembers("n1", "n2", "n3"),
				),
			},
			{
				Config:   clusterHCL(name, hosts, 3, bin),
				PlanOnly: true,
			},
		},
	})
}

// With remote_binary the restore runs the provider's binary as a tool for
// the stock server's version: a snapshot of a newer etcd (the bundled
// 3.7's) cannot be restored for Debian's etcd 3.4 and is refused, naming
// restore, the snapshot's version and the server's, with every node as it
// was (the snapshot copies that went up while it was checked are removed).
// backup and recovery.snapshot plan with remote_binary.
func TestAccClusterRemoteBinaryRefusals(t *testing.T) {
	const stock = "/usr/bin/etcd"
	if _, err := os.Stat(stock); err != nil {
		accCluster(t)
		t.Skipf("%s is not installed (apt-get install etcd-server): %v", stock, err)
	}
	hosts := clusterHosts(t, 1)
	src := testserver.Start(t, testserver.WithMembers(1))
	snap := filepath.Join(t.TempDir(), "snap.db")
	sum := saveVersionedSnapshot(t, src, snap)
	remote := "  remote_binary = \"" + stock + "\"\n" + binaryLine(t)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config:             clusterHCL("rb", hosts, 1, remote+backupHCL("/var/backups/etcd-rb", "")),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				Config:             clusterHCL("rb", hosts, 1, remote+recoverySnapshotLine(snap, sum)),
				PlanOnly:           true,
				ExpectNonEmptyPlan: true,
			},
			{
				Config:      clusterHCL("rb", hosts, 1, remote+restoreLine(snap, sum)),
				ExpectError: regexp.MustCompile(`restore\.snapshot[\s\S]*remote_binary\s+runs\s+etcd\s+3\.4[\s\S]*taken\s+from\s+etcd\s+3\.7[\s\S]*cannot\s+be\s+restored\s+for\s+etcd\s+3\.4`),
			},
			{
				// The tool is built for another CPU than the node's.
				Config: clusterHCL("rb", hosts, 1, "  remote_binary = \""+stock+"\"\n  binary_path = "+hclString(arm64Copy(t, clusterBinary(t)))+"\n"+
					restoreLine(snap, sum)),
				ExpectError: regexp.MustCompile(`built\s+for\s+linux/arm64[\s\S]*the\s+node\s+is\s+linux/` + runtime.GOARCH),
			},
		},
	})
	checkHostsEmpty(t, hosts)
}

// arm64Copy copies the ELF executable src with its header's machine set to
// AArch64: to the provider's platform check, a build for arm64.
func arm64Copy(t *testing.T, src string) string {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	const machineOffset = 18 // e_machine, little-endian, in both ELF classes
	if len(data) < machineOffset+2 || string(data[:4]) != elf.ELFMAG {
		t.Fatalf("%s is not an ELF file", src)
	}
	binary.LittleEndian.PutUint16(data[machineOffset:], uint16(elf.EM_AARCH64))
	dst := filepath.Join(t.TempDir(), "terraform-provider-etcd-arm64")
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}

// saveVersionedSnapshot is saveSnapshot once the source records its
// storage version (a member writes it shortly after it starts): a snapshot
// without one says nothing of its etcd version.
func saveVersionedSnapshot(t *testing.T, src *testserver.Cluster, p string) string {
	t.Helper()
	var sum string
	if err := waitFor("a snapshot with a storage version", time.Minute, func() (bool, string) {
		sum = saveSnapshot(t, src, p)
		v, err := snapshot.StorageVersion(p)
		return err == nil && v != "", fmt.Sprintf("storage version %q (%v)", v, err)
	}); err != nil {
		t.Fatal(err)
	}
	return sum
}
