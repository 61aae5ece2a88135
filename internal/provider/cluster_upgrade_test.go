package provider

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/cluster"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver/sshhost"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver/stocketcd"
)

// serverVersionsAre checks that every node's member runs version.
func serverVersionsAre(version string, nodes ...string) statecheck.StateCheck {
	m := map[string]knownvalue.Check{}
	for _, n := range nodes {
		m[n] = knownvalue.StringExact(version)
	}
	return statecheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("server_versions"), knownvalue.MapExact(m))
}

// upgradeRecord follows a cluster along an upgrade path: at each step it
// writes a key naming the version the cluster runs (under prefix+"step/"),
// and from the first step on a background writer writes under
// prefix+"bg/"; final checks that every key written at a step and every
// write the writer got acknowledged are still there.
type upgradeRecord struct {
	t      *testing.T
	prefix string
	writer *ackWriter
	steps  []string
}

// atStep writes the key of the step to version and starts the writer (at
// the first step) or closes its measuring window.
func (u *upgradeRecord) atStep(version string) resource.TestCheckFunc {
	return func(s *terraform.State) error {
		err := withClusterClient(s, 30*time.Second, func(ctx context.Context, cli *clientv3.Client) error {
			_, err := cli.Put(ctx, u.prefix+"step/"+version, version)
			return err
		})
		if err != nil {
			return fmt.Errorf("write at %s: %w", version, err)
		}
		u.steps = append(u.steps, version)
		if u.writer == nil {
			u.writer, err = startAckWriter(s, u.prefix+"bg/")
			return err
		}
		u.writer.window("upgraded to "+version, u.t)
		return nil
	}
}

// final stops the writer and checks that nothing written was lost.
func (u *upgradeRecord) final(s *terraform.State) error {
	if u.writer == nil {
		return fmt.Errorf("no background writer: the first step of the path did not run")
	}
	err := withClusterClient(s, time.Minute, func(ctx context.Context, cli *clientv3.Client) error {
		if err := u.writer.verify(ctx, cli, u.t, 0); err != nil {
			return err
		}
		for _, v := range u.steps {
			r, err := cli.Get(ctx, u.prefix+"step/"+v)
			if err != nil {
				return err
			}
			if len(r.Kvs) != 1 || string(r.Kvs[0].Value) != v {
				return fmt.Errorf("the key written at %s is gone after the upgrades: %v", v, r.Kvs)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	stalls := append([]time.Duration(nil), u.writer.stalls...)
	sort.Slice(stalls, func(i, j int) bool { return stalls[i] < stalls[j] })
	u.t.Logf("steps %v; longest write stall per upgrade apply (sorted): %v", u.steps, stalls)
	return nil
}

// versionStep is an apply of config after which every node's member runs
// version (in the state) and the members are all there; then the checks
// run in order.
func versionStep(config, version string, nodes []string, checks ...resource.TestCheckFunc) resource.TestStep {
	return resource.TestStep{
		Config:            config,
		ConfigStateChecks: []statecheck.StateCheck{serverVersionsAre(version, nodes...)},
		Check:             resource.ComposeTestCheckFunc(append([]resource.TestCheckFunc{checkClusterMembers(nodes...)}, checks...)...),
	}
}

// upgradeStep is a versionStep whose plan updates the cluster in place and
// shows the new version for every node.
func upgradeStep(config, version string, nodes []string, checks ...resource.TestCheckFunc) resource.TestStep {
	m := map[string]knownvalue.Check{}
	for _, n := range nodes {
		m[n] = knownvalue.StringExact(version)
	}
	s := versionStep(config, version, nodes, checks...)
	s.ConfigPlanChecks = resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
		plancheck.ExpectResourceAction("etcd_cluster.c", plancheck.ResourceActionUpdate),
		plancheck.ExpectKnownValue("etcd_cluster.c", tfjsonpath.New("server_versions"), knownvalue.MapExact(m)),
	}}
	return s
}

// noSnapshot is an etcd_cluster settings line under which no member takes a
// raft snapshot on account of a test's writes, however many, so that the raft
// log keeps the v2-format entries of etcd 3.5 and older when a member
// moves onto etcd 3.7 (internal/server/legacywal.go).
const noSnapshot = "  settings = { \"snapshot-count\" = \"1000000\" }\n"

// TestAccClusterUpgradePath upgrades a 3-member cluster on the sshd hosts
// along etcd 3.4 (Debian) → 3.5.23 → 3.5.36 → 3.6 → the bundled server,
// one apply per step, while a background writer writes through a retrying
// client: every write etcd acknowledged is readable at the end, and so is a
// key written at each step. Between the steps, the plan refuses (naming the
// attribute) a skipped minor version, 3.5 → 3.6 from below the guide's
// minimum patch release, a minor downgrade outside etcd's downgrade
// procedure, and a binary that is not the pinned server_version.
func TestAccClusterUpgradePath(t *testing.T) {
	accCluster(t)
	v34 := stocketcd.Require(t, stocketcd.V34Debian)
	v35old := stocketcd.Require(t, stocketcd.V35BelowUpgradeMinimum)
	v35 := stocketcd.Require(t, stocketcd.V35)
	v36 := stocketcd.Require(t, stocketcd.V36)
	if stocketcd.UpgradeMinimum35 != cluster.MinUpgradeFrom35 {
		t.Fatalf("stocketcd.UpgradeMinimum35 %s and cluster.MinUpgradeFrom35 %s differ", stocketcd.UpgradeMinimum35, cluster.MinUpgradeFrom35)
	}
	hosts := clusterHosts(t, 3)
	bin := clusterBinary(t)
	// No snapshot but the one etcd 3.6 forces when it replays 3.4's
	// cluster version (see TestAccClusterSystemdUpgrade).
	remote := func(b stocketcd.Binaries) string {
		return clusterHCL("upgrade", hosts, 3, noSnapshot+"  remote_binary = "+hclString(b.Etcd)+"\n")
	}
	bundled := func(extra string) string {
		return clusterHCL("upgrade", hosts, 3, noSnapshot+"  binary_path = "+hclString(bin)+"\n"+extra)
	}
	nodes := []string{"n1", "n2", "n3"}
	rec := &upgradeRecord{t: t, prefix: "/upgrade/"}
	upgrade := func(config, version string) resource.TestStep {
		return upgradeStep(config, version, nodes, rec.atStep(version))
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			versionStep(remote(v34), v34.Version, nodes, rec.atStep(v34.Version)),
			{Config: remote(v36), ExpectError: errorText("remote_binary " + v36.Etcd + " would move node(s) n1, n2, n3 from the running version: etcd 3.4.23 -> 3.6.17 skips a minor version")},
			upgrade(remote(v35old), v35old.Version),
			{Config: remote(v36), ExpectError: errorText("3.5.23 -> 3.6.17 starts below the minimum patch release etcd's upgrade guide requires: etcd's 3.5 -> 3.6 upgrade guide requires every member on " + cluster.MinUpgradeFrom35)},
			upgrade(remote(v35), v35.Version),
			upgrade(remote(v36), v36.Version),
			{Config: remote(v35), ExpectError: errorText("3.6.17 -> 3.5.36 is a downgrade outside etcd's downgrade procedure")},
			{Config: bundled(`  server_version = "3.6"` + "\n"), ExpectError: errorText("server_version pins etcd 3.6, but binary_path " + bin + " runs etcd " + cluster.BundledVersion)},
			upgradeStep(bundled(""), cluster.BundledVersion, nodes, rec.atStep(cluster.BundledVersion), rec.final),
			{Config: bundled(`  server_version = "` + cluster.BundledVersion + `"` + "\n"), ConfigStateChecks: []statecheck.StateCheck{serverVersionsAre(cluster.BundledVersion, nodes...)}},
		},
	})
}

// TestAccClusterUpgradeOntoStock37 takes a cluster born on etcd 3.5.36
// through 3.6 onto a stock etcd 3.7 given as remote_binary, with no raft
// snapshot along the way (snapshot-count 1,000,000): every member's raft log
// still holds 3.5's v2-format entries, which etcd 3.7 cannot decode. The
// rolling restart runs the provider's binary on each node between the stop
// and the start to checkpoint past them (a stock etcd does not, unlike the
// bundled server); without that the first member crash-loops. A provider
// binary the nodes cannot run is refused before anything changes. Every
// key written at a step and every acknowledged write is there at the end.
func TestAccClusterUpgradeOntoStock37(t *testing.T) {
	accCluster(t)
	v35 := stocketcd.Require(t, stocketcd.V35)
	v36 := stocketcd.Require(t, stocketcd.V36)
	v37 := stocketcd.Require(t, stocketcd.V37)
	hosts := clusterHosts(t, 3)
	// binary_path: the provider binary the nodes run as a tool (the test
	// process's own executable is not one).
	remote := func(b stocketcd.Binaries) string {
		return clusterHCL("stock37", hosts, 3, noSnapshot+"  remote_binary = "+hclString(b.Etcd)+"\n"+binaryLine(t))
	}
	nodes := []string{"n1", "n2", "n3"}
	rec := &upgradeRecord{t: t, prefix: "/stock37/"}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			versionStep(remote(v35), v35.Version, nodes, rec.atStep(v35.Version)),
			upgradeStep(remote(v36), v36.Version, nodes, rec.atStep(v36.Version)),
			{
				// A tool built for another CPU cannot checkpoint: the
				// apply refuses before anything changes (the next step
				// still plans the whole 3.6 -> 3.7 upgrade).
				Config: clusterHCL("stock37", hosts, 3, noSnapshot+"  remote_binary = "+hclString(v37.Etcd)+"\n"+
					"  binary_path = "+hclString(arm64Copy(t, clusterBinary(t)))+"\n"),
				ExpectError: regexp.MustCompile(`moving\s+onto\s+a\s+stock\s+etcd\s+3\.7[\s\S]*built\s+for\s+linux/arm64[\s\S]*the\s+node\s+is\s+linux/` + runtime.GOARCH),
			},
			upgradeStep(remote(v37), v37.Version, nodes, rec.atStep(v37.Version), rec.final),
			{Config: remote(v37), PlanOnly: true},
		},
	})
}

// TestAccClusterDowngradeProcedure: a 3.6 cluster goes back to 3.5 only
// through etcd's downgrade procedure. The plan refuses the older binary
// until `etcdctl downgrade enable 3.5` has run against the cluster; then
// one apply rolls the members onto 3.5, and the data written at 3.6 is
// still there.
func TestAccClusterDowngradeProcedure(t *testing.T) {
	accCluster(t)
	v35 := stocketcd.Require(t, stocketcd.V35)
	v36 := stocketcd.Require(t, stocketcd.V36)
	if v36.Etcdctl == "" {
		t.Skipf("skipping: etcdctl %s is not built", v36.Version)
	}
	hosts := clusterHosts(t, 3)
	remote := func(b stocketcd.Binaries) string {
		return clusterHCL("downgrade", hosts, 3, "  remote_binary = "+hclString(b.Etcd)+"\n")
	}
	nodes := []string{"n1", "n2", "n3"}
	var endpoints string
	etcdctl := func(args ...string) error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, v36.Etcdctl, append([]string{"--endpoints", endpoints}, args...)...).CombinedOutput()
		t.Logf("etcdctl %v: %s", args, out)
		if err != nil {
			return fmt.Errorf("etcdctl %v: %w: %s", args, err, out)
		}
		return nil
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			{
				Config:            remote(v36),
				ConfigStateChecks: []statecheck.StateCheck{serverVersionsAre(v36.Version, nodes...)},
				Check: resource.ComposeTestCheckFunc(checkClusterMembers(nodes...), func(s *terraform.State) error {
					a := s.RootModule().Resources["etcd_cluster.c"].Primary.Attributes
					var eps []string
					for i := range 3 {
						eps = append(eps, a[fmt.Sprintf("endpoints.%d", i)])
					}
					endpoints = strings.Join(eps, ",")
					return etcdctl("put", "/downgrade/at-3.6", "yes")
				}),
			},
			{Config: remote(v35), ExpectError: errorText("3.6.17 -> 3.5.36 is a downgrade outside etcd's downgrade procedure")},
			{
				PreConfig: func() {
					for _, args := range [][]string{{"downgrade", "validate", "3.5"}, {"downgrade", "enable", "3.5"}} {
						if err := etcdctl(args...); err != nil {
							t.Fatal(err)
						}
					}
				},
				Config:            remote(v35),
				ConfigPlanChecks:  resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{plancheck.ExpectResourceAction("etcd_cluster.c", plancheck.ResourceActionUpdate)}},
				ConfigStateChecks: []statecheck.StateCheck{serverVersionsAre(v35.Version, nodes...)},
				Check: resource.ComposeTestCheckFunc(checkClusterMembers(nodes...), func(s *terraform.State) error {
					return withClusterClient(s, 30*time.Second, func(ctx context.Context, cli *clientv3.Client) error {
						r, err := cli.Get(ctx, "/downgrade/at-3.6")
						if err != nil || len(r.Kvs) != 1 {
							return fmt.Errorf("the key written at 3.6 after the downgrade: %v %v", r, err)
						}
						return nil
					})
				}),
			},
		},
	})
}

// legacyCheckpointed checks that the bundled server on every host logged
// that it recorded a raft snapshot past the raft log's entries of etcd 3.5
// and older before etcd started (see TestAccClusterSystemdUpgrade).
func legacyCheckpointed(ctx context.Context, hosts []*sshhost.Host, name string) resource.TestCheckFunc {
	return func(*terraform.State) error {
		for _, h := range hosts {
			out, err := h.Run(ctx, "journalctl --no-pager -o cat -u etcd-"+name+".service")
			if err != nil {
				return fmt.Errorf("%s: journalctl: %v %s", h.Name, err, out)
			}
			if !strings.Contains(out, "recorded a raft snapshot at the backend's applied index") {
				return fmt.Errorf("%s: the bundled server did not log that it recorded a snapshot past the entries of etcd 3.5; its journal:\n%s", h.Name, out)
			}
		}
		return nil
	}
}

// TestAccClusterSystemdUpgrade upgrades a cluster born on etcd 3.5.36
// through 3.6 onto the bundled server, on three hosts with systemd as PID 1
// (service_manager = "systemd"), one apply per step, while the background
// writer writes. After each step every member's unit has a new main
// process that systemd started on request (active, running, NRestarts 0)
// running the step's binary, and the cluster reports the step's version,
// the units restarted one at a time; every key written at a step and every
// acknowledged write is there at the end. (TestAccClusterUpgradePath
// starts at 3.4.)
//
// etcd 3.5 writes member attributes and the cluster version to the raft
// log in the v2 format, which etcd 3.7 cannot decode; with no raft
// snapshot along the way (snapshot-count 1,000,000) they are still after
// every member's last snapshot record when the bundled server starts, and
// it must checkpoint past them (internal/server/legacywal.go): before it
// did, the first member crash-looped. A cluster born on 3.4 hides this
// most of the time: when 3.6 replays 3.4's cluster version it sees a
// downgrade and forces a snapshot.
func TestAccClusterSystemdUpgrade(t *testing.T) {
	v35 := stocketcd.Require(t, stocketcd.V35)
	v36 := stocketcd.Require(t, stocketcd.V36)
	hosts := systemdHosts(t, 3)
	const name = "sdupgrade"
	bin := binaryLine(t) + noSnapshot
	remote := func(b stocketcd.Binaries) string {
		return clusterHCL(name, hosts, 3, systemdLine+noSnapshot+"  remote_binary = "+hclString(b.Etcd)+"\n")
	}
	ctx := stepsContext(t)
	units, bundled := bundledUnitRestarts(ctx, hosts, name)
	runs := func(b stocketcd.Binaries) resource.TestCheckFunc {
		return resource.ComposeTestCheckFunc(units.restarted(func(*sshhost.Host) string { return b.Etcd }), units.inTurn)
	}
	nodes := []string{"n1", "n2", "n3"}
	rec := &upgradeRecord{t: t, prefix: "/sdupgrade/"}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: testAccProviders,
		Steps: []resource.TestStep{
			versionStep(remote(v35), v35.Version, nodes, units.record, rec.atStep(v35.Version)),
			upgradeStep(remote(v36), v36.Version, nodes, runs(v36), rec.atStep(v36.Version)),
			upgradeStep(clusterHCL(name, hosts, 3, systemdLine+bin), cluster.BundledVersion, nodes, bundled, units.inTurn, rec.atStep(cluster.BundledVersion), rec.final,
				legacyCheckpointed(ctx, hosts, name)),
			{Config: clusterHCL(name, hosts, 3, systemdLine+bin), PlanOnly: true},
		},
	})
}
