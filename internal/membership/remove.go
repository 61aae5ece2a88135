package membership

import (
	"context"
	"errors"
	"fmt"

	pb "go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Remove removes member id from the cluster. It refuses (with a
// *QuorumError) when the voting members left would not have a healthy quorum
// (e.g. removing a healthy member of three while another is down, or the
// last voting member); when the member is the leader it moves leadership to
// the most up-to-date healthy voting member first, so the cluster does not
// wait for an election. A member that is already gone is ErrNotFound.
func Remove(ctx context.Context, cli *clientv3.Client, id uint64) error {
	h, err := Probe(ctx, cli)
	if err != nil {
		return err
	}
	target, ok := h.ByID(id)
	if !ok {
		return fmt.Errorf("remove %s: %w", FormatID(id), ErrNotFound)
	}
	if !target.IsLearner {
		voters := h.Voters() - 1
		if voters == 0 {
			return &QuorumError{Action: fmt.Sprintf("refusing to remove %s (%s), the last voting member", target.DisplayName(), FormatID(id)), Needed: 1}
		}
		healthy := h.HealthyVoters()
		if target.Healthy {
			healthy--
		}
		if need := voters/2 + 1; healthy < need {
			var unhealthy []string
			for _, m := range h.Members {
				if m.ID != id && !m.IsLearner && !m.Healthy {
					unhealthy = append(unhealthy, fmt.Sprintf("%s (%s): %v", m.DisplayName(), FormatID(m.ID), m.Err))
				}
			}
			return &QuorumError{
				Action:    fmt.Sprintf("refusing to remove %s (%s): the remaining cluster would lose quorum", target.DisplayName(), FormatID(id)),
				Voters:    voters,
				Healthy:   healthy,
				Needed:    need,
				Unhealthy: unhealthy,
			}
		}
	}
	if h.Leader == id {
		if _, err := moveLeaderAway(ctx, cli, h, id); err != nil {
			return fmt.Errorf("remove %s: %w", FormatID(id), err)
		}
	}
	return removeRetrying(ctx, cli, id)
}

func removeRetrying(ctx context.Context, cli *clientv3.Client, id uint64) error {
	rctx, cancel := context.WithTimeout(ctx, DefaultReconfigRetry)
	defer cancel()
	ambiguous := false
	var last error
	for {
		actx, acancel := attempt(rctx)
		api, _, done := pinned(actx, cli)
		_, err := api.MemberRemove(actx, id)
		done()
		acancel()
		if err == nil {
			return nil
		}
		last = err
		switch {
		case errors.Is(err, rpctypes.ErrMemberNotFound):
			if ambiguous {
				return nil
			}
			return fmt.Errorf("remove %s: %w", FormatID(id), ErrNotFound)
		case errors.Is(err, rpctypes.ErrUnhealthy), errors.Is(err, rpctypes.ErrLeaderChanged):
		case isTransient(err), attemptTimedOut(rctx, err):
			ambiguous = true
		default:
			return fmt.Errorf("remove %s: %w", FormatID(id), err)
		}
		if serr := sleep(rctx, retryInterval); serr != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("remove %s: %w (last error: %w)", FormatID(id), ctx.Err(), last)
			}
			return fmt.Errorf("remove %s: etcd kept refusing for %s: %w", FormatID(id), DefaultReconfigRetry, last)
		}
	}
}

// MoveLeaderAway transfers leadership from member id to the most up-to-date
// healthy voting member, if id is the leader, and waits until another member
// leads. It returns the leader afterwards.
func MoveLeaderAway(ctx context.Context, cli *clientv3.Client, id uint64) (uint64, error) {
	h, err := Probe(ctx, cli)
	if err != nil {
		return 0, err
	}
	if h.Leader != id {
		return h.Leader, nil
	}
	return moveLeaderAway(ctx, cli, h, id)
}

func moveLeaderAway(ctx context.Context, cli *clientv3.Client, h Health, id uint64) (uint64, error) {
	leader, _ := h.ByID(id)
	var to MemberHealth
	for _, m := range h.Members {
		if m.ID != id && !m.IsLearner && m.Healthy && (to.ID == 0 || m.RaftIndex > to.RaftIndex) {
			to = m
		}
	}
	if to.ID == 0 {
		return 0, fmt.Errorf("move leadership away from %s: no other healthy voting member", FormatID(id))
	}
	if leader.Endpoint == "" {
		return 0, fmt.Errorf("move leadership away from %s: the leader's client URLs do not answer: %v", FormatID(id), leader.Err)
	}
	// MoveLeader must reach the leader itself: a dedicated connection to
	// its endpoint with the client's credentials.
	conn, err := cli.Dial(leader.Endpoint)
	if err != nil {
		return 0, fmt.Errorf("move leadership away from %s: dial %s: %w", FormatID(id), leader.Endpoint, err)
	}
	defer conn.Close()
	mc := clientv3.NewMaintenanceFromMaintenanceClient(pb.NewMaintenanceClient(conn), cli)
	if _, err := mc.MoveLeader(ctx, to.ID); err != nil && !errors.Is(err, rpctypes.ErrNotLeader) {
		return 0, fmt.Errorf("move leadership from %s to %s: %w", FormatID(id), FormatID(to.ID), err)
	}
	wctx, cancel := context.WithTimeout(ctx, DefaultReconfigRetry)
	defer cancel()
	for {
		l, err := MemberList(wctx, cli)
		if err == nil && l.Leader != 0 && l.Leader != id {
			return l.Leader, nil
		}
		if serr := sleep(wctx, retryInterval); serr != nil {
			return 0, fmt.Errorf("move leadership away from %s: no new leader: %w", FormatID(id), serr)
		}
	}
}
