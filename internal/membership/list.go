package membership

import (
	"context"
	"fmt"
	"slices"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/etcdconf"
)

// probeTimeout bounds one Status call to one member.
const probeTimeout = 2 * time.Second

// Member is one entry of the member list, as `etcdctl member list` shows it.
type Member struct {
	ID         uint64
	Name       string // "" until the member's process has joined
	PeerURLs   []string
	ClientURLs []string // empty until the member's process has joined
	IsLearner  bool
	IsLeader   bool
}

// Started tells whether the member's process has joined the cluster (etcd
// learns a member's name and client URLs from the member itself).
func (m Member) Started() bool { return m.Name != "" || len(m.ClientURLs) > 0 }

// DisplayName is the name, or "unstarted" for a member that never joined.
func (m Member) DisplayName() string {
	if m.Name == "" {
		return "unstarted"
	}
	return m.Name
}

// List is the cluster's member list.
type List struct {
	ClusterID uint64
	// Leader is the leader's member ID, 0 when no reachable member knows one.
	Leader  uint64
	Members []Member
}

// ByID returns the member with that ID.
func (l List) ByID(id uint64) (Member, bool) {
	for _, m := range l.Members {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// ByName returns the member with that name ("" never matches).
func (l List) ByName(name string) (Member, bool) {
	if name == "" {
		return Member{}, false
	}
	for _, m := range l.Members {
		if m.Name == name {
			return m, true
		}
	}
	return Member{}, false
}

// ByPeerURL returns the member that advertises peer URL u.
func (l List) ByPeerURL(u string) (Member, bool) {
	for _, m := range l.Members {
		if slices.Contains(m.PeerURLs, u) {
			return m, true
		}
	}
	return Member{}, false
}

// Voters counts the voting (non-learner) members.
func (l List) Voters() int {
	n := 0
	for _, m := range l.Members {
		if !m.IsLearner {
			n++
		}
	}
	return n
}

// InitialCluster is the initial-cluster value for member self joining with
// initial-cluster-state "existing": every member's peer URLs, self under
// selfName. Other members that have not started yet have no name; they get
// a placeholder ("unstarted-<id>"), which etcd accepts because a joining
// member matches the list against the running cluster by peer URL.
func (l List) InitialCluster(self uint64, selfName string) []etcdconf.Member {
	out := make([]etcdconf.Member, 0, len(l.Members))
	for _, m := range l.Members {
		name := m.Name
		switch {
		case m.ID == self:
			name = selfName
		case name == "":
			name = "unstarted-" + FormatID(m.ID)
		}
		out = append(out, etcdconf.Member{Name: name, PeerURLs: slices.Clone(m.PeerURLs)})
	}
	return out
}

// MemberList returns the cluster's members (linearizable on etcd 3.5 and
// later; on 3.4, from a member that has a leader) and which one is
// the leader (asked of the client's endpoints, then of the members' client
// URLs; Leader stays 0 if none answers).
func MemberList(ctx context.Context, cli *clientv3.Client) (List, error) {
	var resp *clientv3.MemberListResponse
	var leader uint64
	for {
		actx, cancel := attempt(ctx)
		api, seen, done := pinned(actx, cli)
		var err error
		// Only from a member that has a leader: etcd 3.4 answers
		// MemberList from the member's own view, even without quorum
		// (3.5 made it linearizable).
		resp, err = api.MemberList(clientv3.WithRequireLeader(actx))
		done()
		cancel()
		if err == nil {
			leader = seen
			break
		}
		if !attemptTimedOut(ctx, err) && !isTransient(err) {
			return List{}, fmt.Errorf("list members: %w", err)
		}
		if serr := sleep(ctx, retryInterval); serr != nil {
			return List{}, fmt.Errorf("list members: %w", err)
		}
	}
	l := List{}
	if resp.Header != nil {
		l.ClusterID = resp.Header.ClusterId
	}
	for _, m := range resp.Members {
		l.Members = append(l.Members, Member{
			ID:         m.ID,
			Name:       m.Name,
			PeerURLs:   slices.Clone(m.PeerURLs),
			ClientURLs: slices.Clone(m.ClientURLs),
			IsLearner:  m.IsLearner,
		})
	}
	slices.SortFunc(l.Members, func(a, b Member) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	l.Leader = leader
	if l.Leader == 0 {
		l.Leader = findLeader(ctx, cli, l)
	}
	for i := range l.Members {
		l.Members[i].IsLeader = l.Members[i].ID == l.Leader && l.Leader != 0
	}
	return l, nil
}

// findLeader asks endpoints for their view of the leader, all of the
// client's own endpoints at once, then the members' client URLs; the first
// answer naming a leader wins, so a member that is down costs nothing.
func findLeader(ctx context.Context, cli *clientv3.Client, l List) uint64 {
	if id := askLeader(ctx, cli, cli.Endpoints()); id != 0 {
		return id
	}
	var eps []string
	for _, m := range l.Members {
		for _, ep := range m.ClientURLs {
			if !slices.Contains(cli.Endpoints(), ep) {
				eps = append(eps, ep)
			}
		}
	}
	return askLeader(ctx, cli, eps)
}

func askLeader(ctx context.Context, cli *clientv3.Client, eps []string) uint64 {
	if len(eps) == 0 {
		return 0
	}
	_, id := firstAnswer(ctx, cli, eps)
	return id
}

// FindByName returns the member named name; ErrNotFound if there is none.
func FindByName(ctx context.Context, cli *clientv3.Client, name string) (Member, error) {
	l, err := MemberList(ctx, cli)
	if err != nil {
		return Member{}, err
	}
	m, ok := l.ByName(name)
	if !ok {
		return Member{}, fmt.Errorf("%w: no member named %q", ErrNotFound, name)
	}
	return m, nil
}

// FindByID returns the member with that ID; ErrNotFound if there is none.
func FindByID(ctx context.Context, cli *clientv3.Client, id uint64) (Member, error) {
	l, err := MemberList(ctx, cli)
	if err != nil {
		return Member{}, err
	}
	m, ok := l.ByID(id)
	if !ok {
		return Member{}, fmt.Errorf("%w: no member with ID %s", ErrNotFound, FormatID(id))
	}
	return m, nil
}
