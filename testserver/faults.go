package testserver

import (
	"context"
	"errors"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/client/pkg/v3/types"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ErrMemberStopped is returned when an operation needs a running member.
var ErrMemberStopped = errors.New("member is stopped")

// ErrMemberRunning is returned by RestartMember for a member that runs.
var ErrMemberRunning = errors.New("member is running")

// StopMember stops member name, handing leadership to another member first
// if it leads. Its data directory, ports and URLs are kept for
// RestartMember. If ctx ends first, StopMember returns its error and the
// stop completes in the background (other life-cycle calls wait for it).
func (c *Cluster) StopMember(ctx context.Context, name string) error {
	m, err := c.member(name)
	if err != nil {
		return err
	}
	if err := c.acquire(ctx); err != nil {
		return fmt.Errorf("testserver: stop %s: %w", name, err)
	}
	e := m.running()
	if e == nil {
		c.release()
		return fmt.Errorf("testserver: stop %s: %w", name, ErrMemberStopped)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer c.release()
		// Bounded by etcd's request timeout; a failure still stops.
		_ = e.Server.TryTransferLeadershipOnShutdown()
		m.stop()
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("testserver: stop %s: %w", name, ctx.Err())
	}
}

// KillLeader hard-stops the current leader, without handing leadership over,
// and returns it. The others elect a new leader once the election timeout
// passes; RestartMember brings the old one back.
func (c *Cluster) KillLeader(ctx context.Context) (Member, error) {
	if err := c.acquire(ctx); err != nil {
		return Member{}, fmt.Errorf("testserver: kill leader: %w", err)
	}
	defer c.release()
	if _, err := c.Leader(ctx); err != nil {
		return Member{}, fmt.Errorf("testserver: kill leader: %w", err)
	}
	m := c.currentLeader()
	if m == nil {
		return Member{}, errors.New("testserver: kill leader: leader stepped down")
	}
	m.stop()
	return m.info(), nil
}

// RestartMember starts a stopped member again with its data, on the same
// URLs, and waits until it has rejoined and serves a linearizable read.
func (c *Cluster) RestartMember(ctx context.Context, name string) error {
	m, err := c.member(name)
	if err != nil {
		return err
	}
	if err := c.acquire(ctx); err != nil {
		return fmt.Errorf("testserver: restart %s: %w", name, err)
	}
	defer c.release()
	if m.running() != nil {
		return fmt.Errorf("testserver: restart %s: %w", name, ErrMemberRunning)
	}
	if err := m.start(""); err != nil {
		return fmt.Errorf("testserver: restart %s: %w", name, err)
	}
	c.applyPartitions(m)
	if err := m.waitStarted(ctx); err != nil {
		return fmt.Errorf("testserver: restart %s: %w", name, err)
	}
	if err := c.waitMemberServes(ctx, m); err != nil {
		return fmt.Errorf("testserver: restart %s: %w", name, err)
	}
	return nil
}

// Partition cuts member name off from all other members in both
// directions: raft messages between them are dropped. Clients can still
// reach the member; its linearizable reads and writes fail or time out once
// it notices it has no leader (one election timeout), while the majority
// elects a leader and goes on. The partition survives member restarts until
// Heal.
func (c *Cluster) Partition(name string) error {
	return c.setPartitioned(name, true)
}

// Heal undoes Partition; the member catches up with the leader.
func (c *Cluster) Heal(name string) error {
	return c.setPartitioned(name, false)
}

func (c *Cluster) setPartitioned(name string, cut bool) error {
	m, err := c.member(name)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.partitioned = cut
	m.mu.Unlock()
	for _, o := range c.snapshotMembers() {
		if o == m {
			continue
		}
		setCut(m, o.memberID(), cut)
		setCut(o, m.memberID(), cut)
	}
	return nil
}

// applyPartitions cuts a (re)started member off from the partitioned
// members, or from all when it is partitioned itself.
func (c *Cluster) applyPartitions(m *member) {
	m.mu.Lock()
	self := m.partitioned
	m.mu.Unlock()
	for _, o := range c.snapshotMembers() {
		if o == m {
			continue
		}
		o.mu.Lock()
		other := o.partitioned
		o.mu.Unlock()
		if self || other {
			setCut(m, o.memberID(), true)
		}
	}
}

// setCut drops (or lets through again) raft messages between m and peer,
// if m runs; the transports of the others are set by the caller.
func setCut(m *member, peer uint64, cut bool) {
	e := m.running()
	if e == nil || peer == 0 {
		return
	}
	if cut {
		e.Server.CutPeer(types.ID(peer))
	} else {
		e.Server.MendPeer(types.ID(peer))
	}
}

// RevokeLease revokes lease id, as if it had expired: keys attached to it
// are deleted and a concurrency.Session on it ends (its Done channel
// closes) right away.
//
// On its own, a client that keeps the lease alive would only learn that
// the lease is gone from its next keep-alive, up to a third of the TTL
// later. So RevokeLease also sends the answer etcd gives to a keep-alive of
// an unknown lease (TTL 0) on every open keep-alive stream of the cluster,
// and on keep-alive streams opened later (clients ignore leases they do not
// hold; do not grant a new lease with the ID of a revoked one).
func (c *Cluster) RevokeLease(ctx context.Context, id clientv3.LeaseID) error {
	cli := c.Client()
	if cli == nil {
		return errors.New("testserver: cluster is not running")
	}
	resp, err := cli.Revoke(ctx, id)
	if err != nil {
		return fmt.Errorf("testserver: revoke lease %x: %w", int64(id), err)
	}
	c.expireLease(int64(id), resp.Header)
	return nil
}

// maxRevoked bounds the revoked leases announced to new keep-alive streams.
const maxRevoked = 1024

// revokedLease is the keep-alive answer for a lease RevokeLease revoked.
type revokedLease struct {
	id     int64
	header *pb.ResponseHeader
}

func (r revokedLease) send(s *ctxStream) {
	_ = s.SendMsg(&pb.LeaseKeepAliveResponse{Header: r.header, ID: r.id, TTL: 0})
}

// expireLease tells every open keep-alive stream that lease id is gone. A
// client whose stream is being re-established (for example after a member
// stopped) hears it when its new stream opens.
func (c *Cluster) expireLease(id int64, header *pb.ResponseHeader) {
	r := revokedLease{id: id, header: header}
	c.kaMu.Lock()
	c.revoked = append(c.revoked, r)
	if len(c.revoked) > maxRevoked {
		c.revoked = c.revoked[len(c.revoked)-maxRevoked:]
	}
	streams := make([]*ctxStream, 0, len(c.keepAlives))
	for s := range c.keepAlives {
		streams = append(streams, s)
	}
	c.kaMu.Unlock()
	for _, s := range streams {
		r.send(s)
	}
}

// openKeepAlive registers a new LeaseKeepAlive stream and announces the
// leases revoked so far on it; clients ignore leases they do not hold.
func (c *Cluster) openKeepAlive(s *ctxStream) {
	c.kaMu.Lock()
	if c.keepAlives == nil {
		c.keepAlives = map[*ctxStream]struct{}{}
	}
	c.keepAlives[s] = struct{}{}
	revoked := append([]revokedLease(nil), c.revoked...)
	c.kaMu.Unlock()
	for _, r := range revoked {
		r.send(s)
	}
}

func (c *Cluster) closeKeepAlive(s *ctxStream) {
	c.kaMu.Lock()
	delete(c.keepAlives, s)
	c.kaMu.Unlock()
}
