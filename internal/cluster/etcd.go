package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/membership"
)

// tlsConfig is the client TLS configuration, nil for a plain cluster.
func (s Spec) tlsConfig() (*tls.Config, error) {
	if s.TLS == nil {
		return nil, nil
	}
	cert, err := s.TLS.Client.TLSCertificate()
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	pool, err := s.TLS.trustPool()
	if err != nil {
		return nil, err
	}
	return &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// client opens an etcd client on the given endpoints (the spec's when
// none). Connecting is lazy: it never fails because members are down.
func (c *Cluster) client(endpoints ...string) (*clientv3.Client, error) {
	if len(endpoints) == 0 {
		endpoints = c.spec.Endpoints()
	}
	tc, err := c.spec.tlsConfig()
	if err != nil {
		return nil, err
	}
	return clientv3.New(clientv3.Config{
		Endpoints:            endpoints,
		TLS:                  tc,
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		Logger:               zap.NewNop(),
	})
}

// Member is one member of the cluster as the etcd_cluster resource reports
// it.
type Member struct {
	ID         string
	Name       string
	PeerURLs   []string
	ClientURLs []string
	IsLearner  bool
	IsLeader   bool
	Healthy    bool
	// Version is the etcd server version the member reports, "" when it
	// does not answer.
	Version string
}

// Status is what the cluster reports.
type Status struct {
	ClusterID string
	Leader    string
	// Members in member-list order (sorted by ID).
	Members []Member
	// DowngradeTarget is the version of a downgrade enabled through etcd's
	// downgrade procedure (etcd 3.6+), "" when none is in progress.
	DowngradeTarget string
	// Missing names the spec's nodes that have no member in the cluster
	// (removed out of band, or never joined).
	Missing []string
	// Warnings are problems that did not stop the operation, e.g. an
	// unhealthy member.
	Warnings []string
}

// member returns the member that advertises peerURL.
func (st *Status) member(peerURL string) (Member, bool) {
	for _, m := range st.Members {
		if slices.Contains(m.PeerURLs, peerURL) {
			return m, true
		}
	}
	return Member{}, false
}

// ErrUnreachable means no member of the cluster answered.
var ErrUnreachable = errors.New("no member of the cluster answered")

// Status reads the member list and every member's health through the
// cluster's client URLs. It changes nothing and needs no SSH.
func (c *Cluster) Status(ctx context.Context) (*Status, error) {
	cli, err := c.client()
	if err != nil {
		return nil, err
	}
	defer cli.Close()
	return c.status(ctx, cli)
}

func (c *Cluster) status(ctx context.Context, cli *clientv3.Client) (*Status, error) {
	lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	h, err := membership.Probe(lctx, cli)
	if err != nil {
		return nil, fmt.Errorf("%w (%s): %v", ErrUnreachable, strings.Join(c.spec.Endpoints(), ", "), err)
	}
	st := &Status{ClusterID: membership.FormatID(h.ClusterID)}
	if h.Leader != 0 {
		st.Leader = membership.FormatID(h.Leader)
	}
	for _, m := range h.Members {
		st.Members = append(st.Members, Member{
			ID: membership.FormatID(m.ID), Name: m.Name, PeerURLs: m.PeerURLs, ClientURLs: m.ClientURLs,
			IsLearner: m.IsLearner, IsLeader: m.ID == h.Leader, Healthy: m.Healthy, Version: m.Version,
		})
		if m.DowngradeTarget != "" {
			st.DowngradeTarget = m.DowngradeTarget
		}
		if !m.Healthy {
			cause := "not healthy"
			if m.Err != nil {
				cause = m.Err.Error()
			}
			st.Warnings = append(st.Warnings, fmt.Sprintf("member %s (%s) is not healthy: %s", m.DisplayName(), membership.FormatID(m.ID), cause))
		}
	}
	if h.Leader == 0 {
		st.Warnings = append(st.Warnings, "the cluster has no leader")
	}
	for _, n := range c.spec.Nodes {
		if _, ok := st.member(c.spec.PeerURL(n)); !ok {
			st.Missing = append(st.Missing, n.Name)
		}
	}
	return st, nil
}

// healthy tells whether every node of the spec runs a started, voting,
// healthy member and a leader is known; otherwise it says what is missing.
func (c *Cluster) healthy(h membership.Health, nodes []Node, learnersOK bool) (bool, string) {
	if h.Leader == 0 {
		return false, "no leader elected yet"
	}
	var waiting []string
	for _, n := range nodes {
		var mh *membership.MemberHealth
		for i := range h.Members {
			if slices.Contains(h.Members[i].PeerURLs, c.spec.PeerURL(n)) {
				mh = &h.Members[i]
			}
		}
		switch {
		case mh == nil:
			waiting = append(waiting, n.Name+": not a member")
		case !mh.Started():
			waiting = append(waiting, n.Name+": not started")
		case mh.IsLearner && !learnersOK:
			waiting = append(waiting, n.Name+": still a learner")
		case !mh.Healthy:
			cause := "not healthy"
			if mh.Err != nil {
				cause = mh.Err.Error()
			}
			waiting = append(waiting, n.Name+": "+cause)
		}
	}
	if len(waiting) > 0 {
		return false, strings.Join(waiting, "; ")
	}
	return true, ""
}

// waitHealthy waits until every node in nodes is a healthy voting member
// and a leader is known. While waiting it checks over SSH that the nodes
// are still reachable and their services running, and fails early, naming
// the node, when one is not.
func (c *Cluster) waitHealthy(ctx context.Context, cli *clientv3.Client, states []*nodeState, learnersOK bool) (membership.Health, error) {
	nodes := make([]Node, len(states))
	for i, st := range states {
		nodes[i] = st.n
	}
	begin := time.Now()
	var last string
	var alarmedSince time.Time // since when a raised alarm was seen in every probe
	for i := 0; ; i++ {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		h, err := membership.Probe(pctx, cli)
		cancel()
		if err == nil {
			ok, why := c.healthy(h, nodes, learnersOK)
			if ok {
				c.progress("cluster healthy", "leader", membership.FormatID(h.Leader), "waited", time.Since(begin).Round(time.Millisecond).String())
				return h, nil
			}
			last = why
			if ae := alarmed(h); ae == nil {
				alarmedSince = time.Time{}
			} else if alarmedSince.IsZero() {
				alarmedSince = time.Now()
			} else if time.Since(alarmedSince) >= alarmGrace {
				return h, ae
			}
		} else {
			last = err.Error()
		}
		if i%4 == 3 {
			if err := c.checkServices(ctx, states); err != nil {
				return h, err
			}
			c.progress("waiting for the cluster to become healthy", "state", last)
		}
		select {
		case <-ctx.Done():
			var b strings.Builder
			fmt.Fprintf(&b, "the cluster did not become healthy within %s: %s", time.Since(begin).Round(time.Second), last)
			for _, st := range states {
				if tail := logTail(ctx, st, 15); tail != "" {
					fmt.Fprintf(&b, "\n\nnode %q (%s)%s", st.n.Name, st.n.Host, tail)
				}
			}
			return h, errors.New(b.String())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// alarmGrace is how long waitHealthy lets an alarm stay raised before it
// gives up. An alarm stays until it is disarmed; the grace covers a member
// that has not yet applied a disarm the apply itself made (maintenance).
const alarmGrace = 15 * time.Second

// AlarmError reports alarms raised in the cluster (`etcdctl alarm list`),
// which keep it from becoming healthy however long the apply waits.
type AlarmError struct {
	// Alarms maps each alarm type ("NOSPACE") to the members it was
	// raised for, by name.
	Alarms map[string][]string
}

func (e *AlarmError) Error() string {
	types := slices.Sorted(maps.Keys(e.Alarms))
	var b strings.Builder
	for i, a := range types {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "etcd's %s alarm is raised for %s", a, strings.Join(e.Alarms[a], ", "))
	}
	b.WriteString(". An alarm stays raised until it is disarmed, so the cluster cannot become healthy by waiting. ")
	for _, a := range types {
		_, detail := AlarmAdvice(a)
		fmt.Fprintf(&b, "%s: %s ", a, detail)
	}
	b.WriteString("Then apply again.")
	return b.String()
}

// AlarmAdvice says what an etcd alarm means and how to clear it: the
// summary is a title, the detail says what to do. AlarmError and the
// provider's plan warnings both use it.
func AlarmAdvice(alarm string) (summary, detail string) {
	switch alarm {
	case "NOSPACE":
		return "etcd member out of space (NOSPACE alarm)",
			"the member's database reached the space quota (quota-backend-bytes), and the cluster refuses every write. " +
				"Free space, then disarm the alarm: delete or compact data (`etcdctl compact REVISION`) and add a " +
				"maintenance block to etcd_cluster, whose next apply defragments the members and disarms NOSPACE before " +
				"anything else; or defragment each member yourself (`etcdctl defrag --endpoints URL`) and run " +
				"`etcdctl alarm disarm`. Raise settings[\"quota-backend-bytes\"] if the data needs it."
	case "CORRUPT":
		return "etcd member data corrupt (CORRUPT alarm)",
			"the member's data differs from the other members', and the cluster refuses writes. Take a snapshot from a " +
				"healthy member (`etcdctl snapshot save`), then replace the corrupt member: remove its node from `nodes` " +
				"and apply, wipe its data dir, add the node back and apply; then run `etcdctl alarm disarm`."
	}
	return "etcd alarm " + alarm,
		"etcd reports alarm " + alarm + ". See `etcdctl alarm list`, resolve its cause, then run `etcdctl alarm disarm`."
}

// alarmed returns an AlarmError when a member reports a raised alarm.
func alarmed(h membership.Health) *AlarmError {
	var e *AlarmError
	for _, m := range h.Members {
		for _, a := range m.Alarms {
			if e == nil {
				e = &AlarmError{Alarms: map[string][]string{}}
			}
			name := "member " + membership.FormatID(a.MemberID)
			if am, ok := h.ByID(a.MemberID); ok {
				name = am.DisplayName()
			}
			if !slices.Contains(e.Alarms[a.Type], name) {
				e.Alarms[a.Type] = append(e.Alarms[a.Type], name)
			}
		}
	}
	return e
}

// checkServices fails, naming the node, when a node cannot be reached over
// SSH or its service is not installed any more.
func (c *Cluster) checkServices(ctx context.Context, states []*nodeState) error {
	return parallelStates(states, func(st *nodeState) error {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		ss, err := st.svc.Status(sctx)
		if err != nil {
			c.dropConn(st.n)
			return fmt.Errorf("lost contact while waiting for the member: %w", err)
		}
		if !ss.Installed {
			return errors.New("the member's service disappeared while waiting for it")
		}
		return nil
	})
}

func parallelStates(states []*nodeState, f func(st *nodeState) error) error {
	nodes := make([]Node, len(states))
	byName := map[string]*nodeState{}
	for i, st := range states {
		nodes[i] = st.n
		byName[st.n.Name] = st
	}
	return parallel(nodes, func(n Node) error { return f(byName[n.Name]) })
}
