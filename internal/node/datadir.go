package node

import (
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// ErrUnsafePath is returned for a directory too close to the root to be
// wiped.
var ErrUnsafePath = errors.New("refusing to remove a top-level or relative path")

// DataDirState describes an etcd data dir on a node.
type DataDirState struct {
	// Exists: the directory exists.
	Exists bool
	// HasMember: it holds a member (member/wal or member/snap), i.e. etcd
	// started there before. Such a member restarts with its old member ID
	// and ignores initial-cluster; a member that is being added (again)
	// must start from a directory without one.
	HasMember bool
}

// DataDirScript is a shell script that inspects the data dir dir; its
// output is ParseDataDir's input. Callers that batch several checks into
// one SSH session run it as part of theirs.
func DataDirScript(dir string) string {
	return fmt.Sprintf(`d=%s
if [ -d "$d" ]; then echo exists; fi
if [ -d "$d/member/wal" ] || [ -d "$d/member/snap" ]; then echo member; fi
`, Quote(dir))
}

// ParseDataDir reads the output of DataDirScript.
func ParseDataDir(out string) DataDirState {
	lines := strings.Fields(out)
	return DataDirState{Exists: slices.Contains(lines, "exists"), HasMember: slices.Contains(lines, "member")}
}

// InspectDataDir reports the state of an etcd data dir.
func InspectDataDir(ctx context.Context, r Runner, dir string) (DataDirState, error) {
	out, err := r.Run(ctx, DataDirScript(dir))
	if err != nil {
		return DataDirState{}, err
	}
	return ParseDataDir(out), nil
}

// RemoveDir deletes dir and everything in it (e.g. a stale data dir before a
// member is re-added). It refuses relative paths and paths with fewer than
// two components ("/", "/var").
func RemoveDir(ctx context.Context, r Runner, dir string) error {
	clean := path.Clean(dir)
	if !DeepPath(clean) {
		return fmt.Errorf("%s: remove %q: %w", r.Target(), dir, ErrUnsafePath)
	}
	_, err := r.Run(ctx, "rm -rf -- "+Quote(clean))
	return err
}

// DeepPath tells whether dir is an absolute path at least two levels deep
// ("/var/lib", not "/" or "/var"): what a data or install dir must be, so
// that removing it can never take a system directory with it.
func DeepPath(dir string) bool {
	clean := path.Clean(dir)
	return path.IsAbs(dir) && strings.Count(strings.Trim(clean, "/"), "/") >= 1
}
