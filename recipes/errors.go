package recipes

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Every error returned by this package is one of the sentinels below, a
// context error (context.Canceled, context.DeadlineExceeded), or wraps one
// of them, so callers can branch with errors.Is.
var (
	// ErrLocked is returned by TryLock (and the other Try* calls) when the
	// lock cannot be taken without waiting.
	ErrLocked = errors.New("recipes: locked by another holder")

	// ErrNotHeld is returned when releasing or using a lock or leadership
	// that this value already released.
	ErrNotHeld = errors.New("recipes: not held")

	// ErrLockLost means a lock that was granted is no longer held: its key
	// was deleted or its lease expired or was revoked. Writes guarded by
	// the lock's Guard() fail from the revision at which it was lost.
	ErrLockLost = errors.New("recipes: lock lost")

	// ErrLeadershipLost is the election counterpart of ErrLockLost.
	ErrLeadershipLost = errors.New("recipes: leadership lost")

	// ErrSessionExpired means the session's lease is gone (expired,
	// revoked, or no longer kept alive), so nothing can be acquired with it.
	// A waiter whose session expires while it waits fails with this error;
	// it never wins.
	ErrSessionExpired = errors.New("recipes: session expired")

	// ErrNoLeader is returned by Election.Leader when nobody leads.
	ErrNoLeader = errors.New("recipes: no leader")

	// ErrInvalidArgument reports a bad argument (an empty prefix, a
	// semaphore limit below 1, a key outside the prefix, ...).
	ErrInvalidArgument = errors.New("recipes: invalid argument")

	// ErrClaimLost is returned by [Claim.Ack] and [Claim.Nack] when the
	// claim no longer holds its item: the consumer's session expired (the
	// item may already be with another consumer), or the claim was acked
	// or nacked before. Writes guarded by the claim's Guard() fail from
	// the revision at which it was lost.
	ErrClaimLost = errors.New("recipes: claim lost")

	// ErrBarrierHeld is returned by [Barrier.Hold] when the barrier is
	// already held under another session.
	ErrBarrierHeld = errors.New("recipes: barrier already held")

	// ErrBarrierAbandoned is returned by [Barrier.Wait] when the holder's
	// session ended without a Release: the barrier was never released, so
	// its waiters must not pass, and they do not wait for a Release that
	// will not come. [Barrier.Release] returns it too when it releases
	// such an abandoned barrier.
	ErrBarrierAbandoned = errors.New("recipes: barrier holder's session ended before release")

	// ErrBarrierFull is returned by [DoubleBarrier.Enter] when the round
	// it tried to join already has its count of participants.
	ErrBarrierFull = errors.New("recipes: double barrier round is full")

	// ErrNotEntered is returned by [DoubleBarrier.Leave] without a
	// successful Enter, and by Enter or Leave when the participant's key
	// was removed by someone else.
	ErrNotEntered = errors.New("recipes: not entered")

	// ErrClosed is returned by the calls of a [Cache] (or a watch built on
	// one) after it was closed.
	ErrClosed = errors.New("recipes: closed")

	// ErrNotNumber is returned by a [Counter] whose key holds a value that
	// is not a decimal int64.
	ErrNotNumber = errors.New("recipes: value is not a number")

	// ErrMemberExists is returned by [Group.Join] when another session's
	// member holds the name.
	ErrMemberExists = errors.New("recipes: member name taken")

	// ErrEtcd wraps an error returned by etcd or the client transport
	// that is not covered by a more specific sentinel. The original error
	// is wrapped as well, so errors.Is(err, rpctypes.ErrPermissionDenied)
	// and friends keep working.
	ErrEtcd = errors.New("recipes: etcd request failed")
)

// The sentinels of hold contexts, Lead, FencedTxn, ResumeMutex and LockAll.
// The ones for bad input wrap ErrInvalidArgument as well.
var (
	// ErrLeaseDeadline is the context.Cause of a grant's Context that
	// ended at the local deadline: the send time of the last keep-alive
	// etcd acknowledged, plus the TTL, minus the safety margin. The grant
	// may still be held, but it can no longer be proved to be.
	ErrLeaseDeadline = errors.New("recipes: local lease deadline passed")

	// ErrLeaderStuck is returned by Lead when the leader's function did
	// not return within the grace period after its context ended.
	ErrLeaderStuck = errors.New("recipes: leader function did not stop in time")

	// ErrMarginTooLarge is returned by NewSession for a safety margin that
	// is negative or not below the session's TTL.
	ErrMarginTooLarge = fmt.Errorf("%w: safety margin must be at least 0 and below the TTL", ErrInvalidArgument)

	// ErrTokenMismatch is returned by ResumeMutex when the session's key
	// under the prefix exists but carries another token.
	ErrTokenMismatch = fmt.Errorf("%w: token does not match the session's key", ErrInvalidArgument)

	// ErrSamePrefix is returned by LockAll for two mutexes on the same
	// prefix, or on nested prefixes.
	ErrSamePrefix = fmt.Errorf("%w: mutexes on the same or nested prefixes", ErrInvalidArgument)

	// ErrMixedSessions is returned by LockAll for mutexes of different
	// sessions.
	ErrMixedSessions = fmt.Errorf("%w: mutexes of different sessions", ErrInvalidArgument)

	// ErrNilFunc is returned by Lead without a function to run.
	ErrNilFunc = fmt.Errorf("%w: nil function", ErrInvalidArgument)
)

// The sentinels of the queues' delays, visibility timeouts and batches.
// They wrap ErrInvalidArgument as well.
var (
	// ErrInvalidDelay is returned by an Enqueue WithDelay below 0 or above
	// MaxDelay, or WithNotBefore more than MaxDelay ahead.
	ErrInvalidDelay = fmt.Errorf("%w: delay below 0 or above MaxDelay", ErrInvalidArgument)

	// ErrVisibilityTimeout is returned by the Claims of a Consumer made
	// WithVisibilityTimeout below 1 s.
	ErrVisibilityTimeout = fmt.Errorf("%w: visibility timeout below 1s", ErrInvalidArgument)

	// ErrBatchSize is returned by EnqueueAll, DequeueN and ClaimN for a
	// batch of fewer than 1 item or more than fits in a transaction
	// within etcd's max-txn-ops (see [Queue.MaxBatch]).
	ErrBatchSize = fmt.Errorf("%w: batch size below 1 or above what max-txn-ops allows", ErrInvalidArgument)
)

// etcdErr classifies an error coming back from clientv3. Context errors and
// this package's sentinels pass through; a missing lease becomes
// ErrSessionExpired; anything else is wrapped in ErrEtcd.
func etcdErr(op string, err error) error {
	if err == nil {
		return nil
	}
	switch {
	case isOwnSentinel(err):
		return err
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("recipes: %s: %w", op, err)
	case isLeaseNotFound(err):
		return fmt.Errorf("%w: %s: %w", ErrSessionExpired, op, err)
	}
	return fmt.Errorf("%w: %s: %w", ErrEtcd, op, err)
}

// sentinels lists every sentinel above. An error wrapping one of them is
// final: etcdErr passes it through, and no retry loop retries it.
var sentinels = []error{
	ErrLocked, ErrNotHeld, ErrLockLost, ErrLeadershipLost, ErrSessionExpired,
	ErrNoLeader, ErrInvalidArgument, ErrClaimLost, ErrBarrierHeld,
	ErrBarrierAbandoned, ErrBarrierFull, ErrNotEntered, ErrEtcd,
	// Stopping in time, Lead, LockAll, ResumeMutex:
	ErrLeaseDeadline, ErrLeaderStuck, ErrMarginTooLarge, ErrTokenMismatch,
	ErrSamePrefix, ErrMixedSessions, ErrNilFunc,
	// Cache, Group, Counter:
	ErrClosed, ErrNotNumber, ErrMemberExists,
	// Queues:
	ErrInvalidDelay, ErrVisibilityTimeout, ErrBatchSize,
}

// isOwnSentinel reports whether err is, or wraps, one of this package's
// sentinels.
func isOwnSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func isLeaseNotFound(err error) bool {
	if errors.Is(err, rpctypes.ErrLeaseNotFound) || errors.Is(err, rpctypes.ErrGRPCLeaseNotFound) {
		return true
	}
	return strings.Contains(err.Error(), rpctypes.ErrGRPCLeaseNotFound.Error()) ||
		strings.Contains(err.Error(), "requested lease not found")
}

// retryable reports whether a failed etcd request may succeed when tried
// again (a member is down, the leader changed, a watch was cut...). Errors
// that will not go away by themselves (permission denied, a missing lease,
// a closed client, bad requests) are not retryable.
func retryable(err error) bool {
	if err == nil || isOwnSentinel(err) || isLeaseNotFound(err) {
		return false
	}
	if errors.Is(err, context.Canceled) {
		// A canceled context of the caller is handled before calling
		// retryable; a Canceled coming from the server side (a stream
		// torn down by a member shutting down) is worth a retry.
		return true
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if s, ok := status.FromError(err); ok {
		switch s.Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted,
			codes.ResourceExhausted, codes.Canceled, codes.Unknown, codes.Internal:
			return true
		}
		return false
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		switch ee.Code() {
		case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted, codes.ResourceExhausted,
			codes.Unknown, codes.Internal:
			return true
		}
		return false
	}
	msg := err.Error()
	for _, s := range []string{"no leader", "leader changed", "timed out", "timeout",
		"unavailable", "connection", "transport", "EOF", "stopped", "too many requests"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
