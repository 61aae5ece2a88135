package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/etcdconf"
	"github.com/terraform-etcd/terraform-provider-etcd/internal/memberhost"
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
// any node: the file exists, its sha256 is the expected one, and it is
// intact (snapshot.Check: a truncated or damaged file fails here). Errors
// are *FieldError on "restore" with Field "snapshot" or "sha256".
func CheckSnapshot(src RestoreSource) error {
	return checkSnapshot("restore", src)
}

// CheckRecoverySnapshot is CheckSnapshot for the snapshot of a disaster
// recovery: its errors are *FieldError on "recovery".
func CheckRecoverySnapshot(src RestoreSource) error {
	return checkSnapshot("recovery", src)
}

func checkSnapshot(attr string, src RestoreSource) error {
	bad := func(field string, err error) error {
		return &FieldError{Attr: attr, Index: -1, Field: field, Err: err}
	}
	fi, err := os.Stat(src.Path)
	if err != nil {
		return bad("snapshot", fmt.Errorf("cannot read the snapshot file: %v", err))
	}
	if !fi.Mode().IsRegular() {
		return bad("snapshot", fmt.Errorf("%s is not a regular file", src.Path))
	}
	want := strings.ToLower(strings.TrimSpace(src.SHA256))
	// One pass over the file for its sha256 and its trailer: a gigabyte
	// costs seconds per pass.
	got, err := snapshot.Check(src.Path)
	if got == "" {
		return bad("snapshot", err)
	}
	if got != want {
		return bad("sha256", fmt.Errorf("the sha256 of %s is %s, not %s: this is not the snapshot you expected (a different "+
			"or changed file); check the path, or set sha256 to filesha256(...) of the file you mean", src.Path, got, src.SHA256))
	}
	if err != nil {
		return bad("snapshot", fmt.Errorf("the file is not an intact etcd snapshot: %v", err))
	}
	return nil
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

// restoreProbeScript is restoreDirScript plus "created:<dir>" with the
// outermost directory the snapshot's upload will create, when the install
// dir does not exist yet: the upload creates it, and it is removed again
// when the snapshot does not check out.
func restoreProbeScript(l memberhost.Layout) string {
	return restoreDirScript(l.DataDir) + fmt.Sprintf(`
d=%s; top=
while [ ! -d "$d" ] && [ "$d" != / ]; do top=$d; d=$(dirname "$d"); done
if [ -n "$top" ]; then echo "created:$top"; fi`, node.Quote(l.InstallDir))
}

// createdDir is the directory restoreProbeScript printed, "" for none.
func createdDir(out string) string {
	for _, line := range strings.Split(out, "\n") {
		if d, ok := strings.CutPrefix(strings.TrimSpace(line), "created:"); ok {
			return d
		}
	}
	return ""
}

// restoreSnapshotPath is where a node receives the snapshot it restores:
// under the install dir, never in the data dir.
func restoreSnapshotPath(l memberhost.Layout) string {
	return path.Join(l.InstallDir, "restore", "snapshot.db")
}

// Restore creates the cluster from a snapshot instead of from empty data
// dirs, with etcd's own restore on every node:
//
//   - The snapshot is checked on this machine (CheckSnapshot) while every
//     node is reached and inspected (no node's data dir may hold anything,
//     no member may run) and then, at once, while the snapshot is copied to
//     every node's <install_dir>/restore/. Nothing else changes until the
//     check passes; when it fails, the copies are removed (and the install
//     dir, when the copy created it).
//   - With remote_binary, the provider's own binary must run on every
//     node's platform (it goes to the bundled server's place as a tool
//     only) and the snapshot must be restorable for the stock server's
//     version (`<remote_binary> --version`), both checked before anything
//     changes.
//   - Every node then gets its files (config, certificates, service, the
//     bundled binary or the tool) while its snapshot copy completes; then
//     each runs the bundled binary's `snapshot restore` into its data dir
//     with the cluster's member names, peer URLs and a new initial-cluster
//     token (a new cluster ID: the restored cluster cannot mix with the one
//     the snapshot came from), for the server's version, and the snapshot
//     is deleted from the node.
//   - All members start at once and Restore waits until every one is a
//     healthy voting member.
//
// The restored cluster serves the snapshot's keys at the snapshot's
// revision.
func (c *Cluster) Restore(ctx context.Context, src RestoreSource) (*Status, error) {
	if err := c.spec.Validate(); err != nil {
		return nil, &unchangedError{err}
	}
	begin := time.Now()
	// The snapshot is checked while the nodes are reached and inspected,
	// which changes nothing either, and while it is copied to them.
	checked := make(chan error, 1)
	go func() {
		err := CheckSnapshot(src)
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
	created := map[string]string{}
	var mu sync.Mutex
	err := parallel(c.spec.Nodes, func(n Node) error {
		st, err := c.probe(ctx, n)
		if err != nil {
			return err
		}
		out, err := st.cl.Run(ctx, restoreProbeScript(c.spec.layout(n)))
		if err != nil {
			return err
		}
		for i := range c.spec.Nodes {
			if c.spec.Nodes[i].Name == n.Name {
				states[i] = st
				busy[i] = strings.HasPrefix(strings.TrimSpace(out), "busy") || st.running
			}
		}
		mu.Lock()
		created[n.Name] = createdDir(out)
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, &unchangedError{joinChecked(<-checked, err)}
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
		return nil, &unchangedError{joinChecked(<-checked, errors.Join(errs...))}
	}
	tools, err := c.restoreTools(ctx, states, "restore", "")
	if err != nil {
		return nil, &unchangedError{joinChecked(<-checked, err)}
	}

	uploads := c.uploadSnapshots(ctx, states, src)
	err = <-checked
	if err == nil {
		err = checkRestorableFor("restore", src, tools)
	}
	if err != nil {
		if cerr := c.discardSnapshots(ctx, states, uploads, created); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, &unchangedError{err}
	}

	cli, err := c.client()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	if err := c.restoreAll(ctx, cli, states, src, tools, uploads); err != nil {
		return nil, err
	}
	st, err := c.status(ctx, cli)
	if err != nil {
		return nil, err
	}
	c.progress("restored cluster ready", "took", time.Since(begin).Round(time.Millisecond).String(), "cluster_id", st.ClusterID)
	return st, nil
}

// checkRestorableFor refuses, on this machine and before anything changes,
// a checked snapshot that the stock servers of remote_binary (tools'
// target versions) cannot run: etcd restores no newer storage version for
// an older server. The bundled server's own restore checks its version.
func checkRestorableFor(attr string, src RestoreSource, tools map[string]restoreTool) error {
	seen := map[string]bool{}
	for _, t := range tools {
		if t.target == "" || seen[t.target] {
			continue
		}
		seen[t.target] = true
		v, err := snapshot.ParseVersion(t.target)
		if err == nil {
			_, err = snapshot.CheckRestorable(src.Path, v)
		}
		if err != nil {
			return &FieldError{Attr: attr, Index: -1, Field: "snapshot", Err: fmt.Errorf("remote_binary runs etcd %s: %w", t.target, err)}
		}
	}
	return nil
}

// uploadSnapshots starts copying the snapshot to every node's restore
// path; each channel gets the outcome of one node's copy.
func (c *Cluster) uploadSnapshots(ctx context.Context, states []*nodeState, src RestoreSource) map[string]<-chan error {
	begin := time.Now()
	uploads := map[string]<-chan error{}
	for _, st := range states {
		ch := make(chan error, 1)
		uploads[st.n.Name] = ch
		go func() {
			// The snapshot is copied without a sha256 pass on either
			// side: it carries its own (the trailer CheckSnapshot
			// required), which the restore verifies before it writes the
			// data dir.
			stop := c.watchdog(ctx, st.n)
			err := st.cl.CopyFile(ctx, src.Path, restoreSnapshotPath(c.spec.layout(st.n)), 0o600)
			if cause := stop(); cause != nil && err != nil {
				err = fmt.Errorf("%w (%v)", cause, err)
			}
			if err != nil {
				err = fmt.Errorf("upload the snapshot: %w", err)
			} else {
				c.progress("uploaded the snapshot", "node", st.n.Name, "took", time.Since(begin).Round(time.Millisecond).String())
			}
			ch <- err
		}()
	}
	return uploads
}

// discardSnapshots waits for the snapshot copies to end (a copy is not
// cut short, so that none is left half-written behind the cleanup), then
// removes them, their restore dir and the directories the copy created
// (created: the outermost, by node); the node is as before.
func (c *Cluster) discardSnapshots(ctx context.Context, states []*nodeState, uploads map[string]<-chan error, created map[string]string) error {
	return parallelStates(states, func(st *nodeState) error {
		if err := <-uploads[st.n.Name]; err != nil {
			// Whatever it wrote is removed below all the same.
			c.progress("snapshot copy failed while the snapshot was refused", "node", st.n.Name, "error", err.Error())
		}
		l := c.spec.layout(st.n)
		remote := restoreSnapshotPath(l)
		dir := path.Dir(remote)
		cmd := fmt.Sprintf("rm -f %s %s/.%s.tmp.*; rmdir %s 2>/dev/null", node.Quote(remote), node.Quote(dir), path.Base(remote), node.Quote(dir))
		if top := created[st.n.Name]; top != "" {
			cmd += fmt.Sprintf(`; d=%s; while rmdir "$d" 2>/dev/null && [ "$d" != %s ]; do d=$(dirname "$d"); done`, node.Quote(l.InstallDir), node.Quote(top))
		}
		if _, err := st.cl.Run(ctx, cmd+"; true"); err != nil {
			return fmt.Errorf("remove the uploaded snapshot %s: %w", remote, err)
		}
		return nil
	})
}

// restoreAll restores the snapshot into every node's data dir (each must be
// missing or empty) with etcd's own restore (tools) and a new
// initial-cluster token, then starts every member and waits until each is
// a healthy voting member. Every node gets its files (binary or tool,
// config, certificates, service) while its copy of the snapshot (uploads,
// from uploadSnapshots; started here when nil) completes; the snapshot is
// deleted from the node afterwards.
func (c *Cluster) restoreAll(ctx context.Context, cli *clientv3.Client, states []*nodeState, src RestoreSource,
	tools map[string]restoreTool, uploads map[string]<-chan error) error {
	token := fmt.Sprintf("%s-restored-%d", c.spec.Name, time.Now().UTC().Unix())
	initial := c.spec.bootstrapCluster()
	c.progress("restoring on every node", "nodes", len(states), "token", token)
	begin := time.Now()
	if uploads == nil {
		uploads = c.uploadSnapshots(ctx, states, src)
	}
	err := parallelStates(states, func(st *nodeState) error {
		f, err := c.memberFiles(st, initial, etcdconf.StateNew)
		if err != nil {
			return err
		}
		l := c.spec.layout(st.n)
		remote := restoreSnapshotPath(l)
		_, ierr := c.install(ctx, st, f, false)
		if ierr == nil {
			ierr = c.installTool(ctx, st)
		}
		if err := errors.Join(ierr, <-uploads[st.n.Name]); err != nil {
			return err
		}
		t := tools[st.n.Name]
		cmd := fmt.Sprintf("%s snapshot restore %s --data-dir %s --name %s --initial-cluster %s --initial-cluster-token %s --initial-advertise-peer-urls %s",
			node.Quote(t.bin), node.Quote(remote), node.Quote(l.DataDir), node.Quote(st.n.Name),
			node.Quote(etcdconf.InitialClusterString(initial)), node.Quote(token), node.Quote(c.spec.PeerURL(st.n)))
		if t.target != "" {
			// The stock server's version: the restore refuses a
			// snapshot of a newer etcd.
			cmd += " --target-version " + node.Quote(t.target)
		}
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
	c.progress("restored every data dir", "took", time.Since(begin).Round(time.Millisecond).String())
	if err := parallelStates(states, func(st *nodeState) error { return st.svc.Start(ctx) }); err != nil {
		return err
	}
	c.progress("started every restored member; waiting for the cluster to become healthy")
	_, err = c.waitHealthy(ctx, cli, states, false)
	return err
}
