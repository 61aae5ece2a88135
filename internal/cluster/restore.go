package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/etcdconf"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/snapshot"
)

// RestoreSource is a snapshot file on this machine that a new cluster starts
// from (etcd_cluster's restore attribute).
type RestoreSource struct {
	// Path of the snapshot file (from `snapshot save`, etcdctl's or ours).
	Path string
	// SHA256 is the hexadecimal sha256 of the whole file, as the user
	// expects it to be.
	SHA256 string
}

// CheckSnapshot checks a restore source on this machine, without touching
// any node: the file exists, its sha256 is the expected one, and etcd's
// snapshot status reads it (a truncated or damaged file fails here). It
// returns the snapshot's status. Errors are *FieldError on "restore" with
// Field "snapshot" or "sha256".
func CheckSnapshot(src RestoreSource) (snapshot.Status, error) {
	return checkSnapshot("restore", src)
}

// CheckRecoverySnapshot is CheckSnapshot for the snapshot of a disaster
// recovery: its errors are *FieldError on "recovery".
func CheckRecoverySnapshot(src RestoreSource) (snapshot.Status, error) {
	return checkSnapshot("recovery", src)
}

func checkSnapshot(attr string, src RestoreSource) (snapshot.Status, error) {
	bad := func(field string, err error) (snapshot.Status, error) {
		return snapshot.Status{}, &FieldError{Attr: attr, Index: -1, Field: field, Err: err}
	}
	fi, err := os.Stat(src.Path)
	if err != nil {
		return bad("snapshot", fmt.Errorf("cannot read the snapshot file: %v", err))
	}
	if !fi.Mode().IsRegular() {
		return bad("snapshot", fmt.Errorf("%s is not a regular file", src.Path))
	}
	want := strings.ToLower(strings.TrimSpace(src.SHA256))
	// One pass over the file for its sha256, its trailer and etcd's
	// status: a gigabyte costs seconds per pass.
	st, got, err := snapshot.Inspect(src.Path)
	if got == "" {
		return bad("snapshot", err)
	}
	if got != want {
		return bad("sha256", fmt.Errorf("the sha256 of %s is %s, not %s: this is not the snapshot you expected (a different "+
			"or changed file); check the path, or set sha256 to filesha256(...) of the file you mean", src.Path, got, src.SHA256))
	}
	if err != nil {
		return bad("snapshot", fmt.Errorf("etcd's snapshot status refuses the file: %v", err))
	}
	return st, nil
}

// joinChecked is the snapshot check's error and that of inspecting the
// nodes, either alone when the other is nil.
func joinChecked(check, nodes error) error {
	switch {
	case check == nil:
		return nodes
	case nodes == nil:
		return check
	}
	return errors.Join(check, nodes)
}

// restoreDirScript prints "busy" when the data dir exists and holds
// anything: etcd's restore needs a missing or empty directory.
func restoreDirScript(dir string) string {
	return fmt.Sprintf(`d=%s; if [ -d "$d" ] && [ -n "$(ls -A "$d" 2>/dev/null)" ]; then echo busy; fi`, node.Quote(dir))
}

// Restore creates the cluster from a snapshot instead of from empty data
// dirs, with etcd's own restore on every node:
//
//   - Nothing changes until the snapshot checks out (CheckSnapshot), the
//     spec is valid, every node has been reached and no node's data dir
//     holds anything and no member runs.
//   - Every node gets its files (binary, config, certificates, service) and
//     the snapshot, in parallel; then each runs the bundled binary's
//     `snapshot restore` into its data dir with the cluster's member names,
//     peer URLs and a new initial-cluster token (a new cluster ID: the
//     restored cluster cannot mix with the one the snapshot came from), and
//     the snapshot is deleted from the node.
//   - All members start at once and Restore waits until every one is a
//     healthy voting member.
//
// The restored cluster serves the snapshot's keys at the snapshot's
// revision.
func (c *Cluster) Restore(ctx context.Context, src RestoreSource) (*Status, error) {
	if err := c.spec.Validate(); err != nil {
		return nil, &unchangedError{err}
	}
	if c.spec.Binary.RemotePath != "" {
		return nil, &unchangedError{&FieldError{Attr: "restore", Index: -1, Err: errors.New(
			"a restore runs etcd's restore through the bundled binary on every node, and remote_binary uploads none: " +
				"create the cluster from the snapshot without remote_binary (the bundled server, or binary_path)")}}
	}
	begin := time.Now()
	// The snapshot is checked while the nodes are reached and inspected,
	// which changes nothing either.
	checked := make(chan error, 1)
	go func() {
		_, err := CheckSnapshot(src)
		if err == nil {
			c.progress("checked the snapshot", "path", src.Path, "took", time.Since(begin).Round(time.Millisecond).String())
		}
		checked <- err
	}()
	if err := c.Connect(ctx); err != nil {
		return nil, &unchangedError{joinChecked(<-checked, err)}
	}
	states := make([]*nodeState, len(c.spec.Nodes))
	busy := make([]bool, len(c.spec.Nodes))
	err := parallel(c.spec.Nodes, func(n Node) error {
		st, err := c.probe(ctx, n)
		if err != nil {
			return err
		}
		out, err := st.cl.Run(ctx, restoreDirScript(c.spec.layout(n).DataDir))
		if err != nil {
			return err
		}
		for i := range c.spec.Nodes {
			if c.spec.Nodes[i].Name == n.Name {
				states[i] = st
				busy[i] = strings.TrimSpace(out) == "busy" || st.running
			}
		}
		return nil
	})
	if err := joinChecked(<-checked, err); err != nil {
		return nil, &unchangedError{err}
	}
	var errs []error
	for i, st := range states {
		if busy[i] {
			what := "holds data"
			if st.running {
				what = "is in use by a running member"
			}
			errs = append(errs, &FieldError{Attr: "restore", Index: -1, Err: fmt.Errorf(
				"node %q (%s): the data dir %s %s; a restore creates every member's data dir from the snapshot and never "+
					"overwrites one. Delete or move the data dir on the node (after making sure it is not needed), or restore onto other nodes",
				st.n.Name, st.n.Host, c.spec.layout(st.n).DataDir, what)})
		}
	}
	if len(errs) > 0 {
		return nil, &unchangedError{errors.Join(errs...)}
	}

	cli, err := c.client()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	if err := c.restoreAll(ctx, cli, states, src); err != nil {
		return nil, err
	}
	st, err := c.status(ctx, cli)
	if err != nil {
		return nil, err
	}
	c.progress("restored cluster ready", "took", time.Since(begin).Round(time.Millisecond).String(), "cluster_id", st.ClusterID)
	return st, nil
}

// restoreAll restores the snapshot into every node's data dir (each must be
// missing or empty) with etcd's own restore and a new initial-cluster token,
// then starts every member and waits until each is a healthy voting member.
// Every node gets its files (binary, config, certificates, service) and the
// snapshot in parallel; the snapshot is deleted from the node afterwards.
func (c *Cluster) restoreAll(ctx context.Context, cli *clientv3.Client, states []*nodeState, src RestoreSource) error {
	token := fmt.Sprintf("%s-restored-%d", c.spec.Name, time.Now().UTC().Unix())
	initial := c.spec.bootstrapCluster()
	c.progress("restoring on every node", "nodes", len(states), "token", token)
	upload := time.Now()
	err := parallelStates(states, func(st *nodeState) error {
		f, err := c.memberFiles(st, initial, etcdconf.StateNew)
		if err != nil {
			return err
		}
		l := c.spec.layout(st.n)
		remote := path.Join(l.InstallDir, "restore", "snapshot.db")
		// The member's files and the snapshot go up at once, in two
		// sessions of the node's connection. The snapshot is copied
		// without a sha256 pass on either side: it carries its own (the
		// trailer CheckSnapshot required), which the restore below
		// verifies before it writes the data dir.
		uploaded := make(chan error, 1)
		go func() {
			stop := c.watchdog(ctx, st.n)
			err := st.cl.CopyFile(ctx, src.Path, remote, 0o600)
			if cause := stop(); cause != nil && err != nil {
				err = fmt.Errorf("%w (%v)", cause, err)
			}
			if err != nil {
				err = fmt.Errorf("upload the snapshot: %w", err)
			}
			uploaded <- err
		}()
		_, ierr := c.install(ctx, st, f, false)
		if err := errors.Join(ierr, <-uploaded); err != nil {
			return err
		}
		c.progress("uploaded the snapshot", "node", st.n.Name, "took", time.Since(upload).Round(time.Millisecond).String())
		cmd := fmt.Sprintf("%s snapshot restore %s --data-dir %s --name %s --initial-cluster %s --initial-cluster-token %s --initial-advertise-peer-urls %s",
			node.Quote(l.Binary), node.Quote(remote), node.Quote(l.DataDir), node.Quote(st.n.Name),
			node.Quote(etcdconf.InitialClusterString(initial)), node.Quote(token), node.Quote(c.spec.PeerURL(st.n)))
		// The bundled binary's restore checks the snapshot's sha256
		// trailer first (no --skip-hash-check): a copy that arrived damaged
		// is refused before the data dir is written.
		restoring := time.Now()
		_, rerr := st.cl.Run(ctx, cmd+"; rc=$?; rm -f "+node.Quote(remote)+"; rmdir "+node.Quote(path.Dir(remote))+" 2>/dev/null; exit $rc")
		if rerr != nil {
			return fmt.Errorf("snapshot restore: %w", rerr)
		}
		c.progress("restored the data dir", "node", st.n.Name, "took", time.Since(restoring).Round(time.Millisecond).String())
		return nil
	})
	if err != nil {
		return err
	}
	c.progress("restored every data dir", "took", time.Since(upload).Round(time.Millisecond).String())
	if err := parallelStates(states, func(st *nodeState) error { return st.svc.Start(ctx) }); err != nil {
		return err
	}
	c.progress("started every restored member; waiting for the cluster to become healthy")
	_, err = c.waitHealthy(ctx, cli, states, false)
	return err
}
