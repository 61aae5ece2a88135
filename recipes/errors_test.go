package recipes

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// Every exported Err* variable of the package is in the one list of
// sentinels, so etcdErr passes it through and no retry loop retries it.
func TestEverySentinelIsKnown(t *testing.T) {
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	known := map[string]bool{}
	for _, s := range sentinels {
		known[s.Error()] = true
	}
	exported := map[string]error{
		"ErrLocked": ErrLocked, "ErrNotHeld": ErrNotHeld, "ErrLockLost": ErrLockLost,
		"ErrLeadershipLost": ErrLeadershipLost, "ErrSessionExpired": ErrSessionExpired,
		"ErrNoLeader": ErrNoLeader, "ErrInvalidArgument": ErrInvalidArgument,
		"ErrClaimLost": ErrClaimLost, "ErrBarrierHeld": ErrBarrierHeld,
		"ErrBarrierAbandoned": ErrBarrierAbandoned, "ErrBarrierFull": ErrBarrierFull,
		"ErrNotEntered": ErrNotEntered, "ErrEtcd": ErrEtcd,
		"ErrLeaseDeadline": ErrLeaseDeadline, "ErrLeaderStuck": ErrLeaderStuck,
		"ErrMarginTooLarge": ErrMarginTooLarge, "ErrTokenMismatch": ErrTokenMismatch,
		"ErrSamePrefix": ErrSamePrefix, "ErrMixedSessions": ErrMixedSessions, "ErrNilFunc": ErrNilFunc,
		"ErrClosed": ErrClosed, "ErrNotNumber": ErrNotNumber, "ErrMemberExists": ErrMemberExists,
		"ErrInvalidDelay": ErrInvalidDelay, "ErrVisibilityTimeout": ErrVisibilityTimeout, "ErrBatchSize": ErrBatchSize,
	}
	n := 0
	for _, f := range files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				for _, name := range spec.(*ast.ValueSpec).Names {
					if !name.IsExported() || !strings.HasPrefix(name.Name, "Err") {
						continue
					}
					n++
					if fset.File(name.Pos()).Name() != "errors.go" {
						t.Errorf("%s is declared in %s, want errors.go", name.Name, fset.File(name.Pos()).Name())
					}
					s, ok := exported[name.Name]
					if !ok {
						t.Errorf("%s is not listed in this test", name.Name)
						continue
					}
					if !known[s.Error()] {
						t.Errorf("%s is missing from sentinels", name.Name)
					}
				}
			}
		}
	}
	if n != len(sentinels) || n != len(exported) {
		t.Errorf("%d exported Err variables, %d sentinels, %d in this test", n, len(sentinels), len(exported))
	}
	for name, s := range exported {
		wrapped := fmt.Errorf("op: %w", s)
		if !isOwnSentinel(wrapped) {
			t.Errorf("isOwnSentinel(%s) = false", name)
		}
		if got := etcdErr("op", wrapped); got != wrapped {
			t.Errorf("etcdErr(%s) = %v, want it passed through", name, got)
		}
		if retryable(wrapped) {
			t.Errorf("retryable(%s) = true", name)
		}
		if s != ErrEtcd && errors.Is(etcdErr("op", wrapped), ErrEtcd) {
			t.Errorf("etcdErr(%s) wraps ErrEtcd", name)
		}
	}
}
