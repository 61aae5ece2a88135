package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/node"
)

// With remote_binary the member runs a stock etcd, but a restore (and a
// recovery from a snapshot) still needs etcd's restore on every node. The
// provider's own binary goes to the place of the bundled server
// (memberhost.Layout.Tool) as a tool only: it runs `snapshot restore
// --target-version <the stock server's version>`, never the member.

// restoreTool is how one node restores a snapshot: the binary that runs
// `snapshot restore` and the etcd version the data dir is restored for
// ("" for the bundled server: its own version).
type restoreTool struct {
	bin    string
	target string
}

// restoreTools returns the restore tool of every state, changing nothing.
// With remote_binary it checks that the provider's binary (Binary.ToolPath)
// runs on each node's platform and reads the version of the stock server
// (`<remote_binary> --version`). Errors are *FieldError on attr (field, if
// set), naming the node.
func (c *Cluster) restoreTools(ctx context.Context, states []*nodeState, attr, field string) (map[string]restoreTool, error) {
	tools := map[string]restoreTool{}
	if c.spec.Binary.RemotePath == "" {
		for _, st := range states {
			tools[st.n.Name] = restoreTool{bin: c.spec.layout(st.n).Binary}
		}
		return tools, nil
	}
	bad := func(st *nodeState, err error) error {
		return &FieldError{Attr: attr, Index: -1, Field: field, Err: fmt.Errorf("node %q (%s): %w", st.n.Name, st.n.Host, err)}
	}
	var mu sync.Mutex
	var errs []error
	for _, st := range states {
		if err := c.checkTool(st); err != nil {
			errs = append(errs, bad(st, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	err := parallelStates(states, func(st *nodeState) error {
		out, err := st.cl.Run(ctx, node.Quote(c.spec.Binary.RemotePath)+" --version")
		if err != nil {
			return bad(st, fmt.Errorf("remote_binary %s --version: %w", c.spec.Binary.RemotePath, err))
		}
		v, err := ParseVersionOutput(out)
		if err != nil {
			return bad(st, fmt.Errorf("remote_binary %s --version: %w", c.spec.Binary.RemotePath, err))
		}
		mu.Lock()
		tools[st.n.Name] = restoreTool{bin: c.spec.layout(st.n).Tool, target: v}
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	return tools, nil
}

// checkTool fails when the provider's binary, uploaded as a tool next to
// remote_binary, cannot run on st's platform.
func (c *Cluster) checkTool(st *nodeState) error {
	return CheckTool(c.spec.Binary.ToolPath, st.platform, st.platformErr)
}

// CheckTool fails when tool, the provider's binary uploaded as a tool next
// to remote_binary, cannot run on a node of platform p (platformErr: the
// node's uname was not understood).
func CheckTool(tool string, p node.Platform, platformErr error) error {
	if tool == "" {
		return errors.New("with remote_binary this runs the provider's own binary on the node as a tool, and the provider " +
			"cannot tell where its executable is")
	}
	if platformErr != nil {
		return fmt.Errorf("with remote_binary this runs the provider's own binary on the node as a tool, and the node's "+
			"platform is not one it knows: %v", platformErr)
	}
	if want, ok := node.BinaryPlatform(tool); ok && want != p {
		return fmt.Errorf("with remote_binary this runs the provider's own binary (%s, built for %s) on the node as a tool, "+
			"and the node is %s: run Terraform with a provider build for %s, or leave out remote_binary and set binary_path "+
			"to a provider build for the node", tool, want, p, p)
	}
	return nil
}

// installTool uploads the provider's binary as a tool next to remote_binary
// (unchanged files are not sent again); nothing for the bundled server,
// which install uploads.
func (c *Cluster) installTool(ctx context.Context, st *nodeState) error {
	if c.spec.Binary.RemotePath == "" {
		return nil
	}
	sum, err := c.binarySHA256()
	if err != nil {
		return err
	}
	begin := time.Now()
	l := c.spec.layout(st.n)
	up, err := st.cl.UploadFileSum(ctx, c.spec.Binary.ToolPath, sum, l.Tool, 0o755)
	if err != nil {
		return fmt.Errorf("upload the provider binary as a tool: %w", err)
	}
	if up {
		c.progress("uploaded the provider binary as a tool", "node", st.n.Name, "path", l.Tool, "took", time.Since(begin).Round(time.Millisecond).String())
	}
	return nil
}
