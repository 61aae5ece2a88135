package recipes

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"
)

// Group is a membership group, or a service registry, under a target
// prefix.
//
// A member is one key, "<target>/<name>", bound to the lease of the
// session that joined it: when the member's process dies, its lease
// expires and the key goes with it. The key holds the JSON that etcd's
// go.etcd.io/etcd/client/v3/naming/endpoints writes ({"Op":0,
// "Addr":<name>,"Metadata":<metadata>}), so a Group whose member names are
// dial addresses ("10.0.0.7:8080") is a service registry that etcd's gRPC
// resolver (go.etcd.io/etcd/client/v3/naming/resolver) dials as
// "etcd:///<target>", and an endpoints.Manager reads it.
//
// [Group.Members] returns the members with the revision of that view;
// [Group.Watch] reports every join, update and leave in revision order,
// across compactions and member restarts (it is built on a [Cache]). A
// name is held by one session at a time, so no view ever lists a member
// twice.
type Group struct {
	client *clientv3.Client
	prefix string // target + "/"
}

// NewGroup returns the group stored under target ("services/api"; a
// trailing "/" is ignored). An empty target is ErrInvalidArgument.
func NewGroup(client *clientv3.Client, target string) (*Group, error) {
	p, err := normalizePrefix(target)
	if err != nil {
		return nil, fmt.Errorf("group: %w", err)
	}
	return &Group{client: client, prefix: p}, nil
}

// Target is the group's target, the name etcd's resolver dials
// ("etcd:///" + Target()).
func (g *Group) Target() string { return strings.TrimSuffix(g.prefix, "/") }

// Member is one member of a [Group].
type Member struct {
	// Name is the member's name, the key's last part; for a service
	// registry the address clients dial.
	Name string
	// Addr is the address recorded for the member (its Name, for members
	// that joined through Join).
	Addr string
	// Metadata is the metadata recorded at Join, as JSON (null if none).
	Metadata json.RawMessage
	// Lease is the lease of the member's session.
	Lease int64
	// Revision is the revision at which the member joined.
	Revision int64
}

// endpointValue is the value etcd's naming/endpoints writes for an
// endpoint (its internal.Update): Op 0 is Add.
type endpointValue struct {
	Op       uint8
	Addr     string
	Metadata any
}

type endpointValueRaw struct {
	Op       uint8
	Addr     string
	Metadata json.RawMessage
}

// Membership is a member joined by this process.
type Membership struct {
	g    *Group
	name string
	key  string
	rev  int64
}

// Join makes name a member of the group for as long as session s lives
// (or until Leave). metadata is stored as JSON next to the name (nil for
// none). An empty name, or one containing "/", is ErrInvalidArgument; a
// metadata that JSON cannot encode too. A name held by another session is
// ErrMemberExists; joining again on the same session updates the
// metadata and keeps the membership.
func (g *Group) Join(ctx context.Context, s *concurrency.Session, name string, metadata any) (*Membership, error) {
	op := "join " + name + " to " + g.prefix
	if name == "" || strings.Contains(name, "/") {
		return nil, fmt.Errorf("%w: %s: a member name must be non-empty and hold no \"/\"", ErrInvalidArgument, op)
	}
	val, err := json.Marshal(endpointValue{Addr: name, Metadata: metadata})
	if err != nil {
		return nil, fmt.Errorf("%w: %s: metadata: %w", ErrInvalidArgument, op, err)
	}
	if sessionDone(s) {
		return nil, fmt.Errorf("%w: %s", ErrSessionExpired, op)
	}
	key := g.prefix + name
	lease := s.Lease()
	put := clientv3.OpPut(key, string(val), clientv3.WithLease(lease))
	for {
		resp, err := g.client.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(put).
			Else(clientv3.OpGet(key)).
			Commit()
		if err != nil {
			return nil, etcdErr(op, err)
		}
		if resp.Succeeded {
			return &Membership{g: g, name: name, key: key, rev: resp.Header.Revision}, nil
		}
		kvs := resp.Responses[0].GetResponseRange().GetKvs()
		if len(kvs) == 0 {
			continue // left meanwhile: try again
		}
		if clientv3.LeaseID(kvs[0].Lease) != lease {
			return nil, fmt.Errorf("%w: %s: held by lease %x", ErrMemberExists, op, kvs[0].Lease)
		}
		// Our own member: update the metadata in place.
		upd, err := g.client.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", kvs[0].CreateRevision)).
			Then(put).
			Commit()
		if err != nil {
			return nil, etcdErr(op, err)
		}
		if upd.Succeeded {
			return &Membership{g: g, name: name, key: key, rev: kvs[0].CreateRevision}, nil
		}
	}
}

// Name is the member's name.
func (m *Membership) Name() string { return m.name }

// Key is the member's key, "<target>/<name>".
func (m *Membership) Key() string { return m.key }

// Revision is the revision at which the member joined; a later join of the
// same name has a larger one.
func (m *Membership) Revision() int64 { return m.rev }

// Leave removes the member, only if it is still this membership's (not
// one that joined the name after this one's session ended). It reports
// whether it removed it.
func (m *Membership) Leave(ctx context.Context) (bool, error) {
	resp, err := m.g.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(m.key), "=", m.rev)).
		Then(clientv3.OpDelete(m.key)).
		Commit()
	if err != nil {
		return false, etcdErr("leave "+m.key, err)
	}
	return resp.Succeeded, nil
}

// memberOf decodes the member stored in kv (key under prefix).
func memberOf(prefix string, key, value string, lease, rev int64) Member {
	m := Member{Name: strings.TrimPrefix(key, prefix), Lease: lease, Revision: rev}
	var v endpointValueRaw
	if json.Unmarshal([]byte(value), &v) == nil {
		m.Addr, m.Metadata = v.Addr, v.Metadata
	}
	return m
}

// Members returns the group's members in name order and the revision of
// that view, from a linearizable read.
func (g *Group) Members(ctx context.Context) ([]Member, int64, error) {
	resp, err := g.client.Get(ctx, g.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, etcdErr("members of "+g.prefix, err)
	}
	out := make([]Member, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out = append(out, memberOf(g.prefix, string(kv.Key), string(kv.Value), kv.Lease, kv.CreateRevision))
	}
	return out, resp.Header.Revision, nil
}

// GroupEventType says what a [GroupEvent] reports.
type GroupEventType int

const (
	// MemberJoined: a member appeared.
	MemberJoined GroupEventType = iota + 1
	// MemberUpdated: a member's metadata changed.
	MemberUpdated
	// MemberLeft: a member left, or its session ended.
	MemberLeft
)

func (t GroupEventType) String() string {
	switch t {
	case MemberJoined:
		return "joined"
	case MemberUpdated:
		return "updated"
	case MemberLeft:
		return "left"
	}
	return fmt.Sprintf("GroupEventType(%d)", int(t))
}

// GroupEvent is one change of a group's membership.
type GroupEvent struct {
	Type     GroupEventType
	Member   Member
	Revision int64
}

// Watch reports the group's members as joins (at the revision of the
// first read), then every later change in revision order, until ctx ends
// (the channel is then closed). It returns after that first read, so every
// change made after it returns is reported as its own event. It follows
// the group through a [Cache], so it survives broken watches and
// compactions without reporting a member twice: after a compaction it
// reports only what changed. An event not received holds the watch up;
// the caller should drain the channel.
func (g *Group) Watch(ctx context.Context) (<-chan GroupEvent, error) {
	ch := make(chan GroupEvent)
	cache, err := NewCache(g.client, g.prefix, WithCacheHandler(func(ev CacheEvent) {
		ge := GroupEvent{Revision: ev.Revision, Member: memberOf(g.prefix, ev.KV.Key, ev.KV.Value, ev.KV.Lease, ev.KV.CreateRevision)}
		switch ev.Type {
		case CacheAdd:
			ge.Type = MemberJoined
		case CacheUpdate:
			ge.Type = MemberUpdated
		case CacheDelete:
			ge.Type = MemberLeft
		}
		select {
		case ch <- ge:
		case <-ctx.Done():
		}
	}))
	if err != nil {
		return nil, err
	}
	// Return only once the group has been read: a change made after Watch
	// returns is then reported as its own event, never folded into the
	// first read's joins. The first read's events wait in the handler.
	if err := cache.WaitForRevision(ctx, 0); err != nil {
		cache.Close()
		return nil, fmt.Errorf("recipes: watch group %s: %w", g.Target(), err)
	}
	go func() {
		<-ctx.Done()
		cache.Close()
		close(ch)
	}()
	return ch, nil
}
