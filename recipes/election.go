package recipes

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Election is a leader election on a key prefix. Candidates queue in
// campaign order; the oldest live candidate leads. Leadership is fenced
// like a Mutex: Token, Guard, Done and a fenced Resign.
type Election struct {
	s      *concurrency.Session
	prefix string
}

// NewElection returns an election on prefix for session s. The prefix is
// normalized to end in exactly one "/".
func NewElection(s *concurrency.Session, prefix string) *Election {
	return &Election{s: s, prefix: prefix}
}

// Prefix returns the normalized key prefix of the election. It is the same
// for an Election made by NewElection and one obtained from
// ResumeElection with the same prefix.
func (e *Election) Prefix() string {
	p, _ := normalizePrefix(e.prefix)
	return p
}

// LeaderInfo describes a leader.
type LeaderInfo struct {
	Key   string // the leader's key
	Value string // the value it campaigned or proclaimed with
	Token int64  // its fencing token (create revision of Key)
	Lease clientv3.LeaseID
}

// Campaign waits until this session leads the election with value, or ctx
// ends. A campaign whose session expires (or whose lease is revoked) while
// it waits fails with ErrSessionExpired; it never wins (etcd #19597). When
// it fails it withdraws its candidacy.
func (e *Election) Campaign(ctx context.Context, value string) (*Leadership, error) {
	dir, err := normalizePrefix(e.prefix)
	if err != nil {
		return nil, err
	}
	h, err := acquire(ctx, queueSpec{
		session:  e.s,
		dir:      dir,
		blockDir: dir,
		key:      slotKey(dir, e.s),
		value:    value,
		limit:    1,
		lost:     ErrLeadershipLost,
	}, true)
	if err != nil {
		return nil, err
	}
	return &Leadership{h: h, e: e, value: value}, nil
}

// Leader returns the current leader, or an error wrapping ErrNoLeader.
func (e *Election) Leader(ctx context.Context) (LeaderInfo, error) {
	dir, err := normalizePrefix(e.prefix)
	if err != nil {
		return LeaderInfo{}, err
	}
	resp, err := e.s.Client().Get(ctx, dir, clientv3.WithFirstCreate()...)
	if err != nil {
		return LeaderInfo{}, etcdErr("leader of "+dir, err)
	}
	if len(resp.Kvs) == 0 {
		return LeaderInfo{}, fmt.Errorf("%w: election %s at revision %d", ErrNoLeader, dir, resp.Header.Revision)
	}
	return leaderInfo(resp.Kvs[0]), nil
}

func leaderInfo(kv *mvccpb.KeyValue) LeaderInfo {
	return LeaderInfo{Key: string(kv.Key), Value: string(kv.Value), Token: kv.CreateRevision, Lease: clientv3.LeaseID(kv.Lease)}
}

// ResumeElection takes back a leadership held by session s's lease, e.g.
// after the process restarted with concurrency.WithLease(oldLease). token
// is the Token() of the leadership. It fails with ErrLeadershipLost if that
// key is gone, belongs to another lease, or is not the leader; in the
// latter case the stale candidacy is withdrawn. It fails with ErrLocked if
// a Leadership of this process on the same client already holds the key. The prefix is normalized
// exactly as NewElection does (etcd #13469 dropped its trailing "/").
func ResumeElection(ctx context.Context, s *concurrency.Session, prefix string, token int64) (*Leadership, error) {
	e := NewElection(s, prefix)
	dir, err := normalizePrefix(prefix)
	if err != nil {
		return nil, err
	}
	resp, err := s.Client().Txn(ctx).Then(
		clientv3.OpGet(dir, clientv3.WithFirstCreate()...),
		clientv3.OpGet(dir, clientv3.WithPrefix(), clientv3.WithMinCreateRev(token), clientv3.WithMaxCreateRev(token)),
	).Commit()
	if err != nil {
		return nil, etcdErr("resume election "+dir, err)
	}
	mine := resp.Responses[1].GetResponseRange().Kvs
	if len(mine) != 1 || clientv3.LeaseID(mine[0].Lease) != s.Lease() {
		return nil, fmt.Errorf("%w: election %s has no key with token %d for lease %x", ErrLeadershipLost, dir, token, int64(s.Lease()))
	}
	key := string(mine[0].Key)
	if strings.Contains(key[len(dir):], "/") {
		return nil, fmt.Errorf("%w: key %s with token %d is not a candidate of election %s", ErrLeadershipLost, key, token, dir)
	}
	leave, err := tryEnterGate(s.Client(), key)
	if err != nil {
		return nil, err
	}
	first := resp.Responses[0].GetResponseRange().Kvs
	if len(first) == 0 || first[0].CreateRevision != token {
		cleanupThen(s, key, token, leave)
		return nil, fmt.Errorf("%w: election %s: token %d is not the leader", ErrLeadershipLost, dir, token)
	}
	h := newHold(s, key, token, ErrLeadershipLost, leave)
	h.handoff = releasedKey(dir)
	h.rev = resp.Header.Revision
	return &Leadership{h: h, e: e, value: string(mine[0].Value)}, nil
}

// Leadership is a won election. It is safe for concurrent use.
type Leadership struct {
	h     *hold
	e     *Election
	value string
}

// Election returns the election that was won.
func (l *Leadership) Election() *Election { return l.e }

// Token returns the fencing token: the create revision of the leader's
// key. Every later leader of the election has a larger token.
func (l *Leadership) Token() int64 { return l.h.token }

// Key returns the leader's key.
func (l *Leadership) Key() string { return l.h.key }

// Revision returns a revision at which this leadership was held: the one
// at which it was won (or, for a resumed leadership, confirmed).
func (l *Leadership) Revision() int64 { return l.h.rev }

// Guard returns the comparison that holds while this leadership lasts;
// put it in the If of the leader's own transactions. As with Lock.Guard, a
// transaction of the Guard alone is a serializable read that a lagging
// member may answer: read Key() with a Get to check the leadership.
func (l *Leadership) Guard() clientv3.Cmp { return l.h.guard() }

// Done is closed when the leadership ends: resigned, its key deleted, its
// lease expired or revoked (seen by a watch), or the session's keep-alive
// stopped. The first call starts the watch. As for Lock.Done, a client cut
// off from etcd hears of a loss only about a TTL later; use Context with a
// [Session] for a bound computed locally.
func (l *Leadership) Done() <-chan struct{} { return l.h.doneCh() }

// Err returns nil while leading, an error wrapping ErrLeadershipLost once
// the leadership was lost, and one wrapping ErrNotHeld after Resign.
func (l *Leadership) Err() error { return l.h.status() }

// Proclaim changes the leader's value, fenced by the token: it fails with
// ErrLeadershipLost, and writes nothing, if the leadership was lost.
func (l *Leadership) Proclaim(ctx context.Context, value string) error {
	c := l.h.session.Client()
	resp, err := c.Txn(ctx).If(l.h.guard()).
		Then(clientv3.OpPut(l.h.key, value, clientv3.WithIgnoreLease())).
		Commit()
	if err != nil {
		return etcdErr("proclaim "+l.h.key, err)
	}
	if !resp.Succeeded {
		err := lossError(l.h.key, l.h.token, resp.Header.Revision, fmt.Errorf("%w: key %s no longer has create revision %d", ErrLeadershipLost, l.h.key, l.h.token))
		l.h.finish(err, false)
		return err
	}
	return nil
}

// Resign gives up the leadership so the next candidate takes over; it
// deletes the key only if it still carries this leadership's token.
func (l *Leadership) Resign(ctx context.Context) error {
	return l.h.release(ctx, "leadership")
}

// Observation is one state of an election, as reported by Observe.
type Observation struct {
	// Revision is the etcd revision at which this state began; for the
	// first observation and after a resync, the revision at which it was
	// read.
	Revision int64
	// Leader is the leader, or nil when there is none.
	Leader *LeaderInfo
	// Resynced is set when etcd compacted the history needed to follow the
	// election change by change, so the state was read again: leaders that
	// came and went between the previous observation and this one may be
	// missing, and the state may repeat the previous one. It is never set
	// while history is available.
	Resynced bool
}

// Observe reports the election's state, then every change of it in
// revision order: every new leader, every value it proclaims, and "no
// leader" (Leader == nil) whenever the last candidate leaves. No change is
// skipped while etcd keeps the history; if history was compacted while the
// observer was disconnected it re-reads and marks the observation
// Resynced rather than closing. The channel closes only when ctx ends or
// the client is closed. Observations are not dropped: a slow reader slows
// the observer down.
func (e *Election) Observe(ctx context.Context) <-chan Observation {
	ch := make(chan Observation)
	go e.observe(ctx, ch)
	return ch
}

type candidate struct {
	key   string
	value []byte
	token int64
	lease int64
}

// observe sends the election's states to ch until ctx ends or the client
// is closed: track (wait.go) reads the candidates and feeds every later
// revision; emit reports the leader whenever it changed, or after a new
// read.
func (e *Election) observe(ctx context.Context, ch chan<- Observation) {
	defer close(ch)
	dir, err := normalizePrefix(e.prefix)
	if err != nil {
		return
	}
	c := e.s.Client()
	cands := map[string]candidate{}
	var (
		last    *candidate // leader last reported
		started bool       // something was reported
	)
	leader := func() *candidate {
		var best *candidate
		for _, cd := range cands {
			if best == nil || cd.token < best.token {
				cd := cd
				best = &cd
			}
		}
		return best
	}
	emit := func(r int64, resynced bool) bool {
		cur := leader()
		resynced = resynced && started
		if started && !resynced && sameLeader(cur, last) {
			return true
		}
		o := Observation{Revision: r, Resynced: resynced}
		if cur != nil {
			o.Leader = &LeaderInfo{Key: cur.key, Value: string(cur.value), Token: cur.token, Lease: clientv3.LeaseID(cur.lease)}
		}
		select {
		case ch <- o:
		case <-ctx.Done():
			return false
		}
		last, started = cur, true
		return true
	}
	load := func(ctx context.Context, minRev int64) (int64, bool, error) {
		resp, err := getAtLeast(ctx, c, minRev, clientv3.OpGet(dir, clientv3.WithPrefix()))
		if err != nil {
			return 0, false, err
		}
		clear(cands)
		for _, kv := range resp.Responses[0].GetResponseRange().Kvs {
			cands[string(kv.Key)] = candidate{key: string(kv.Key), value: kv.Value, token: kv.CreateRevision, lease: kv.Lease}
		}
		rev := resp.Header.Revision
		return rev, !emit(rev, true), nil
	}
	apply := func(rev int64, evs []*clientv3.Event) (bool, error) {
		for _, ev := range evs {
			k := string(ev.Kv.Key)
			if ev.Type == mvccpb.DELETE {
				delete(cands, k)
			} else {
				cands[k] = candidate{key: k, value: ev.Kv.Value, token: ev.Kv.CreateRevision, lease: ev.Kv.Lease}
			}
		}
		return !emit(rev, false), nil
	}
	track(ctx, c, dir, []clientv3.OpOption{clientv3.WithPrefix()}, load, apply)
}

func sameLeader(a, b *candidate) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.key == b.key && a.token == b.token && bytes.Equal(a.value, b.value)
}
