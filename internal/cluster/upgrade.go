package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/version"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/memberhost"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/membership"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/server"
)

// MinUpgradeFrom35 is the oldest etcd 3.5 release that etcd's upgrade guide
// allows to be upgraded to 3.6: "Upgrade etcd from v3.5 to v3.6", section
// "Upgrade checklists" / "Update 3.5"
// (https://etcd.io/docs/v3.6/upgrades/upgrade_3_6/#update-35). The guide
// raised it over time (3.5.20, then 3.5.24/3.5.26, now 3.5.32: 3.5.32
// adds --v2-deprecation=write-only-skip-check and makes `etcdutl check
// v2store` inspect the WAL too).
const MinUpgradeFrom35 = "3.5.32"

// MinUpgradeFrom36 is the oldest etcd 3.6 release that etcd's upgrade guide
// allows to be upgraded to 3.7 (the bundled server's minor version):
// "Upgrade etcd from v3.6 to v3.7", section "Upgrade checklists" / "Update
// 3.6" (https://etcd.io/docs/v3.7/upgrades/upgrade_3_7/): "make sure that
// all of your 3.6 members are updated to 3.6.11 or later".
const MinUpgradeFrom36 = "3.6.11"

// upgradeMinimums maps a 3.x minor version to the oldest of its patch
// releases that etcd's upgrade guide allows to be upgraded to 3.x+1. A
// minor version without an entry has no such minimum.
var upgradeMinimums = map[int]string{5: MinUpgradeFrom35, 6: MinUpgradeFrom36}

// BundledVersion is the etcd server version bundled in this provider.
var BundledVersion = version.Version

// The refusals of CheckStep. Each *StepError wraps one.
var (
	// ErrSkipsMinor: etcd supports upgrading one minor version at a time.
	ErrSkipsMinor = errors.New("skips a minor version")
	// ErrBelowUpgradeMinimum: a member below its minor version's minimum
	// patch release (MinUpgradeFrom35, MinUpgradeFrom36) cannot be upgraded
	// to the next minor version.
	ErrBelowUpgradeMinimum = errors.New("starts below the minimum patch release etcd's upgrade guide requires")
	// ErrDowngrade: a minor downgrade not done through etcd's downgrade
	// procedure.
	ErrDowngrade = errors.New("is a downgrade outside etcd's downgrade procedure")
	// ErrMajorVersion: another major version.
	ErrMajorVersion = errors.New("changes the major version")
)

// Version is an etcd release, major.minor.patch; a pre-release suffix is
// ignored.
type Version struct{ Major, Minor, Patch int }

var versionRE = regexp.MustCompile(`^v?(\d+)\.(\d+)\.(\d+)`)

// ParseVersion parses "3.5.36" (or "v3.5.36", "3.6.0-rc.1").
func ParseVersion(s string) (Version, error) {
	m := versionRE.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return Version{}, fmt.Errorf("%q is not an etcd version (major.minor.patch)", s)
	}
	var v Version
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	v.Patch, _ = strconv.Atoi(m[3])
	return v, nil
}

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// MinorString is "major.minor".
func (v Version) MinorString() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Compare returns -1, 0 or 1.
func (v Version) Compare(o Version) int {
	for _, d := range [][2]int{{v.Major, o.Major}, {v.Minor, o.Minor}, {v.Patch, o.Patch}} {
		switch {
		case d[0] < d[1]:
			return -1
		case d[0] > d[1]:
			return 1
		}
	}
	return 0
}

// StepError is a version change etcd does not support.
type StepError struct {
	From, To Version
	Err      error
	// Hint says what to do instead.
	Hint string
}

func (e *StepError) Error() string {
	return fmt.Sprintf("etcd %s -> %s %v: %s", e.From, e.To, e.Err, e.Hint)
}

func (e *StepError) Unwrap() error { return e.Err }

// CheckStep tells whether a member running from may be replaced by one
// running to, in a rolling restart of the cluster, as etcd's upgrade policy
// allows: patch releases in either direction within a minor version; one
// minor version up (from 3.5 only from MinUpgradeFrom35 on, from 3.6 only
// from MinUpgradeFrom36 on); one minor
// version down only while the cluster has a downgrade to that minor version
// enabled through etcd's downgrade procedure (downgradeTarget, as members
// of etcd 3.6+ report it; "" when none).
func CheckStep(from, to Version, downgradeTarget string) error {
	switch {
	case from.Major != to.Major:
		return &StepError{from, to, ErrMajorVersion, "etcd supports no upgrade across major versions"}
	case to.Minor > from.Minor+1:
		return &StepError{from, to, ErrSkipsMinor, fmt.Sprintf("etcd upgrades one minor version at a time; first upgrade every member to the newest %d.%d release (one apply), then to %s", from.Major, from.Minor+1, to.MinorString())}
	case to.Minor == from.Minor+1 && from.Major == 3 && upgradeMinimums[from.Minor] != "":
		least := upgradeMinimums[from.Minor]
		min, _ := ParseVersion(least)
		if from.Compare(min) < 0 {
			return &StepError{from, to, ErrBelowUpgradeMinimum, fmt.Sprintf("etcd's %s -> %s upgrade guide requires every member on %s or later first: upgrade to the newest %[1]s release (one apply), then to %[2]s",
				from.MinorString(), to.MinorString(), least)}
		}
	case to.Minor < from.Minor:
		if dt, err := ParseVersion(downgradeTarget); err == nil && dt.Major == to.Major && dt.Minor == to.Minor && from.Minor == to.Minor+1 {
			return nil
		}
		return &StepError{from, to, ErrDowngrade, fmt.Sprintf("a member's data of etcd %s cannot be served by %s. Downgrade one minor version with etcd's downgrade procedure "+
			"(etcd 3.6+): `etcdctl downgrade validate %s` and `etcdctl downgrade enable %[3]s` against the cluster, then apply with the older binary (the provider rolls the members "+
			"one at a time); `etcdctl downgrade cancel` undoes the enable if you change your mind", from.MinorString(), to.MinorString(), to.MinorString())}
	}
	return nil
}

// CheckTarget checks moving every running member (current lists each
// member's version; "" for one that does not answer) to target, as CheckStep
// does for each. The errors of distinct versions are joined.
func CheckTarget(current []string, target string, downgradeTarget string) error {
	to, err := ParseVersion(target)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	var errs []error
	for _, c := range current {
		from, err := ParseVersion(c)
		if err != nil || seen[from.String()] {
			continue
		}
		seen[from.String()] = true
		if err := CheckStep(from, to, downgradeTarget); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

var (
	stockVersionRE   = regexp.MustCompile(`(?m)^etcd Version: (\S+)`)
	bundledVersionRE = regexp.MustCompile(`etcd server (\S+?)[,)\s]`)
)

// ParseVersionOutput finds the etcd version in the output of
// `etcd --version` or `terraform-provider-etcd server --version`.
func ParseVersionOutput(out string) (string, error) {
	for _, re := range []*regexp.Regexp{stockVersionRE, bundledVersionRE} {
		if m := re.FindStringSubmatch(out); m != nil {
			if _, err := ParseVersion(m[1]); err == nil {
				return m[1], nil
			}
		}
	}
	return "", fmt.Errorf("no etcd version in %q", strings.TrimSpace(out))
}

// localVersions caches the etcd version of local binaries by path, size
// and modification time: a plan asks for it every time.
var localVersions sync.Map

// LocalBinaryVersion is the etcd version of a local terraform-provider-etcd
// binary (`<bin> server --version`); the bundled version for this very
// provider. It fails for a binary this machine cannot run (another OS or
// architecture).
func LocalBinaryVersion(ctx context.Context, bin string) (string, error) {
	if self, err := memberhost.DefaultBinary(); err == nil && self == bin {
		return BundledVersion, nil
	}
	fi, err := os.Stat(bin)
	if err != nil {
		return "", err
	}
	key := fmt.Sprintf("%s\x00%d\x00%d", bin, fi.Size(), fi.ModTime().UnixNano())
	if v, ok := localVersions.Load(key); ok {
		return v.(string), nil
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(cctx, bin, "server", "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s server --version: %w: %s", bin, err, strings.TrimSpace(string(out)))
	}
	v, err := ParseVersionOutput(string(out))
	if err != nil {
		return "", fmt.Errorf("%s server --version: %w", bin, err)
	}
	localVersions.Store(key, v)
	return v, nil
}

// BinaryVersions returns, per node name, the etcd version of the binary the
// spec runs there: `<remote_binary> --version` over SSH on every node (in
// parallel), or the uploaded binary's, the same for every node. Nothing is
// changed.
func (c *Cluster) BinaryVersions(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	if c.spec.Binary.RemotePath == "" {
		v, err := LocalBinaryVersion(ctx, c.spec.Binary.LocalPath)
		if err != nil {
			return nil, err
		}
		for _, n := range c.spec.Nodes {
			out[n.Name] = v
		}
		return out, nil
	}
	var mu sync.Mutex
	err := parallel(c.spec.Nodes, func(n Node) error {
		cl, err := c.conn(ctx, n)
		if err != nil {
			return err
		}
		res, err := cl.Run(ctx, node.Quote(c.spec.Binary.RemotePath)+" --version")
		if err != nil {
			return fmt.Errorf("remote_binary %s --version: %w", c.spec.Binary.RemotePath, err)
		}
		v, err := ParseVersionOutput(res)
		if err != nil {
			return fmt.Errorf("remote_binary %s --version: %w", c.spec.Binary.RemotePath, err)
		}
		mu.Lock()
		out[n.Name] = v
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkUpgrade refuses, before anything changes, to move the running
// members to versions CheckStep does not allow (ApplyOptions.Versions).
func (c *Cluster) checkUpgrade(ctx context.Context, h membership.Health) error {
	if len(c.versions) == 0 {
		return nil
	}
	var current []string
	downgrade := ""
	for _, m := range h.Members {
		if m.Version != "" {
			current = append(current, m.Version)
		}
		if m.DowngradeTarget != "" {
			downgrade = m.DowngradeTarget
		}
	}
	var errs []error
	seen := map[string]bool{}
	for _, n := range c.spec.Nodes {
		t := c.versions[n.Name]
		if t == "" || seen[t] {
			continue
		}
		seen[t] = true
		if err := CheckTarget(current, t, downgrade); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// downgradeTo returns the minor version a planned minor downgrade goes to:
// the lowest version planned (Versions) when it is of an older minor
// version than a member h reports running.
func (c *Cluster) downgradeTo(h membership.Health) (Version, bool) {
	var target Version
	found := false
	for _, n := range c.spec.Nodes {
		if v, err := ParseVersion(c.versions[n.Name]); err == nil && (!found || v.Compare(target) < 0) {
			target, found = v, true
		}
	}
	if !found {
		return Version{}, false
	}
	for _, m := range h.Members {
		if v, err := ParseVersion(m.Version); err == nil && v.Major == target.Major && v.Minor > target.Minor {
			return target, true
		}
	}
	return Version{}, false
}

// downgradeStorageWait bounds awaitDowngradeStorage: etcd lowers the
// storage version within seconds of `etcdctl downgrade enable`.
const downgradeStorageWait = 2 * time.Minute

// awaitDowngradeStorage waits, before a minor downgrade restarts a member
// onto the older binary, until every member still on the newer minor
// version reports its storage version lowered to the target's. etcd's
// downgrade procedure does that shortly after `etcdctl downgrade enable`
// (its leader first lowers the cluster version); a member of the older
// version started before, on data of the newer cluster version, refuses
// every request ("etcdserver: not capable") and does not recover.
func (c *Cluster) awaitDowngradeStorage(ctx context.Context, cli *clientv3.Client, h membership.Health) error {
	target, ok := c.downgradeTo(h)
	if !ok {
		return nil
	}
	deadline := time.Now().Add(downgradeStorageWait)
	for {
		var lagging []string
		for _, m := range h.Members {
			v, err := ParseVersion(m.Version)
			if err != nil || v.Major != target.Major || v.Minor <= target.Minor {
				continue // down, or already on the older version
			}
			if sv, err := ParseVersion(m.StorageVersion); err != nil || sv.Major != target.Major || sv.Minor != target.Minor {
				lagging = append(lagging, fmt.Sprintf("%s (storage version %q)", m.DisplayName(), m.StorageVersion))
			}
		}
		if len(lagging) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the downgrade to %[1]s cannot start: etcd has not lowered the storage version of %[2]s to %[3]s within %[4]s. "+
				"Check that `etcdctl downgrade enable %[3]s` ran against this cluster, wait until `etcdctl endpoint status -w json` shows "+
				"storageVersion %[3]s.0 on every member, and apply again", target, strings.Join(lagging, ", "), target.MinorString(), downgradeStorageWait)
		}
		c.progress("waiting for etcd's downgrade to lower the storage version", "members", strings.Join(lagging, ", "))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		if nh, err := membership.Probe(pctx, cli); err == nil {
			h = nh
		}
		cancel()
	}
}

// versionRestart tells whether the member of st runs another version than
// its binary (ApplyOptions.Versions): e.g. a distribution's package
// replaced remote_binary in place, which changes no file the provider
// writes.
func (c *Cluster) versionRestart(h membership.Health, st *nodeState) bool {
	want := c.versions[st.n.Name]
	if want == "" {
		return false
	}
	m, ok := h.ByPeerURL(c.spec.PeerURL(st.n))
	return ok && m.Version != "" && m.Version != want
}

// errLearnerPending: a learner blocks an upgrade until someone promotes or
// removes it.
var errLearnerPending = errors.New("a learner is pending")

// upgradeGate is what a member's restart onto another etcd version needs
// besides a quorum without it: every member healthy and no learner
// pending (a learner's catch-up and promotion would overlap the
// restart, and etcd 3.5 before 3.5.20 and 3.6 disagree on learners).
func (c *Cluster) upgradeGate(h membership.Health, st *nodeState, self membership.MemberHealth) error {
	want := c.versions[st.n.Name]
	if want == "" || self.Version == want {
		return nil
	}
	if bad := h.Unhealthy(); len(bad) > 0 {
		return fmt.Errorf("the cluster is not healthy before upgrading this member from etcd %s to %s: %s; fix the members first, then apply again",
			self.Version, want, strings.Join(bad, "; "))
	}
	for _, m := range h.Members {
		if m.IsLearner {
			return fmt.Errorf("%w: learner %s (%s): promote it (etcdctl member promote) or remove it before the members are upgraded",
				errLearnerPending, m.DisplayName(), membership.FormatID(m.ID))
		}
	}
	c.progress("upgrading member", "node", st.n.Name, "from", self.Version, "to", want)
	return nil
}

// restartedOnto tells whether a restarted member runs the version its
// binary should (always true without ApplyOptions.Versions).
func (c *Cluster) restartedOnto(st *nodeState, m membership.MemberHealth) bool {
	want := c.versions[st.n.Name]
	return want == "" || m.Version == want
}

// versionMismatch explains a restarted member that runs another version
// than its binary ("" when there is nothing to explain).
func (c *Cluster) versionMismatch(st *nodeState, m membership.MemberHealth) string {
	want := c.versions[st.n.Name]
	if want == "" || m.Version == "" || m.Version == want {
		return ""
	}
	return fmt.Sprintf(" (it reports etcd %s, but its binary is etcd %s)", m.Version, want)
}

// A member that ran etcd 3.5 or older may still hold raft entries in the v2
// format after its last snapshot record, which etcd 3.7 cannot decode (it
// crash-loops replaying them; see internal/server/legacywal.go). The
// bundled server checkpoints past them at every start. A stock etcd 3.7
// (remote_binary) does not, so its rolling upgrade from 3.6 stops the
// member, runs the provider's binary as a tool on the node
// (`server --checkpoint-wal`), and only then starts etcd 3.7.

// checkpointsWAL tells whether the restart of st moves its member from
// etcd below 3.7 onto a stock etcd 3.7 or later.
func (c *Cluster) checkpointsWAL(st *nodeState, self membership.MemberHealth) bool {
	if c.spec.Binary.RemotePath == "" {
		return false
	}
	from, err1 := ParseVersion(self.Version)
	to, err2 := ParseVersion(c.versions[st.n.Name])
	return err1 == nil && err2 == nil && from.Major == 3 && to.Major == 3 && from.Minor < 7 && to.Minor >= 7
}

// restartCheckpointed restarts st's member onto its staged files with the
// WAL checkpoint between the stop and the start. The tool is checked and
// uploaded before the member stops; once stopped, the member is started
// again whatever the checkpoint did.
func (c *Cluster) restartCheckpointed(ctx context.Context, st *nodeState) error {
	if err := c.checkpointTool(st); err != nil {
		return err
	}
	if err := c.installTool(ctx, st); err != nil {
		return err
	}
	if err := c.activateStaged(ctx, st); err != nil {
		return err
	}
	if err := st.svc.Stop(ctx); err != nil {
		return err
	}
	l := c.spec.layout(st.n)
	out, cerr := st.cl.Run(ctx, node.Quote(l.Tool)+" server --checkpoint-wal --config-file "+node.Quote(l.Config))
	if err := st.svc.Start(ctx); err != nil {
		return errors.Join(err, cerr)
	}
	if cerr != nil {
		return fmt.Errorf("checkpoint the member's raft log before etcd 3.7 starts (the member was started anyway): %w", cerr)
	}
	out = strings.TrimSpace(out)
	if !strings.HasPrefix(out, server.CheckpointReport) {
		return fmt.Errorf("checkpoint the member's raft log before etcd 3.7 starts (the member was started anyway): %s is not a terraform-provider-etcd that checkpoints (it printed %q); set binary_path to the provider's binary",
			c.spec.Binary.ToolPath, out)
	}
	c.progress("checked the raft log before etcd 3.7", "node", st.n.Name, "result", strings.TrimPrefix(out, server.CheckpointReport))
	return nil
}

// checkpointTool fails when the provider's binary cannot run on st's node
// to checkpoint its member's raft log.
func (c *Cluster) checkpointTool(st *nodeState) error {
	if err := c.checkTool(st); err != nil {
		return fmt.Errorf("moving onto a stock etcd 3.7 runs the provider binary on the node to checkpoint the member's raft log first: %w", err)
	}
	return nil
}

// checkCheckpointTools refuses, before anything changes, an upgrade onto a
// stock etcd 3.7 when the provider's binary cannot run on a node whose
// member the rolling restart would checkpoint (restartCheckpointed): that
// restart would stop there, after every node's service already named the
// new binary.
func (c *Cluster) checkCheckpointTools(states []*nodeState, h membership.Health) error {
	var errs []error
	for _, st := range states {
		if m, ok := h.ByPeerURL(c.spec.PeerURL(st.n)); ok && c.checkpointsWAL(st, m) {
			if err := c.checkpointTool(st); err != nil {
				errs = append(errs, nodeErr(st.n, err))
			}
		}
	}
	return errors.Join(errs...)
}
