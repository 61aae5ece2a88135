package recipes

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
