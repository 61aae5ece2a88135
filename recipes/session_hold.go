package recipes

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"weak"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The engine shared by Mutex, RWMutex, Semaphore and Election: a fair
// queue of session-bound keys under a prefix, ordered by create revision.
// A key is granted when fewer than limit "blocking" keys were created
// before it; blocking keys are the keys under blockDir (the whole prefix
// for a mutex, only the writers for a reader of an RWMutex).

// queueSpec describes one acquisition attempt.
type queueSpec struct {
	session  *concurrency.Session
	dir      string // normalized prefix of the primitive: every key lives below it
	blockDir string // keys below blockDir with a lower create revision block us
	key      string // our key: slotKey, one per session and primitive
	value    string
	limit    int   // granted when fewer than limit blocking keys precede us
	lost     error // sentinel reported when a granted hold is lost
	// tryEmpty: a Try call puts the key only if no key is under blockDir
	// and reports ErrLocked otherwise, without putting anything; without
	// it, a Try call puts the key, then checks its rank.
	tryEmpty bool
}

// acquireRequest is the transaction that joins the queue of q with the
// session's lease, in one round trip.
//
// It puts the key, which keeps the create revision of a key of ours left
// over (returned as the put's previous key), and counts the keys under
// blockDir: with fewer than limit others, the key is granted at once. A
// count is served from etcd's in-memory index, where a compare over the
// whole range ("no key under blockDir") reads every key and value from
// the backend on every member, so the line's length would cost each
// acquirer. With limit > 1 or without wait it also reads the first limit
// keys by create revision, so a semaphore with a free slot or a Try call
// knows its rank at once. A waiting lock or election needs no such read:
// its wait (waitTurn) reads the keys ahead itself, behind its watch.
//
// A Try call with tryEmpty puts only if no key is under blockDir and ours
// is new (Succeeded), and puts nothing otherwise.
func acquireRequest(q queueSpec, lease int64, wait bool) *pb.TxnRequest {
	key := []byte(q.key)
	dir := []byte(q.blockDir)
	end := []byte(clientv3.GetPrefixRangeEnd(q.blockDir))
	put := func(prevKV bool) *pb.RequestOp {
		return putOp(&pb.PutRequest{Key: key, Value: []byte(q.value), Lease: lease, PrevKv: prevKV})
	}
	if !wait && q.tryEmpty {
		// "none under blockDir" does not cover our own key outside it,
		// nor tell a key of ours left over inside it from another's.
		cmps := []*pb.Compare{createdAt(dir, end, 0), createdAt(key, nil, 0)}
		return &pb.TxnRequest{Compare: cmps, Success: []*pb.RequestOp{put(false)}}
	}
	ops := []*pb.RequestOp{put(true), getOp(&pb.RangeRequest{Key: dir, RangeEnd: end, CountOnly: true})}
	if q.limit > 1 || !wait {
		ops = append(ops, getOp(&pb.RangeRequest{
			Key: dir, RangeEnd: end, KeysOnly: true, Limit: int64(q.limit),
			SortTarget: pb.RangeRequest_CREATE, SortOrder: pb.RangeRequest_ASCEND,
		}))
	}
	return &pb.TxnRequest{Success: ops}
}

// acquire puts the spec's key and, unless it is granted at once, waits for
// it (wait) or removes it again and fails with ErrLocked (!wait).
func acquire(ctx context.Context, q queueSpec, wait bool) (*hold, error) {
	s := q.session
	c := s.Client()
	if sessionDone(s) {
		return nil, fmt.Errorf("%w: lease %x is no longer kept alive", ErrSessionExpired, int64(s.Lease()))
	}
	leave, err := enterGate(ctx, c, q.key)
	if err != nil {
		return nil, err
	}
	h, err := acquireGated(ctx, q, wait, leave)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// acquireGated does the work of acquire inside the process-local gate of
// the key; it hands leave to the hold, or calls it once the key is removed.
func acquireGated(ctx context.Context, q queueSpec, wait bool, leave func()) (*hold, error) {
	s := q.session
	c := s.Client()
	raw := newRawKV(c)
	try := !wait && q.tryEmpty
	// Sent once (see onceKV): a resend after an answer lost to a stopping
	// member could put the key back after the cleanup below removed it.
	resp, err := commitTxn(ctx, c, raw, acquireRequest(q, int64(s.Lease()), wait), true)
	if err != nil {
		if isLeaseNotFound(err) {
			leave()
		} else {
			// The put may or may not have been applied.
			cleanupThen(s, q.key, 0, leave)
		}
		return nil, etcdErr("acquire "+q.dir, err)
	}
	if try && !resp.Succeeded {
		leave()
		return nil, fmt.Errorf("%w: %s", ErrLocked, q.dir)
	}
	token := resp.Header.Revision
	if !try {
		// The put kept the create revision of a key of ours left over.
		if prev := resp.Responses[0].GetResponsePut().GetPrevKv(); prev != nil {
			token = prev.CreateRevision
		}
	}
	h := newHold(s, q.key, token, q.lost, leave)
	h.raw = raw
	h.handoff = q.releasedKey()
	h.rev = resp.Header.Revision
	if try {
		return h, nil // put only into an empty line
	}
	others := resp.Responses[1].GetResponseRange().Count
	if strings.HasPrefix(q.key, q.blockDir) {
		others-- // our own key, counted
	}
	if others < int64(q.limit) {
		return h, nil // fewer keys than slots: none can block us
	}
	ahead := q.limit // unknown without the first keys: wait for the turn
	if len(resp.Responses) > 2 {
		ahead = 0
		for _, kv := range resp.Responses[2].GetResponseRange().Kvs {
			if kv.CreateRevision < token {
				ahead++
			}
		}
	}
	if ahead < q.limit {
		return h, nil
	}
	if !wait {
		cleanupThen(s, q.key, token, leave)
		return nil, fmt.Errorf("%w: %s", ErrLocked, q.dir)
	}

	wctx, stop := withSession(ctx, s)
	defer stop()
	acq, err := waitTurn(wctx, c, q, token)
	if err != nil {
		if errors.Is(err, errOwnKeyGone) {
			leave()
			if leaseGone(c.Ctx(), s) {
				return nil, fmt.Errorf("%w: lease %x expired while waiting for %s", ErrSessionExpired, int64(s.Lease()), q.dir)
			}
			return nil, fmt.Errorf("%w: key %s was deleted while waiting", q.lost, q.key)
		}
		cleanupThen(s, q.key, token, leave)
		if isOwnSentinel(err) {
			return nil, err
		}
		return nil, etcdErr("wait for "+q.dir, err)
	}
	h.rev = acq
	h.epoch = currentEpoch(s) // the lease lived on through the wait
	return h, nil
}

var errOwnKeyGone = errors.New("own key gone")

// releasedKey is the key, just outside the primitive's prefix dir, at
// which a release records the token of a hold that was the head of the
// whole line (see queueSpec.releasedKey and chase).
func releasedKey(dir string) string {
	return strings.TrimSuffix(dir, "/") + "\x00released"
}

// unrecorded holds the releasedKeys that etcd refused to a client
// (permission denied: a role may grant only the prefix itself). That
// client's releases then record nothing and its waiters read the line, as
// they do behind a holder that does not record its release. Refusals are
// per client, since permissions are per user: a client with more rights
// in the same process (root, an operator tool) keeps recording. The client
// is held weakly; an entry of a client gone only costs a few bytes.
var unrecorded sync.Map // recordRefusal → struct{}

type recordRefusal struct {
	client weak.Pointer[clientv3.Client]
	key    string
}

// recordable tells whether c may write and read releasedKey key.
func recordable(c *clientv3.Client, key string) bool {
	if key == "" {
		return false
	}
	_, refused := unrecorded.Load(recordRefusal{weak.Make(c), key})
	return !refused
}

// refuseRecord notes that etcd refused key to c.
func refuseRecord(c *clientv3.Client, key string) {
	unrecorded.Store(recordRefusal{weak.Make(c), key}, struct{}{})
}

// isPermissionDenied tells whether etcd refused a request for lack of a
// permission.
func isPermissionDenied(err error) bool {
	return errors.Is(err, rpctypes.ErrPermissionDenied) || status.Code(err) == codes.PermissionDenied
}

// releasedKey is where a release of q's hold records its token, or ""
// when a grant of q does not mean that no key of the primitive precedes
// it: a reader of an RWMutex (earlier readers may hold) or a semaphore
// with several slots.
func (q queueSpec) releasedKey() string {
	if q.limit != 1 || q.blockDir != q.dir {
		return ""
	}
	return releasedKey(q.dir)
}

// maxChased is the largest limit for which waitTurn watches only the keys
// just ahead of the waiter (chase): limit+1 watches per waiter. Above it,
// one watch of the whole prefix is cheaper per waiter.
const maxChased = 8

// waitTurn waits until fewer than q.limit blocking keys with a create
// revision below rev remain. It returns the revision at which the turn
// came. If our own key is deleted first (lease expired or revoked, key
// removed), it fails with errOwnKeyGone: a waiter is only ever granted at
// a revision at which its key still exists.
//
// Up to maxChased slots (every Mutex, RWMutex and Election, small
// Semaphores) it watches only the limit keys just ahead and its own
// (chase), so that a release wakes the next waiters, not the whole line;
// above, one ordered watch of the whole prefix (deletions only).
func waitTurn(ctx context.Context, c *clientv3.Client, q queueSpec, rev int64) (int64, error) {
	if q.limit <= maxChased {
		l := lineSpec{dir: q.blockDir, limit: q.limit, key: q.key, token: rev}
		if q.limit == 1 {
			l.handoff = releasedKey(q.dir)
		}
		return chase(ctx, c, l)
	}
	ahead := map[string]struct{}{}
	load := func(ctx context.Context, minRev int64) (int64, bool, error) {
		resp, err := getAtLeast(ctx, c, minRev,
			clientv3.OpGet(q.blockDir, clientv3.WithPrefix(), clientv3.WithKeysOnly(), clientv3.WithMaxCreateRev(rev-1)),
			clientv3.OpGet(q.key, clientv3.WithKeysOnly()))
		if err != nil {
			return 0, false, err
		}
		own := resp.Responses[1].GetResponseRange().Kvs
		if len(own) == 0 || own[0].CreateRevision != rev {
			return 0, false, errOwnKeyGone
		}
		clear(ahead)
		for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
			ahead[string(kv.Key)] = struct{}{}
		}
		return resp.Header.Revision, len(ahead) < q.limit, nil
	}
	apply := func(_ int64, evs []*clientv3.Event) (bool, error) {
		for _, ev := range evs {
			if ev.Type != mvccpb.DELETE {
				continue
			}
			k := string(ev.Kv.Key)
			if k == q.key {
				return false, errOwnKeyGone
			}
			delete(ahead, k)
		}
		return len(ahead) < q.limit, nil
	}
	return follow(ctx, c, q.dir, []clientv3.OpOption{clientv3.WithPrefix(), clientv3.WithFilterPut()}, load, apply)
}

// hold is a granted key: the state behind Lock and Leadership.
type hold struct {
	session *concurrency.Session
	key     string
	token   int64 // create revision of key
	rev     int64 // revision at which the hold was granted
	lost    error // ErrLockLost or ErrLeadershipLost

	once    sync.Once // starts the monitor
	leave   func()    // leaves the process-local gate of the key
	done    chan struct{}
	stopMon context.CancelFunc

	mu        sync.Mutex
	err       error // nil while held
	released  bool
	releasing bool  // a release is in flight: its own delete is not a loss
	sawDelete error // deletion seen by the monitor during a release

	unlockMu sync.Mutex // serializes release
	raw      *rawKV     // newRawKV of the session's client
	// handoff: the primitive's releasedKey, or "". A release that deletes
	// the key records the token there in the same transaction, so that
	// the waiter just behind knows the head of the line went (chase).
	handoff string

	// The hold context (hold_context.go): the session's deadline epoch
	// at grant time, and the context made by the first Context call.
	epoch     *epoch
	ctx       context.Context
	cancelCtx context.CancelCauseFunc
}

func newHold(s *concurrency.Session, key string, token int64, lost error, leave func()) *hold {
	if leave == nil {
		leave = func() {}
	}
	return &hold{session: s, key: key, token: token, lost: lost, leave: leave, done: make(chan struct{}), stopMon: func() {},
		epoch: currentEpoch(s)}
}

func (h *hold) guard() clientv3.Cmp {
	return clientv3.Compare(clientv3.CreateRevision(h.key), "=", h.token)
}

// finish records why the hold ended (first reason wins) and closes done.
func (h *hold) finish(err error, released bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.err != nil {
		return
	}
	h.err = err
	h.released = released
	close(h.done)
	if h.cancelCtx != nil {
		h.cancelCtx(err)
	}
	h.leave()
}

// doneCh starts the loss monitor on first use and returns the channel
// closed when the hold ends.
func (h *hold) doneCh() <-chan struct{} {
	h.once.Do(h.startMonitor)
	return h.done
}

func (h *hold) status() error {
	h.once.Do(h.startMonitor)
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// startMonitor watches the held key (synced watch first, then a read that
// checks it still carries our token) and ends the hold when it is deleted,
// when the session's keep-alive stops, or when etcd refuses with a
// permanent error. Lease expiry and revocation delete the key, so they are
// seen through the watch within milliseconds rather than from the local
// clock.
func (h *hold) startMonitor() {
	h.mu.Lock()
	if h.err != nil {
		h.mu.Unlock()
		return
	}
	c := h.session.Client()
	ctx, stop := withSession(c.Ctx(), h.session)
	h.stopMon = stop
	h.mu.Unlock()
	go func() {
		defer stop()
		load := func(ctx context.Context, minRev int64) (int64, bool, error) {
			resp, err := getAtLeast(ctx, c, minRev, clientv3.OpGet(h.key, clientv3.WithKeysOnly()))
			if err != nil {
				return 0, false, err
			}
			kvs := resp.Responses[0].GetResponseRange().Kvs
			if len(kvs) == 0 || kvs[0].CreateRevision != h.token {
				return resp.Header.Revision, true, nil
			}
			return resp.Header.Revision, false, nil
		}
		apply := func(_ int64, evs []*clientv3.Event) (bool, error) {
			for _, ev := range evs {
				if ev.Type == mvccpb.DELETE {
					return true, nil
				}
			}
			return false, nil
		}
		rev, err := follow(ctx, c, h.key, []clientv3.OpOption{clientv3.WithFilterPut()}, load, apply)
		switch {
		case err == nil:
			lostErr := lossError(h.key, h.token, rev, fmt.Errorf("%w: key %s deleted at revision %d", h.lost, h.key, rev))
			h.mu.Lock()
			releasing := h.releasing
			if releasing {
				h.sawDelete = lostErr
			}
			h.mu.Unlock()
			if !releasing {
				h.finish(lostErr, false)
			}
		case errors.Is(err, context.Canceled) && !sessionDone(h.session) && c.Ctx().Err() == nil:
			// stopped by release
		case errors.Is(err, ErrSessionExpired):
			h.finish(lossError(h.key, h.token, 0, fmt.Errorf("%w: %w", h.lost, err)), false)
		default:
			h.finish(lossError(h.key, h.token, 0, fmt.Errorf("%w: cannot watch key %s: %w", h.lost, h.key, err)), false)
		}
	}()
}

// release deletes the key if it still carries our token. A second call,
// or a call after the hold was lost, never touches a newer holder's key.
func (h *hold) release(ctx context.Context, what string) error {
	h.unlockMu.Lock()
	defer h.unlockMu.Unlock()
	released, prev := h.beginRelease()
	if released {
		return releasedError{what, h.key}
	}
	req := fencedDelete(h.key, h.token)
	record := recordable(h.session.Client(), h.handoff)
	if record {
		// Bound to the lease, like the key: it goes with the session.
		req.Success = append(req.Success, putOp(&pb.PutRequest{
			Key: []byte(h.handoff), Value: []byte(strconv.FormatInt(h.token, 10)), Lease: int64(h.session.Lease())}))
	}
	resp, err := commitTxn(ctx, h.session.Client(), h.raw, req, false)
	if record && isPermissionDenied(err) {
		// Refused as a whole, so nothing was applied: release without it.
		refuseRecord(h.session.Client(), h.handoff)
		resp, err = commitTxn(ctx, h.session.Client(), h.raw, fencedDelete(h.key, h.token), false)
	}
	if err != nil {
		return h.endRelease(what, prev, false, 0, err)
	}
	return h.endRelease(what, prev, resp.Succeeded, resp.Header.Revision, nil)
}

// beginRelease marks a release in flight (under unlockMu) and reports
// whether the hold was released already, and how it ended if it did.
func (h *hold) beginRelease() (released bool, prev error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.releasing = true
	return h.released, h.err
}

// endRelease records the outcome of the fenced delete of a release begun
// by beginRelease: err (outcome unknown), or whether it deleted the key
// (rev: the revision of its answer).
func (h *hold) endRelease(what string, prev error, deleted bool, rev int64, err error) error {
	if err != nil {
		h.mu.Lock()
		h.releasing = false
		seen := h.sawDelete
		h.mu.Unlock()
		if seen != nil {
			// The key is gone (maybe by this very request): the lock is
			// not held any more either way.
			h.finish(seen, false)
		} else {
			// Make sure the hold ends (and the key's gate opens) once the
			// key or the session goes, even if Unlock is not retried.
			h.once.Do(h.startMonitor)
		}
		return etcdErr("release "+h.key, err)
	}
	h.mu.Lock()
	h.stopMon()
	h.mu.Unlock()
	if !deleted {
		lostErr := lossError(h.key, h.token, rev, fmt.Errorf("%w: key %s no longer has create revision %d", h.lost, h.key, h.token))
		h.finish(lostErr, true)
		h.mu.Lock()
		h.released = true
		h.mu.Unlock()
		if prev != nil {
			return prev
		}
		return lostErr
	}
	h.finish(releasedError{what, h.key}, true)
	h.mu.Lock()
	h.released = true
	h.mu.Unlock()
	return nil
}

// releasedError says that a hold ended by its own release (or that it was
// released already). It wraps ErrNotHeld; its message is only formatted
// when asked for, which a successful release never does.
type releasedError struct {
	what string // "lock", "leadership"
	key  string
}

func (e releasedError) Error() string {
	return fmt.Sprintf("%v: %s %s was released", ErrNotHeld, e.what, e.key)
}

func (e releasedError) Unwrap() error { return ErrNotHeld }
