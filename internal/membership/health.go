package membership

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// MemberHealth is one member with what its own endpoint reports.
type MemberHealth struct {
	Member
	// Healthy: one of the member's client URLs answered Status, the member
	// knows a leader and reports no errors (alarms).
	Healthy bool
	// Err says why the member is not healthy.
	Err error
	// Endpoint is the client URL that answered.
	Endpoint string
	// SeenLeader is the leader as this member sees it.
	SeenLeader uint64
	// RaftIndex and RaftAppliedIndex are the member's raft progress.
	RaftIndex, RaftAppliedIndex uint64
	RaftTerm                    uint64
	// Version is the etcd server version the member reports ("3.5.36").
	Version string
	// DowngradeTarget is the version of a downgrade enabled with etcd's
	// downgrade procedure (`etcdctl downgrade enable`, etcd 3.6+), as this
	// member reports it; "" when none is in progress.
	DowngradeTarget string
	// StorageVersion is the version of the member's data format as it
	// reports it (etcd 3.6+; "" before): etcd's downgrade procedure lowers
	// it to the target once `etcdctl downgrade enable` took effect.
	StorageVersion string
	// Alarms are the alarms this member reports as raised in the cluster
	// (every member reports all of them), in the order etcd lists them.
	// An alarm stays raised until it is disarmed (`etcdctl alarm
	// disarm`): waiting does not make such a member healthy.
	Alarms []Alarm
}

// Alarm is one raised alarm: its type ("NOSPACE", "CORRUPT") and the
// member it was raised for.
type Alarm struct {
	MemberID uint64
	Type     string
}

// Health is the state of every member, like `etcdctl endpoint health
// --cluster` plus the leader.
type Health struct {
	ClusterID uint64
	// Leader is the leader most healthy members agree on (0: none).
	Leader  uint64
	Members []MemberHealth
}

// Voters counts the voting members; HealthyVoters the healthy ones.
func (h Health) Voters() int {
	n := 0
	for _, m := range h.Members {
		if !m.IsLearner {
			n++
		}
	}
	return n
}

// HealthyVoters counts the healthy voting members.
func (h Health) HealthyVoters() int {
	n := 0
	for _, m := range h.Members {
		if !m.IsLearner && m.Healthy {
			n++
		}
	}
	return n
}

// Quorum is the number of voting members a quorum needs.
func (h Health) Quorum() int { return h.Voters()/2 + 1 }

// ByID returns the health of the member with that ID.
func (h Health) ByID(id uint64) (MemberHealth, bool) {
	for _, m := range h.Members {
		if m.ID == id {
			return m, true
		}
	}
	return MemberHealth{}, false
}

// ByPeerURL returns the health of the member that has peer URL u.
func (h Health) ByPeerURL(u string) (MemberHealth, bool) {
	for _, m := range h.Members {
		if slices.Contains(m.PeerURLs, u) {
			return m, true
		}
	}
	return MemberHealth{}, false
}

// Unhealthy names the members that are not healthy ("name (id): cause").
func (h Health) Unhealthy() []string {
	var out []string
	for _, m := range h.Members {
		if !m.Healthy {
			out = append(out, fmt.Sprintf("%s (%s): %v", m.DisplayName(), FormatID(m.ID), m.Err))
		}
	}
	return out
}

// Probe asks every member for its status through its own client URLs, all at
// once. It fails only if the member list cannot be read.
func Probe(ctx context.Context, cli *clientv3.Client) (Health, error) {
	l, err := MemberList(ctx, cli)
	if err != nil {
		return Health{}, err
	}
	return probeList(ctx, cli, l), nil
}

func probeList(ctx context.Context, cli *clientv3.Client, l List) Health {
	h := Health{ClusterID: l.ClusterID, Members: make([]MemberHealth, len(l.Members))}
	var wg sync.WaitGroup
	for i, m := range l.Members {
		wg.Go(func() { h.Members[i] = probeMember(ctx, cli, m) })
	}
	wg.Wait()
	votes := map[uint64]int{}
	for _, m := range h.Members {
		if m.SeenLeader != 0 {
			votes[m.SeenLeader]++
		}
	}
	best := 0
	for id, n := range votes {
		if n > best || (n == best && id < h.Leader) {
			h.Leader, best = id, n
		}
	}
	if h.Leader == 0 {
		h.Leader = l.Leader
	}
	for i := range h.Members {
		h.Members[i].IsLeader = h.Leader != 0 && h.Members[i].ID == h.Leader
	}
	return h
}

func probeMember(ctx context.Context, cli *clientv3.Client, m Member) MemberHealth {
	mh := MemberHealth{Member: m}
	if len(m.ClientURLs) == 0 {
		mh.Err = fmt.Errorf("%w: no client URLs (its process never joined the cluster)", ErrNotStarted)
		return mh
	}
	var errs []error
	for _, ep := range m.ClientURLs {
		sctx, cancel := context.WithTimeout(ctx, probeTimeout)
		st, err := cli.Status(sctx, ep)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ep, err))
			continue
		}
		mh.Endpoint = ep
		mh.SeenLeader = st.Leader
		mh.RaftIndex = st.RaftIndex
		mh.RaftAppliedIndex = st.RaftAppliedIndex
		mh.RaftTerm = st.RaftTerm
		mh.Version = st.Version
		mh.StorageVersion = st.StorageVersion
		if di := st.DowngradeInfo; di != nil && di.GetEnabled() {
			mh.DowngradeTarget = di.GetTargetVersion()
		}
		switch {
		case st.Header != nil && st.Header.MemberId != 0 && st.Header.MemberId != m.ID:
			// Another member answers on this URL: the node runs a member
			// with a different ID (e.g. started with a stale data dir).
			mh.Err = fmt.Errorf("%s is served by member %s, not %s", ep, FormatID(st.Header.MemberId), FormatID(m.ID))
		case st.Leader == 0:
			mh.Err = fmt.Errorf("%s: %w", ep, ErrNoLeader)
		case len(st.Errors) > 0:
			mh.Err = fmt.Errorf("%s reports %v", ep, st.Errors)
			mh.Alarms = parseAlarms(st.Errors)
		default:
			mh.Healthy = true
			mh.Err = nil
		}
		return mh
	}
	mh.Err = errors.Join(errs...)
	return mh
}

// CheckQuorum probes every member and fails unless a leader is known and a
// quorum of the voting members is healthy. The Health is returned either way.
func CheckQuorum(ctx context.Context, cli *clientv3.Client) (Health, error) {
	h, err := Probe(ctx, cli)
	if err != nil {
		return h, err
	}
	if h.HealthyVoters() < h.Quorum() {
		return h, &QuorumError{Action: "cluster has no quorum", Voters: h.Voters(), Healthy: h.HealthyVoters(), Needed: h.Quorum(), Unhealthy: h.Unhealthy()}
	}
	if h.Leader == 0 {
		return h, ErrNoLeader
	}
	return h, nil
}

// alarmRE finds the member and the alarm type in an entry of a Status
// response's Errors, which etcd writes as an alarm member's text form
// ("memberID:123 alarm:NOSPACE ").
var alarmRE = regexp.MustCompile(`\bmemberID:\s*(\d+)\s+alarm:\s*([A-Z_]+)`)

// parseAlarms are the alarms named in a Status response's Errors.
func parseAlarms(errs []string) []Alarm {
	var out []Alarm
	for _, e := range errs {
		if m := alarmRE.FindStringSubmatch(e); m != nil {
			id, _ := strconv.ParseUint(m[1], 10, 64)
			out = append(out, Alarm{MemberID: id, Type: m[2]})
		}
	}
	return out
}
