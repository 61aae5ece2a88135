package recipes

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Session-related helpers shared by every primitive of the package: how
// keys bound to a session are named, how a session's liveness is checked,
// and how a key left behind by a failed call is cleaned up.

// normalizePrefix returns prefix with exactly one trailing "/". Every
// primitive, and ResumeElection, goes through it, so "locks/a" and
// "locks/a/" name the same lock and never match "locks/ab/..." (etcd #13469).
func normalizePrefix(prefix string) (string, error) {
	p := strings.TrimRight(prefix, "/")
	if p == "" {
		return "", fmt.Errorf("%w: prefix %q is empty", ErrInvalidArgument, prefix)
	}
	return p + "/", nil
}

// sessionKey returns a new key under dir for one acquisition attempt by
// session s: "<dir><lease hex>-<random hex>". The lease makes the owner
// visible to operators; the random suffix makes every attempt's key
// unique, so a stale or retried request of an old attempt can never touch
// the key of a newer one, and two goroutines sharing a session simply
// queue behind each other.
func sessionKey(dir string, s *concurrency.Session) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on supported platforms; fall back to
		// the clock rather than panic.
		binary.BigEndian.PutUint64(b[:], uint64(time.Now().UnixNano()))
	}
	return fmt.Sprintf("%s%x-%016x", dir, int64(s.Lease()), binary.BigEndian.Uint64(b[:]))
}

// slotKey returns the key that session s uses under dir for a lock,
// election or semaphore: "<dir><lease hex>", the same name for every
// acquisition by the session. Reusing the name matters: etcd keeps a
// deleted key in its index until compaction, so a fresh name per
// acquisition would make every range over dir slower and slower. Two
// acquisitions never use the name at once in one process (see gateFor),
// and every delete is fenced by the create revision, so a stale request
// can never remove a newer incarnation of the key.
func slotKey(dir string, s *concurrency.Session) string {
	return fmt.Sprintf("%s%x", dir, int64(s.Lease()))
}

// gates serializes, within this process, the acquisitions that use the
// same key name on the same client: a second Lock by the same session
// waits for the first grant to end, like any other waiter would.
var gates = struct {
	sync.Mutex
	m map[gateKey]*gate
}{m: map[gateKey]*gate{}}

type gateKey struct {
	c   *clientv3.Client
	key string
}

type gate struct {
	ch   chan struct{}
	refs int
}

// enterGate waits until no other acquisition of this process uses key on
// c, or ctx ends. The returned leave must be called exactly once.
func enterGate(ctx context.Context, c *clientv3.Client, key string) (leave func(), err error) {
	return gateFor(c, key).enter(ctx, true, key)
}

// tryEnterGate is enterGate that fails with ErrLocked instead of waiting.
func tryEnterGate(c *clientv3.Client, key string) (leave func(), err error) {
	return gateFor(c, key).enter(context.Background(), false, key)
}

// gateFor returns the gate of (c, key) with a reference taken for the
// caller; enter drops it again on failure, leave on release.
func gateFor(c *clientv3.Client, key string) *gateRef {
	k := gateKey{c, key}
	gates.Lock()
	defer gates.Unlock()
	g := gates.m[k]
	if g == nil {
		g = &gate{ch: make(chan struct{}, 1)}
		gates.m[k] = g
	}
	g.refs++
	return &gateRef{k: k, g: g}
}

type gateRef struct {
	k gateKey
	g *gate
}

func (r *gateRef) drop() {
	gates.Lock()
	defer gates.Unlock()
	r.g.refs--
	if r.g.refs == 0 {
		delete(gates.m, r.k)
	}
}

// enter takes the gate, waiting until ctx ends (or not at all: !wait).
func (r *gateRef) enter(ctx context.Context, wait bool, key string) (func(), error) {
	if !wait {
		select {
		case r.g.ch <- struct{}{}:
		default:
			r.drop()
			return nil, fmt.Errorf("%w: %s is already held in this process", ErrLocked, key)
		}
	} else {
		select {
		case r.g.ch <- struct{}{}:
		case <-ctx.Done():
			r.drop()
			return nil, fmt.Errorf("recipes: wait for %s: %w", key, context.Cause(ctx))
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-r.g.ch
			r.drop()
		})
	}, nil
}

// sessionDone reports whether the session's keep-alive has stopped: it
// expired, was revoked, was orphaned or closed, or its client closed.
func sessionDone(s *concurrency.Session) bool {
	select {
	case <-s.Done():
		return true
	default:
		return false
	}
}

// leaseGone asks etcd whether the session's lease still exists. It is used
// after a waiter's key vanished, to tell an expired session apart from a key
// deleted by someone else. Errors count as "unknown" (false).
func leaseGone(ctx context.Context, s *concurrency.Session) bool {
	if sessionDone(s) {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	resp, err := s.Client().TimeToLive(ctx, s.Lease())
	if err != nil {
		return isLeaseNotFound(err)
	}
	return resp.TTL <= 0
}

// withSession returns a context that is canceled with cause
// ErrSessionExpired when the session ends, and stop to release it.
func withSession(ctx context.Context, s *concurrency.Session) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(s.Ctx(), func() {
		cancel(fmt.Errorf("%w: lease %x is no longer kept alive", ErrSessionExpired, int64(s.Lease())))
	})
	return ctx, func() {
		stop()
		cancel(context.Canceled)
	}
}

// deleteOwned deletes key if its create revision is still rev (rev 0:
// whatever its revision, for keys whose creation is in doubt; their names
// are unique to one attempt, so this cannot hit anybody else's key). It
// reports whether the key was deleted by this call.
func deleteOwned(ctx context.Context, c *clientv3.Client, key string, rev int64) (bool, error) {
	if rev == 0 {
		resp, err := c.Delete(ctx, key)
		if err != nil {
			return false, err
		}
		return resp.Deleted > 0, nil
	}
	resp, err := commitTxn(ctx, c, nil, fencedDelete(key, rev), false) // through c.KV, as it may be wrapped
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}

// cleanup removes a key this package created (or may have created) and no
// longer wants, e.g. after a canceled wait or a request whose outcome is
// unknown. It tries once in the foreground within a short time and then
// keeps retrying in the background until it succeeds or the session ends
// (at which point etcd deletes the key with the lease anyway). A waiting
// key that lingered would otherwise block every later waiter.
func cleanup(s *concurrency.Session, key string, rev int64) {
	cleanupThen(s, key, rev, nil)
}

// cleanupThen is cleanup that calls then (if not nil) once the key is
// gone, etcd refused for good, or the session ended.
func cleanupThen(s *concurrency.Session, key string, rev int64, then func()) {
	if then == nil {
		then = func() {}
	}
	c := s.Client()
	try := func() bool {
		ctx, cancel := context.WithTimeout(c.Ctx(), attemptTimeout)
		defer cancel()
		_, err := deleteOwned(ctx, c, key, rev)
		return err == nil || !retryable(err)
	}
	if try() {
		then()
		return
	}
	go func() {
		defer then()
		b := newBackoff()
		for {
			select {
			case <-s.Done():
				return
			case <-c.Ctx().Done():
				return
			case <-time.After(b.next()):
			}
			if try() {
				return
			}
		}
	}()
}
