package recipes

import (
	"errors"
	"fmt"
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

func init() {
	// Kept out of the list in errors.go so both files can grow apart.
	sentinels = append(sentinels, ErrLeaseDeadline, ErrLeaderStuck)
}

// LossError is the error Err() returns (and the context.Cause of
// Context()) once a lock, leadership or claim was lost. It wraps the
// primitive's sentinel (ErrLockLost, ErrLeadershipLost, ErrClaimLost), so
// errors.Is keeps working; errors.As gives the details.
type LossError struct {
	Key   string // the holder's key
	Token int64  // the grant's fencing token
	// Revision is the etcd revision at which the loss was seen: that of
	// the key's deletion when the watch delivered it, otherwise a revision
	// at which the key was already gone (a refused fenced request). It is
	// 0 when the loss was inferred without etcd, from the session's
	// keep-alive ending.
	Revision int64
	err      error
}

func (e *LossError) Error() string { return e.err.Error() }

func (e *LossError) Unwrap() error { return e.err }

func lossError(key string, token, rev int64, err error) error {
	return &LossError{Key: key, Token: token, Revision: rev, err: err}
}
