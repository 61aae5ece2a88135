package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/etcdconf"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/memberhost"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/membership"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
)

// ErrQuorumLost is wrapped by *QuorumLostError.
var ErrQuorumLost = errors.New("the cluster has lost its quorum")

// QuorumLostError says that the cluster cannot come back by itself: no
// member answers, and fewer than a quorum of the nodes still hold member
// data (the others' data dirs are gone: hosts replaced, disks lost).
// Starting what is left would not elect a leader, and starting empty
// members from initial-cluster would make a second cluster with the same
// identity. Only a recovery from a survivor (ApplyOptions.RecoverFrom)
// brings it back.
type QuorumLostError struct {
	// Survivors are the nodes whose data dir holds member data.
	Survivors []string
	// Dead are the nodes whose data dir holds none.
	Dead []string
}

func (e *QuorumLostError) Error() string {
	if len(e.Survivors) == 0 {
		return fmt.Sprintf("%v: no member answers, and none of the %d nodes holds member data (the data dirs of %s hold none); "+
			"no member is left to rebuild the cluster from, only a snapshot", ErrQuorumLost, len(e.Dead), strings.Join(e.Dead, ", "))
	}
	return fmt.Sprintf("%v: no member answers, and only %d of %d nodes hold member data (%s); the members of %s are gone "+
		"(their data dirs hold no member data), so the cluster cannot elect a leader again",
		ErrQuorumLost, len(e.Survivors), len(e.Survivors)+len(e.Dead), strings.Join(e.Survivors, ", "), strings.Join(e.Dead, ", "))
}

func (e *QuorumLostError) Unwrap() error { return ErrQuorumLost }

// lostQuorum tells from the inspected nodes whether the cluster's quorum is
// lost for good: some nodes hold member data, but fewer than a majority.
// With a majority, starting the members brings it back. With no data
// anywhere it is a new cluster, unless existing says that the cluster ran
// before: then every member is lost (starting the nodes would bootstrap an
// empty cluster under the old one's name).
func lostQuorum(states []*nodeState, existing bool) *QuorumLostError {
	e := &QuorumLostError{}
	for _, st := range states {
		if st.data.HasMember {
			e.Survivors = append(e.Survivors, st.n.Name)
		} else {
			e.Dead = append(e.Dead, st.n.Name)
		}
	}
	if len(e.Survivors) == 0 && !existing || len(e.Survivors) >= len(states)/2+1 {
		return nil
	}
	return e
}

// Recovery says how to rebuild a cluster that lost its quorum for good:
// from the data of a surviving member (FromNode) or from a snapshot file
// (Snapshot). At most one is set; neither means no recovery.
type Recovery struct {
	FromNode string
	Snapshot *RestoreSource
}

// check refuses both sources at once and a FromNode that is not a node.
func (r Recovery) check(s Spec) error {
	if r.FromNode != "" && r.Snapshot != nil {
		return &FieldError{Attr: "recovery", Index: -1, Err: errors.New(
			"set either from_node (rebuild from a surviving member's data) or snapshot and sha256 (rebuild from a snapshot file), not both")}
	}
	if r.FromNode != "" {
		if _, ok := s.Node(r.FromNode); !ok {
			return fromNodeError(r.FromNode, "is not one of the nodes")
		}
	}
	return nil
}

// CheckQuorum is the plan-time check of a cluster. It returns a
// *QuorumLostError when the member list cannot be read and the nodes' data
// dirs (inspected over SSH, nothing changed) show that the quorum is lost
// for good (fewer than a majority hold member data; none, when ranBefore
// says that the cluster has run), nil when the cluster answers or nothing can be told (err says
// why). A recovery r is checked against it: FromNode must be a node, and,
// when the quorum is lost, one whose data dir holds member data; a
// Snapshot must check out (CheckRecoverySnapshot) when the quorum is lost.
// Otherwise err is a *FieldError on recovery.
func (c *Cluster) CheckQuorum(ctx context.Context, r Recovery, ranBefore bool) (*QuorumLostError, error) {
	if err := r.check(c.spec); err != nil {
		return nil, err
	}
	recoverFrom := r.FromNode
	cli, err := c.client()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = membership.MemberList(lctx, cli)
	cancel()
	if err == nil {
		return nil, nil
	}
	states, err := c.inspect(ctx)
	if err != nil {
		return nil, err
	}
	loss := lostQuorum(states, ranBefore)
	if loss != nil && r.Snapshot != nil {
		if err := CheckRecoverySnapshot(*r.Snapshot); err != nil {
			return loss, err
		}
		tools, err := c.restoreTools(ctx, states, "recovery", "snapshot")
		if err != nil {
			return loss, err
		}
		return loss, checkRestorableFor("recovery", *r.Snapshot, tools)
	}
	if loss == nil || recoverFrom == "" {
		return loss, nil
	}
	for _, st := range states {
		if st.n.Name == recoverFrom && !st.data.HasMember {
			if len(loss.Survivors) == 0 {
				return loss, fromNodeError(recoverFrom, fmt.Sprintf("has an empty data dir (%s holds no member data), and so has every "+
					"other node: recover from a snapshot instead (recovery = { snapshot = ..., sha256 = ... })", c.spec.layout(st.n).DataDir))
			}
			return loss, fromNodeError(recoverFrom, fmt.Sprintf("has an empty data dir (%s holds no member data): recover from a node that "+
				"still has its data (%s)", c.spec.layout(st.n).DataDir, strings.Join(loss.Survivors, ", ")))
		}
	}
	return loss, nil
}

// recoverSnapshot rebuilds a cluster that lost its quorum from a snapshot
// file, the way etcd documents a restore: nothing changes until the file
// checks out (CheckRecoverySnapshot); then every member is stopped, every
// data dir that holds anything is moved aside (never deleted: a survivor's
// newer data stays on the node), and every member's data dir is restored
// from the snapshot with a new initial-cluster token (a new cluster ID),
// as Restore does at create. With remote_binary, the provider's binary
// must run on every node (as a tool) and the snapshot must suit the stock
// server's version, also checked before anything changes. The cluster then
// serves the snapshot's keys at their revisions; writes after the snapshot
// are gone.
func (c *Cluster) recoverSnapshot(ctx context.Context, cli *clientv3.Client, states []*nodeState, src RestoreSource) error {
	begin := time.Now()
	if err := CheckRecoverySnapshot(src); err != nil {
		return &unchangedError{err}
	}
	tools, err := c.restoreTools(ctx, states, "recovery", "snapshot")
	if err == nil {
		err = checkRestorableFor("recovery", src, tools)
	}
	if err != nil {
		return &unchangedError{err}
	}
	c.progress("disaster recovery from a snapshot: stopping every member", "snapshot", src.Path)
	if err := parallelStates(states, func(st *nodeState) error { return st.svc.Stop(ctx) }); err != nil {
		return err
	}
	stamp := time.Now().UTC().Format("20060102T150405Z")
	err = parallelStates(states, func(st *nodeState) error {
		l := c.spec.layout(st.n)
		out, err := st.cl.Run(ctx, restoreDirScript(l.DataDir))
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) == "busy" {
			aside := fmt.Sprintf("%s.before-recovery-%s", l.DataDir, stamp)
			if _, err := st.cl.Run(ctx, fmt.Sprintf("mv %s %s", node.Quote(l.DataDir), node.Quote(aside))); err != nil {
				return err
			}
			c.progress("moved the data dir aside before the restore", "node", st.n.Name, "path", aside)
		}
		st.data = node.DataDirState{}
		st.running = false
		return nil
	})
	if err != nil {
		return err
	}
	if err := c.restoreAll(ctx, cli, states, src, tools, nil); err != nil {
		return err
	}
	c.progress("disaster recovery from a snapshot done", "took", time.Since(begin).Round(time.Millisecond).String())
	return nil
}

func fromNodeError(name, why string) error {
	return &FieldError{Attr: "recovery", Index: -1, Field: "from_node", Err: fmt.Errorf("node %q %s", name, why)}
}

// inspect connects to every node and probes it, changing nothing.
func (c *Cluster) inspect(ctx context.Context) ([]*nodeState, error) {
	if err := c.Connect(ctx); err != nil {
		return nil, err
	}
	states := make([]*nodeState, len(c.spec.Nodes))
	err := parallel(c.spec.Nodes, func(n Node) error {
		st, err := c.probe(ctx, n)
		if err != nil {
			return err
		}
		for i := range c.spec.Nodes {
			if c.spec.Nodes[i].Name == n.Name {
				states[i] = st
			}
		}
		return nil
	})
	return states, err
}

// forceNewClusterLine turns a member's config file into one that starts it
// with etcd's force-new-cluster: the member keeps its data and becomes the
// only member of its cluster. The key is one the resource manages (never in
// settings), so the line is never a duplicate.
const forceNewClusterLine = "# disaster recovery, removed once the member runs\nforce-new-cluster: true\n"

// recoverFrom rebuilds a cluster that lost its quorum from the data of one
// survivor, the way etcd documents it: every other member is stopped; the
// survivor restarts once with force-new-cluster (it keeps its data and
// becomes a one-member cluster), then again with its usual config file;
// then every other node joins as a new member (learner, caught up,
// promoted), its old data dir, if any, moved aside.
func (c *Cluster) recoverFrom(ctx context.Context, cli *clientv3.Client, states []*nodeState, from string) error {
	var src *nodeState
	var others []*nodeState
	for _, st := range states {
		if st.n.Name == from {
			src = st
		} else {
			others = append(others, st)
		}
	}
	if src == nil {
		return &unchangedError{fromNodeError(from, "is not one of the nodes")}
	}
	if !src.data.HasMember {
		return &unchangedError{fromNodeError(from, fmt.Sprintf("has an empty data dir (%s holds no member data): recover from a node that still has its data", c.spec.layout(src.n).DataDir))}
	}
	begin := time.Now()
	c.progress("disaster recovery: stopping the other members", "from_node", from)
	if err := parallelStates(others, func(st *nodeState) error { return st.svc.Stop(ctx) }); err != nil {
		return err
	}
	f, err := c.memberFiles(src, c.spec.bootstrapCluster(), etcdconf.StateNew)
	if err != nil {
		return nodeErr(src.n, err)
	}
	forced := append(append([]byte{}, f.config...), forceNewClusterLine...)
	if _, err := c.install(ctx, src, files{config: forced, pki: f.pki}, false); err != nil {
		return nodeErr(src.n, err)
	}
	c.progress("disaster recovery: restarting the survivor with force-new-cluster", "node", from)
	if err := src.svc.Restart(ctx); err != nil {
		return nodeErr(src.n, err)
	}
	if _, err := c.waitHealthy(ctx, cli, []*nodeState{src}, false); err != nil {
		return nodeErr(src.n, fmt.Errorf("the survivor did not come up with force-new-cluster: %w", err))
	}
	// The usual config file: force-new-cluster must not stay, or every
	// later restart would cut the member off from the others again.
	src.files["config"] = forced
	if _, err := c.install(ctx, src, files{config: f.config}, false); err != nil {
		return nodeErr(src.n, err)
	}
	src.files["config"] = f.config
	if err := src.svc.Restart(ctx); err != nil {
		return nodeErr(src.n, err)
	}
	if _, err := c.waitHealthy(ctx, cli, []*nodeState{src}, false); err != nil {
		return nodeErr(src.n, fmt.Errorf("the survivor did not come back after force-new-cluster: %w", err))
	}
	src.running = true
	src.certsValid = src.certsValid || len(f.pki) > 0
	if ca, ok := f.pki[memberhost.CAFile]; ok {
		src.files[memberhost.CAFile] = ca
	}
	c.progress("disaster recovery: the survivor runs a one-member cluster; adding the other nodes", "node", from,
		"took", time.Since(begin).Round(time.Millisecond).String())
	lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	list, err := membership.MemberList(lctx, cli)
	cancel()
	if err != nil {
		return err
	}
	for _, st := range others {
		st.running = false
	}
	if err := c.converge(ctx, cli, states, list, nil); err != nil {
		return err
	}
	c.progress("disaster recovery done", "took", time.Since(begin).Round(time.Millisecond).String())
	return nil
}
