package membership

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// DefaultCatchUp bounds WaitStarted, WaitCaughtUp and Promote when ctx has
// no deadline: a learner replays the leader's snapshot and log before it
// can vote, which takes about as long as copying the database.
const DefaultCatchUp = 5 * time.Minute

// readyRatio mirrors etcd's own promotion check: a learner whose raft log
// reached 90% of the leader's is close enough.
const readyNum, readyDen = 9, 10

func withDefault(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// WaitStarted waits until the member's process has joined the cluster (the
// member list shows its name and client URLs) and returns it.
func WaitStarted(ctx context.Context, cli *clientv3.Client, id uint64) (Member, error) {
	ctx, cancel := withDefault(ctx, DefaultCatchUp)
	defer cancel()
	for {
		l, err := MemberList(ctx, cli)
		if err == nil {
			m, ok := l.ByID(id)
			if !ok {
				return Member{}, fmt.Errorf("%w: no member with ID %s", ErrNotFound, FormatID(id))
			}
			if m.Started() {
				return m, nil
			}
		}
		if serr := sleep(ctx, retryInterval); serr != nil {
			return Member{}, fmt.Errorf("member %s: %w: %w", FormatID(id), ErrNotStarted, serr)
		}
	}
}

// WaitCaughtUp waits until the learner id has started and its raft log is
// close to the leader's (90%, etcd's own promotion threshold), asking the
// learner and the leader through their client URLs. A member that is no
// longer a learner counts as caught up.
func WaitCaughtUp(ctx context.Context, cli *clientv3.Client, id uint64) error {
	ctx, cancel := withDefault(ctx, DefaultCatchUp)
	defer cancel()
	var last string
	for {
		l, err := MemberList(ctx, cli)
		if err != nil {
			last = err.Error() // transient: retried
		} else {
			done, progress, err := caughtUp(ctx, cli, l, id)
			if err != nil {
				return err
			}
			if done {
				return nil
			}
			last = progress
		}
		if serr := sleep(ctx, retryInterval); serr != nil {
			return fmt.Errorf("member %s: %w (%s): %w", FormatID(id), ErrNotCaughtUp, last, serr)
		}
	}
}

func caughtUp(ctx context.Context, cli *clientv3.Client, l List, id uint64) (done bool, progress string, err error) {
	m, ok := l.ByID(id)
	if !ok {
		return false, "", fmt.Errorf("%w: no member with ID %s", ErrNotFound, FormatID(id))
	}
	if !m.IsLearner {
		return true, "", nil
	}
	if !m.Started() {
		return false, "the learner's process has not joined yet", nil
	}
	leader, ok := l.ByID(l.Leader)
	if !ok {
		return false, "no leader", nil
	}
	lh := probeMember(ctx, cli, leader)
	mh := probeMember(ctx, cli, m)
	switch {
	case lh.Endpoint == "":
		return false, fmt.Sprintf("leader does not answer: %v", lh.Err), nil
	case mh.Endpoint == "":
		return false, fmt.Sprintf("learner does not answer: %v", mh.Err), nil
	}
	progress = fmt.Sprintf("learner at raft index %d, leader at %d", mh.RaftIndex, lh.RaftIndex)
	return mh.RaftIndex > 0 && mh.RaftIndex*readyDen >= lh.RaftIndex*readyNum, progress, nil
}

// Promote makes the learner id a voting member, retrying while etcd says it
// is not ready (still catching up) or the cluster is briefly unhealthy.
// Promoting a member that already votes succeeds.
func Promote(ctx context.Context, cli *clientv3.Client, id uint64) error {
	ctx, cancel := withDefault(ctx, DefaultCatchUp)
	defer cancel()
	var last error
	for {
		actx, acancel := attempt(ctx)
		api, _, done := pinned(actx, cli)
		_, err := api.MemberPromote(actx, id)
		done()
		acancel()
		if err == nil {
			return nil
		}
		last = err
		switch {
		case errors.Is(err, rpctypes.ErrMemberNotLearner):
			return nil
		case errors.Is(err, rpctypes.ErrMemberNotFound):
			return fmt.Errorf("promote %s: %w", FormatID(id), ErrNotFound)
		case errors.Is(err, rpctypes.ErrMemberLearnerNotReady), errors.Is(err, rpctypes.ErrUnhealthy),
			errors.Is(err, rpctypes.ErrMemberNotEnoughStarted), isTransient(err), attemptTimedOut(ctx, err):
		default:
			return fmt.Errorf("promote %s: %w", FormatID(id), err)
		}
		if serr := sleep(ctx, retryInterval); serr != nil {
			if errors.Is(last, rpctypes.ErrMemberLearnerNotReady) {
				return fmt.Errorf("promote %s: %w: %w (is its process running and can it reach the leader's peer URL?)", FormatID(id), ErrNotCaughtUp, serr)
			}
			return fmt.Errorf("promote %s: %w (last error: %w)", FormatID(id), serr, last)
		}
	}
}
