package chaos

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/anishathalye/porcupine"
)

// History is a concurrent-safe list of completed operations for porcupine.
// Times come from Env.Now.
type History struct {
	env *Env
	mu  sync.Mutex
	ops []porcupine.Operation
}

// Add records one operation of client (a worker id) that was invoked at
// call and returned at ret.
func (h *History) Add(client int, input, output any, call, ret int64) {
	if ret < call {
		ret = call
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: input, Output: output, Call: call, Return: ret})
}

// Operations returns a copy of the recorded operations.
func (h *History) Operations() []porcupine.Operation {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops)
}

// CheckLinearizable checks the history against model with porcupine. An
// illegal history is a violation; its visualization is written to
// RECIPES_FAULTS_DIR (or the temp dir) and the path logged.
func (e *Env) CheckLinearizable(model porcupine.Model, h *History) {
	ops := h.Operations()
	timeout := time.Minute
	if Long() {
		timeout = 10 * time.Minute
	}
	start := time.Now()
	res, info := porcupine.CheckOperationsVerbose(model, ops, timeout)
	e.T.Logf("porcupine: %d operations checked in %v: %s", len(ops), time.Since(start).Round(time.Millisecond), res)
	switch res {
	case porcupine.Ok:
	case porcupine.Illegal:
		dir := os.Getenv("RECIPES_FAULTS_DIR")
		if dir == "" {
			dir = os.TempDir()
		}
		path := filepath.Join(dir, fmt.Sprintf("recipes-%s-%d.html", e.Name, e.Seed))
		if err := porcupine.VisualizePath(model, info, path); err != nil {
			e.T.Logf("visualize: %v", err)
		}
		e.Violation("history of %d operations is not linearizable (seed %d); visualization: %s", len(ops), e.Seed, path)
	default:
		e.T.Errorf("porcupine could not decide within %v (seed %d)", timeout, e.Seed)
	}
}

// LockKind is the kind of a LockOp.
type LockKind int

// Lock operations.
const (
	Acquire LockKind = iota // the grant returned to the caller
	Release                 // released, or lost (from the grant to when the loss was noticed)
	Use                     // a write guarded by the grant succeeded
)

// LockOp is the input of an operation of LockModel. Every recorded
// operation succeeded; the output is ignored.
type LockOp struct {
	Kind   LockKind
	Token  int64 // the grant's fencing token
	Shared bool  // a read grant of an RWMutex (Acquire only)
}

// lockState is the state of LockModel: the exclusive holder's token (0:
// none) and the sorted tokens of shared holders.
type lockState struct {
	writer  int64
	readers string // sorted tokens, comma separated
}

func (s lockState) readerSet() []int64 {
	if s.readers == "" {
		return nil
	}
	var out []int64
	for _, f := range strings.Split(s.readers, ",") {
		v, _ := strconv.ParseInt(f, 10, 64)
		out = append(out, v)
	}
	return out
}

func withReaders(w int64, rs []int64) lockState {
	sort.Slice(rs, func(i, j int) bool { return rs[i] < rs[j] })
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = strconv.FormatInt(r, 10)
	}
	return lockState{writer: w, readers: strings.Join(parts, ",")}
}

// LockModel is a reader/writer lock as a porcupine model (a Mutex is the
// same without shared grants): an exclusive grant needs nobody holding, a
// shared grant needs no exclusive holder, a release or a guarded use needs
// the token to hold.
func LockModel() porcupine.Model {
	return porcupine.Model{
		Init: func() any { return lockState{} },
		Step: func(state, input, _ any) (bool, any) {
			s, op := state.(lockState), input.(LockOp)
			rs := s.readerSet()
			holds := s.writer == op.Token || slices.Contains(rs, op.Token)
			switch op.Kind {
			case Acquire:
				if op.Shared {
					if s.writer != 0 || slices.Contains(rs, op.Token) {
						return false, s
					}
					return true, withReaders(0, append(rs, op.Token))
				}
				if s.writer != 0 || len(rs) > 0 {
					return false, s
				}
				return true, lockState{writer: op.Token}
			case Release:
				if !holds {
					return false, s
				}
				if s.writer == op.Token {
					return true, withReaders(0, rs)
				}
				return true, withReaders(s.writer, slices.DeleteFunc(rs, func(v int64) bool { return v == op.Token }))
			case Use:
				return holds, s
			}
			return false, s
		},
		Equal: func(a, b any) bool { return a.(lockState) == b.(lockState) },
		DescribeOperation: func(input, _ any) string {
			op := input.(LockOp)
			kind := [...]string{"acquire", "release", "use"}[op.Kind]
			if op.Shared {
				kind += "(shared)"
			}
			return fmt.Sprintf("%s %d", kind, op.Token)
		},
		DescribeState: func(state any) string {
			s := state.(lockState)
			return fmt.Sprintf("writer=%d readers=[%s]", s.writer, s.readers)
		},
	}
}

// FencedWrite is a write to the shared register that etcd accepted under
// a grant's Guard(): Rev is the revision of the write.
type FencedWrite struct {
	Rev    int64
	Token  int64
	Shared bool // made under a shared (read) grant
	Client int
}

// Fence collects fenced writes.
type Fence struct {
	mu     sync.Mutex
	writes []FencedWrite
}

// Record adds a fenced write.
func (f *Fence) Record(w FencedWrite) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, w)
}

// Len returns the number of writes recorded.
func (f *Fence) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.writes)
}

// Writes returns the recorded writes in revision order.
func (f *Fence) Writes() []FencedWrite {
	f.mu.Lock()
	ws := slices.Clone(f.writes)
	f.mu.Unlock()
	sort.Slice(ws, func(i, j int) bool { return ws[i].Rev < ws[j].Rev })
	return ws
}

// CheckFencedWrites checks that writes under exclusive grants never
// interleave: in revision order their tokens never go down (so each
// grant's writes form one block and later grants have larger tokens); and
// that no shared write falls inside an exclusive grant's block or on the
// wrong side of it (a shared grant older than the exclusive one must have
// written before it, a newer one after it). Each failure is a violation.
func (e *Env) CheckFencedWrites(f *Fence) {
	ws := f.Writes()
	type span struct{ first, last int64 }
	spans := map[int64]*span{}
	var order []int64
	var prev FencedWrite
	for _, w := range ws {
		if w.Shared {
			continue
		}
		if w.Token < prev.Token {
			e.Violation("fenced write of token %d (client %d) at revision %d after token %d (client %d) at revision %d",
				w.Token, w.Client, w.Rev, prev.Token, prev.Client, prev.Rev)
		}
		if w.Rev <= w.Token {
			e.Violation("fenced write at revision %d not after its grant's token %d", w.Rev, w.Token)
		}
		prev = w
		if s, ok := spans[w.Token]; ok {
			s.last = w.Rev
		} else {
			spans[w.Token] = &span{w.Rev, w.Rev}
			order = append(order, w.Token)
		}
	}
	for _, w := range ws {
		if !w.Shared {
			continue
		}
		// Only exclusive grants whose span could matter: binary search
		// would do, the lists are small enough for a scan.
		for _, tok := range order {
			s := spans[tok]
			if w.Token < tok && w.Rev > s.first {
				e.Violation("shared write of older token %d at revision %d after exclusive token %d wrote at %d", w.Token, w.Rev, tok, s.first)
			}
			if w.Token > tok && w.Rev < s.last {
				e.Violation("shared write of newer token %d at revision %d before exclusive token %d wrote at %d", w.Token, w.Rev, tok, s.last)
			}
		}
	}
}
