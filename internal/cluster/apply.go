package cluster

import (
	"context"
	"errors"
	"fmt"
	"path"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/etcdconf"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/membership"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
)

// ApplyOptions changes what Apply does besides converging on the spec.
type ApplyOptions struct {
	// Remove lists nodes that were part of the cluster and are not any
	// more: their members are removed (after every node of the spec is
	// healthy), then their services stopped and their installed files
	// deleted. Their data dirs are kept unless WipeRemoved. A member of a
	// removed node that is down is removed first, before anything else
	// changes, so that a dead node can be replaced in one Apply.
	Remove      []Node
	WipeRemoved bool
	// RecoverFrom names the node to rebuild the cluster from when its
	// quorum is lost for good (see QuorumLostError and recoverFrom). It is
	// ignored while the cluster answers. Without it, a lost quorum is a
	// *QuorumLostError and nothing changes.
	RecoverFrom string
	// RecoverSnapshot, instead of RecoverFrom, rebuilds a cluster whose
	// quorum is lost from a snapshot file (see recoverSnapshot).
	RecoverSnapshot *RestoreSource
	// Existing says that the cluster ran before (an update): when no
	// member answers and no node holds member data, every member is lost
	// (a *QuorumLostError, or a recovery from RecoverSnapshot) instead of a
	// new cluster being bootstrapped.
	Existing bool
	// Versions maps node names to the etcd version their binary runs
	// (Cluster.BinaryVersions). With it, Apply refuses version changes
	// etcd does not support (CheckStep) before anything changes, restarts
	// members whose running version differs even when no file changed, and
	// gates each such restart on a healthy cluster without learners, then
	// waits until the member reports the new version (see upgrade.go).
	Versions map[string]string
}

// Apply makes the nodes run the cluster the spec describes, and is safe to
// run again at any point:
//
//   - Nothing changes until the spec is valid and every node of the spec
//     has been reached over SSH and inspected.
//   - When no member answers (a new cluster, or one whose members are all
//     stopped), every node gets its files and all members start at once; a
//     new cluster bootstraps from initial-cluster, members with data resume.
//   - Otherwise the cluster converges one member at a time: stopped members
//     are started, nodes without a member join (learner, caught up,
//     promoted), members whose binary, config or service changed are
//     restarted with a quorum check before each restart, and members of
//     removed nodes are removed. The first failure stops it.
//
// It returns the cluster's status once every node of the spec runs a
// healthy voting member.
func (c *Cluster) Apply(ctx context.Context, opts ApplyOptions) (*Status, error) {
	if err := c.spec.Validate(); err != nil {
		return nil, &unchangedError{err}
	}
	if err := (Recovery{FromNode: opts.RecoverFrom, Snapshot: opts.RecoverSnapshot}).check(c.spec); err != nil {
		return nil, &unchangedError{err}
	}
	begin := time.Now()
	c.progress("connecting to the nodes", "nodes", len(c.spec.Nodes))
	states, err := c.inspect(ctx)
	if err != nil {
		return nil, &unchangedError{err}
	}
	c.progress("inspected the nodes", "took", time.Since(begin).Round(time.Millisecond).String())

	cli, err := c.client(c.allEndpoints(opts.Remove)...)
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	c.versions = opts.Versions
	defer func() { c.versions = nil }()

	var list *membership.List
	for _, st := range states {
		// Something ran here before, or the cluster did (its members may
		// all be on nodes being removed): ask the cluster.
		if st.running || st.data.HasMember || opts.Existing {
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			l, err := membership.MemberList(lctx, cli)
			cancel()
			if err == nil {
				list = &l
			}
			break
		}
	}
	switch loss := lostQuorum(states, opts.Existing); {
	case list == nil && loss != nil && opts.RecoverSnapshot != nil:
		err = c.recoverSnapshot(ctx, cli, states, *opts.RecoverSnapshot)
	case list == nil && loss != nil && opts.RecoverFrom == "":
		return nil, &unchangedError{loss}
	case list == nil && loss != nil:
		err = c.recoverFrom(ctx, cli, states, opts.RecoverFrom)
	case list == nil:
		err = c.startAll(ctx, cli, states)
	default:
		if len(c.versions) > 0 {
			pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			h, perr := membership.Probe(pctx, cli)
			cancel()
			if perr == nil {
				if err := c.checkUpgrade(ctx, h); err != nil {
					return nil, &unchangedError{err}
				}
				if err := c.checkCheckpointTools(states, h); err != nil {
					return nil, &unchangedError{err}
				}
				if err := c.awaitDowngradeStorage(ctx, cli, h); err != nil {
					return nil, &unchangedError{err}
				}
			}
		}
		err = c.converge(ctx, cli, states, *list, opts.Remove)
	}
	if err != nil {
		return nil, err
	}
	var warnings []string
	if len(opts.Remove) > 0 {
		if warnings, err = c.removeNodes(ctx, cli, opts.Remove, opts.WipeRemoved); err != nil {
			return nil, err
		}
	}
	st, err := c.status(ctx, cli)
	if err != nil {
		return nil, err
	}
	st.Warnings = append(warnings, st.Warnings...)
	c.progress("cluster ready", "took", time.Since(begin).Round(time.Millisecond).String(), "cluster_id", st.ClusterID)
	return st, nil
}

// unchangedError is an Apply error that happened before anything was
// changed on any node.
type unchangedError struct{ err error }

func (e *unchangedError) Error() string { return e.err.Error() }
func (e *unchangedError) Unwrap() error { return e.err }

// NothingChanged tells whether err, from Apply, came before anything was
// changed on any node (invalid spec, unreachable node, failed inspection).
func NothingChanged(err error) bool {
	var u *unchangedError
	return errors.As(err, &u)
}

func (c *Cluster) allEndpoints(extra []Node) []string {
	eps := c.spec.Endpoints()
	for _, n := range extra {
		eps = append(eps, c.spec.ClientURL(n))
	}
	return eps
}

// startAll installs every member's files and starts all members at once:
// a new cluster needs a quorum running before any member is ready.
func (c *Cluster) startAll(ctx context.Context, cli *clientv3.Client, states []*nodeState) error {
	c.progress("uploading to every node", "nodes", len(states))
	begin := time.Now()
	initial := c.spec.bootstrapCluster()
	err := parallelStates(states, func(st *nodeState) error {
		f, err := c.memberFiles(st, initial, etcdconf.StateNew)
		if err != nil {
			return err
		}
		_, err = c.install(ctx, st, f, false)
		st.renewed = pkiStaged(f)
		return err
	})
	if err != nil {
		return err
	}
	c.progress("uploaded", "took", time.Since(begin).Round(time.Millisecond).String())
	if err := parallelStates(states, func(st *nodeState) error { return c.startOrRenew(ctx, st) }); err != nil {
		return err
	}
	c.progress("started every member; waiting for the cluster to become healthy")
	_, err = c.waitHealthy(ctx, cli, states, false)
	return err
}

// converge brings a running cluster to the spec, one member at a time.
func (c *Cluster) converge(ctx context.Context, cli *clientv3.Client, states []*nodeState, list membership.List, remove []Node) error {
	if removed, err := c.removeDeadMembers(ctx, cli, list, remove); err != nil {
		return err
	} else if removed {
		lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		list, err = membership.MemberList(lctx, cli)
		cancel()
		if err != nil {
			return err
		}
	}
	var stopped, joining, running []*nodeState
	for _, st := range states {
		m, ok := list.ByPeerURL(c.spec.PeerURL(st.n))
		switch {
		case !ok:
			joining = append(joining, st)
		case m.Name != "" && m.Name != st.n.Name:
			return nodeErr(st.n, fmt.Errorf("peer URL %s belongs to member %q (%s) of the cluster, not to a member named %q; a node's name cannot change: remove the node and add it under the new name", c.spec.PeerURL(st.n), m.Name, membership.FormatID(m.ID), st.n.Name))
		case st.running:
			running = append(running, st)
		default:
			stopped = append(stopped, st)
		}
	}

	// 1. Members whose process is not running (a node that was down, a
	// member that never started): their files, then start them together.
	if len(stopped) > 0 {
		err := parallelStates(stopped, func(st *nodeState) error {
			m, _ := list.ByPeerURL(c.spec.PeerURL(st.n))
			if m.Started() && !st.data.HasMember {
				return fmt.Errorf("member %s has run before, but the data dir %s holds no member data; it cannot rejoin with an empty data dir. Remove the node from nodes (which removes the member), apply, then add it back", membership.FormatID(m.ID), c.spec.layout(st.n).DataDir)
			}
			f, err := c.memberFiles(st, list.InitialCluster(m.ID, st.n.Name), etcdconf.StateExisting)
			if err != nil {
				return err
			}
			if _, err := c.install(ctx, st, f, false); err != nil {
				return err
			}
			if err := c.activateStaged(ctx, st); err != nil {
				return err
			}
			c.progress("starting member", "node", st.n.Name)
			return st.svc.Start(ctx)
		})
		if err != nil {
			return err
		}
		if _, err := c.waitHealthy(ctx, cli, append(append([]*nodeState{}, running...), stopped...), true); err != nil {
			return err
		}
	}

	// Learners of a join that was interrupted: promote them once caught up.
	for _, st := range append(append([]*nodeState{}, running...), stopped...) {
		if m, ok := list.ByPeerURL(c.spec.PeerURL(st.n)); ok && m.IsLearner {
			c.progress("promoting a learner left by an earlier run", "node", st.n.Name)
			lcli, err := c.clientWithout(st.n)
			if err != nil {
				return err
			}
			err = catchUpAndPromote(ctx, lcli, m.ID)
			lcli.Close()
			if err != nil {
				return nodeErr(st.n, fmt.Errorf("%w%s", err, logTail(ctx, st, 20)))
			}
		}
	}

	// 2. Restart running members whose files changed, or (upgrades) whose
	// running version is not their binary's, one at a time.
	var health membership.Health
	if len(c.versions) > 0 {
		pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		health, _ = membership.Probe(pctx, cli)
		cancel()
	}
	var restart []*nodeState
	err := parallelStates(running, func(st *nodeState) error {
		m, _ := list.ByPeerURL(c.spec.PeerURL(st.n))
		f, err := c.memberFiles(st, list.InitialCluster(m.ID, st.n.Name), etcdconf.StateExisting)
		if err != nil {
			return err
		}
		changed, err := c.install(ctx, st, f, true)
		if err != nil {
			return err
		}
		if changed || c.versionRestart(health, st) {
			c.mu.Lock()
			restart = append(restart, st)
			c.mu.Unlock()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(restart) > 0 {
		ordered := make([]*nodeState, 0, len(restart))
		for _, st := range running { // spec order
			for _, r := range restart {
				if r == st {
					ordered = append(ordered, st)
				}
			}
		}
		if err := c.rollingRestart(ctx, cli, ordered); err != nil {
			return err
		}
	}

	// 3. Join nodes without a member, one at a time.
	for _, st := range joining {
		if err := c.join(ctx, st); err != nil {
			return nodeErr(st.n, err)
		}
	}
	_, err = c.waitHealthy(ctx, cli, states, false)
	return err
}

// removeDeadMembers removes the members of removed nodes that do not answer,
// before the cluster is changed in any other way. A dead voting member
// counts against the quorum: with three members and one dead, a fourth
// (the dead node's replacement) would make two healthy out of four, and
// etcd refuses to add it; restarts would be refused too. Removing the dead
// member first leaves two healthy out of two, and the replacement joins as
// usual. membership.Remove refuses a removal that would cost the quorum.
// Members of removed nodes that answer are removed at the end, after the
// new nodes have joined, as before.
func (c *Cluster) removeDeadMembers(ctx context.Context, cli *clientv3.Client, list membership.List, remove []Node) (bool, error) {
	var members []membership.Member
	var nodes []Node
	for _, n := range remove {
		if m, ok := list.ByPeerURL(c.spec.PeerURL(n)); ok {
			members = append(members, m)
			nodes = append(nodes, n)
		}
	}
	if len(members) == 0 {
		return false, nil
	}
	h, err := membership.Probe(ctx, cli)
	if err != nil {
		return false, err
	}
	removed := false
	for i, m := range members {
		if mh, ok := h.ByID(m.ID); !ok || mh.Healthy {
			continue
		}
		n := nodes[i]
		c.progress("removing the member of a removed node that is down, before other changes", "node", n.Name, "id", membership.FormatID(m.ID))
		if err := membership.Remove(ctx, cli, m.ID); err != nil && !errors.Is(err, membership.ErrNotFound) {
			return removed, nodeErr(n, fmt.Errorf("member remove: %w", err))
		}
		removed = true
	}
	return removed, nil
}

// rollingRestart restarts the members one at a time. Before each restart
// every voting member must be healthy enough that the cluster keeps a quorum
// without this one, the leader is moved away from the member, and after it
// the member must be healthy and caught up again.
func (c *Cluster) rollingRestart(ctx context.Context, cli *clientv3.Client, states []*nodeState) error {
	for i, st := range states {
		c.progress("rolling restart", "node", st.n.Name, "step", fmt.Sprintf("%d/%d", i+1, len(states)))
		if err := c.restartOne(ctx, cli, st); err != nil {
			return nodeErr(st.n, fmt.Errorf("rolling restart stopped at this member (%d of %d; the members after it still run their old configuration): %w", i+1, len(states), err))
		}
	}
	return nil
}

// restartWait bounds how long a rolling restart waits, before each member,
// for the cluster to be safe to restart it in. One probe is not enough: a
// member restarted a moment ago, on a loaded host, can miss one status
// request (2 s) and answer the next.
var restartWait = 30 * time.Second

// safeToRestart probes the cluster until restarting st's member keeps a
// quorum and passes the upgrade gate, for up to restartWait; then it
// returns the last probe's refusal. A refusal that waiting cannot change
// (the member is gone, a learner is pending) returns at once.
func (c *Cluster) safeToRestart(ctx context.Context, cli *clientv3.Client, st *nodeState) (membership.Health, membership.MemberHealth, error) {
	wctx, cancel := context.WithTimeout(ctx, restartWait)
	defer cancel()
	var last error // of the last probe the wait's end did not cut short
	for {
		h, self, final, err := c.checkRestart(wctx, cli, st)
		if err == nil || final || ctx.Err() != nil {
			return h, self, err
		}
		if wctx.Err() != nil && last != nil {
			return h, self, last
		}
		if last == nil {
			c.progress("waiting for the cluster to be safe to restart this member", "node", st.n.Name, "reason", err.Error())
		}
		last = err
		select {
		case <-wctx.Done():
			return h, self, last
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// checkRestart is one probe of safeToRestart; final says that waiting
// cannot change its refusal.
func (c *Cluster) checkRestart(ctx context.Context, cli *clientv3.Client, st *nodeState) (h membership.Health, self membership.MemberHealth, final bool, err error) {
	qctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	h, err = membership.CheckQuorum(qctx, cli)
	cancel()
	if err != nil {
		return h, self, false, fmt.Errorf("quorum check before the restart: %w", err)
	}
	self, found := h.ByPeerURL(c.spec.PeerURL(st.n))
	if !found {
		return h, self, true, errors.New("its member is not in the member list any more")
	}
	if h.Voters() > 1 {
		left := h.HealthyVoters()
		if self.Healthy && !self.IsLearner {
			left--
		}
		if left < h.Quorum() {
			return h, self, false, &membership.QuorumError{Voters: h.Voters(), Healthy: left, Needed: h.Quorum(), Unhealthy: h.Unhealthy(), Action: "restart " + st.n.Name}
		}
	}
	// Last: when it passes, it logs the upgrade it lets through.
	if err := c.upgradeGate(h, st, self); err != nil {
		return h, self, errors.Is(err, errLearnerPending), err
	}
	return h, self, false, nil
}

func (c *Cluster) restartOne(ctx context.Context, cli *clientv3.Client, st *nodeState) error {
	h, self, err := c.safeToRestart(ctx, cli, st)
	if err != nil {
		return err
	}
	if h.Voters() > 1 {
		if h.Leader == self.ID {
			mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			leader, err := membership.MoveLeaderAway(mctx, cli, self.ID)
			cancel()
			if err != nil {
				return fmt.Errorf("move leadership away before the restart: %w", err)
			}
			c.progress("moved leadership away", "node", st.n.Name, "leader", membership.FormatID(leader))
		}
	}
	var leaderIndex uint64
	if lm, ok := h.ByID(h.Leader); ok {
		leaderIndex = lm.RaftIndex
	}
	if c.checkpointsWAL(st, self) {
		if err := c.restartCheckpointed(ctx, st); err != nil {
			return err
		}
	} else {
		if err := c.activateStaged(ctx, st); err != nil {
			return err
		}
		if err := st.svc.Restart(ctx); err != nil {
			return err
		}
	}
	// Healthy again and caught up with where the leader was.
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	var seen membership.MemberHealth
	var probeErr error // of the last probe that failed
	for {
		pctx, pcancel := context.WithTimeout(wctx, 5*time.Second)
		h, err := membership.Probe(pctx, cli)
		pcancel()
		if err != nil {
			probeErr = err
		} else {
			if m, ok := h.ByID(self.ID); ok {
				seen = m
			}
			if m, ok := h.ByID(self.ID); ok && m.Healthy && m.SeenLeader != 0 && m.RaftAppliedIndex >= leaderIndex && c.restartedOnto(st, m) {
				c.progress("member back after restart", "node", st.n.Name)
				return nil
			}
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("the member did not come back healthy after its restart%s (%s)%s", c.versionMismatch(st, seen), describeCatchUp(seen, leaderIndex, probeErr), logTail(ctx, st, 20))
		case <-time.After(300 * time.Millisecond):
		}
	}
}

// describeCatchUp says what the last probe of a restarted member saw,
// against what the wait for it asks: healthy, a leader known, the raft log
// applied up to leaderIndex; and the last error of a probe, if one failed.
func describeCatchUp(m membership.MemberHealth, leaderIndex uint64, probeErr error) string {
	failed := ""
	if probeErr != nil {
		failed = "; the last failed probe: " + probeErr.Error()
	}
	if m.ID == 0 {
		return "no probe reached it" + failed
	}
	why := "healthy"
	if !m.Healthy {
		why = "not healthy"
		if m.Err != nil {
			why += ": " + m.Err.Error()
		}
	}
	return fmt.Sprintf("last probe: %s, leader %s, raft index applied %d of the %d the leader had committed before the restart, version %q%s",
		why, membership.FormatID(m.SeenLeader), m.RaftAppliedIndex, leaderIndex, m.Version, failed)
}

// join adds the node's member as a learner, starts it with a clean data
// dir, waits until it has caught up and promotes it, talking to the cluster
// through the other nodes.
func (c *Cluster) join(ctx context.Context, st *nodeState) error {
	l := c.spec.layout(st.n)
	c.progress("joining node", "node", st.n.Name)
	// A process (or a supervisor waiting to restart one) of a member the
	// cluster no longer has, e.g. removed out of band: it must not start
	// again with the old configuration once the data dir is moved aside,
	// or it would bootstrap under its old member ID.
	if err := st.svc.Stop(ctx); err != nil {
		return err
	}
	if st.data.HasMember {
		// The data of a removed member would make etcd restart it under its
		// old member ID, which the cluster rejects. Keep it, out of the way.
		aside := fmt.Sprintf("%s.removed-%s", l.DataDir, time.Now().UTC().Format("20060102T150405Z"))
		if _, err := st.cl.Run(ctx, fmt.Sprintf("mv %s %s", node.Quote(l.DataDir), node.Quote(aside))); err != nil {
			return err
		}
		c.progress("moved the data dir of a former member aside", "node", st.n.Name, "path", aside)
		st.data = node.DataDirState{}
	}
	cli, err := c.clientWithout(st.n)
	if err != nil {
		return err
	}
	defer cli.Close()
	m, err := membership.AddLearner(ctx, cli, []string{c.spec.PeerURL(st.n)})
	if err != nil {
		return fmt.Errorf("member add --learner: %w", err)
	}
	c.progress("added learner", "node", st.n.Name, "id", membership.FormatID(m.ID))
	lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	list, err := membership.MemberList(lctx, cli)
	cancel()
	if err != nil {
		return err
	}
	st.conf = nil // a fresh config: state "existing" and the current members
	f, err := c.memberFiles(st, list.InitialCluster(m.ID, st.n.Name), etcdconf.StateExisting)
	if err != nil {
		return err
	}
	if _, err := c.install(ctx, st, f, false); err != nil {
		return err
	}
	if err := c.activateStaged(ctx, st); err != nil {
		return err
	}
	if err := st.svc.Start(ctx); err != nil {
		return err
	}
	if err := catchUpAndPromote(ctx, cli, m.ID); err != nil {
		return fmt.Errorf("%w%s", err, logTail(ctx, st, 20))
	}
	c.progress("promoted", "node", st.n.Name, "id", membership.FormatID(m.ID))
	return nil
}

// clientWithout is a client on every node's endpoint but n's: n's member is
// a learner, which refuses most requests ("rpc not supported for learner"),
// and a client may send a request to any of its endpoints.
func (c *Cluster) clientWithout(n Node) (*clientv3.Client, error) {
	var others []string
	for _, o := range c.spec.Nodes {
		if o.Name != n.Name {
			others = append(others, c.spec.ClientURL(o))
		}
	}
	if len(others) == 0 {
		return nil, fmt.Errorf("node %q cannot join: the spec has no other node", n.Name)
	}
	return c.client(others...)
}

// catchUpAndPromote waits (at most membership.DefaultCatchUp, however long
// the operation's timeout) for the learner to catch up, then promotes it.
func catchUpAndPromote(ctx context.Context, cli *clientv3.Client, id uint64) error {
	wctx, cancel := context.WithTimeout(ctx, membership.DefaultCatchUp)
	defer cancel()
	if err := membership.WaitCaughtUp(wctx, cli, id); err != nil {
		return err
	}
	return membership.Promote(wctx, cli, id)
}

// removeNodes removes the members of nodes from the cluster, one at a time
// and only while the rest keeps a quorum, then stops their services and
// deletes what was installed. Failing to reach a removed node after its
// member is gone is a warning, not an error: the cluster no longer needs it.
func (c *Cluster) removeNodes(ctx context.Context, cli *clientv3.Client, nodes []Node, wipe bool) ([]string, error) {
	var warnings []string
	for _, n := range nodes {
		lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		list, err := membership.MemberList(lctx, cli)
		cancel()
		if err != nil {
			return warnings, err
		}
		if m, ok := list.ByPeerURL(c.spec.PeerURL(n)); ok {
			c.progress("removing member", "node", n.Name, "id", membership.FormatID(m.ID))
			if err := membership.Remove(ctx, cli, m.ID); err != nil && !errors.Is(err, membership.ErrNotFound) {
				return warnings, nodeErr(n, fmt.Errorf("member remove: %w", err))
			}
		}
		if err := c.uninstall(ctx, n, wipe); err != nil {
			warnings = append(warnings, fmt.Sprintf("node %q (%s): its member was removed from the cluster, but its service could not be stopped and removed: %v", n.Name, n.Host, err))
		}
	}
	return warnings, nil
}

// uninstall stops n's service and deletes what was installed on n; the data
// dir only with wipe.
func (c *Cluster) uninstall(ctx context.Context, n Node, wipe bool) error {
	cl, err := c.conn(ctx, n)
	if err != nil {
		return err
	}
	svc, err := node.NewService(ctx, cl, c.spec.ServiceManager, c.spec.serviceSpec(n))
	if err != nil {
		return err
	}
	if err := svc.Remove(ctx); err != nil {
		return err
	}
	l := c.spec.layout(n)
	var rm []string
	// The bundled binary: the server, or the tool uploaded next to a
	// remote binary by a restore or a backup job.
	rm = append(rm, l.Tool, l.Tool+stagedSuffix)
	rm = append(rm, l.Config, l.Config+stagedSuffix)
	cmd := "rm -f"
	for _, p := range rm {
		cmd += " " + node.Quote(p)
	}
	cmd += fmt.Sprintf(" && rm -rf %s %s", node.Quote(l.PKIDir), node.Quote(l.RunDir))
	// The directories the provider made, if nothing else is in them.
	cmd += fmt.Sprintf(" && rmdir %s %s %s 2>/dev/null; true", node.Quote(path.Join(l.InstallDir, "bin")), node.Quote(path.Join(l.InstallDir, "etc")), node.Quote(l.InstallDir))
	if _, err := cl.Run(ctx, cmd); err != nil {
		return err
	}
	if wipe {
		if err := node.RemoveDir(ctx, cl, l.DataDir); err != nil {
			return err
		}
	}
	return nil
}

// Destroy stops every member and removes what was installed, in parallel.
// Data dirs are kept unless wipe. Every node must be reachable.
func (c *Cluster) Destroy(ctx context.Context, wipe bool) error {
	if err := c.Connect(ctx); err != nil {
		return err
	}
	c.progress("stopping every member and removing the installed files", "wipe_data", wipe)
	return parallel(c.spec.Nodes, func(n Node) error { return c.uninstall(ctx, n, wipe) })
}
