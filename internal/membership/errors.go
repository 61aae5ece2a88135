package membership

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Sentinel errors. Returned errors wrap one of them (or an etcd rpctypes
// error, e.g. rpctypes.ErrUnhealthy when the cluster kept refusing a change).
var (
	// ErrNotFound: no member with that ID or name.
	ErrNotFound = errors.New("member not found")
	// ErrExists: a member with that name or peer URL is already in the
	// cluster. The error is a *ExistsError naming it.
	ErrExists = errors.New("member already exists")
	// ErrQuorum: the change would leave fewer healthy voting members than a
	// quorum needs, or the cluster has no quorum now.
	ErrQuorum = errors.New("would lose quorum")
	// ErrNoLeader: no member reports a leader.
	ErrNoLeader = errors.New("cluster has no leader")
	// ErrNotCaughtUp: the learner did not catch up with the leader in time.
	ErrNotCaughtUp = errors.New("learner has not caught up with the leader")
	// ErrNotStarted: the member was added but its process never joined (it
	// has no name and no client URLs yet).
	ErrNotStarted = errors.New("member has not started")
	// ErrInvalidID: not a hexadecimal member ID.
	ErrInvalidID = errors.New("invalid member ID")
)

// ExistsError reports a member that is already in the cluster.
type ExistsError struct {
	// By is what matched: "name" or "peer URL".
	By     string
	Value  string
	Member Member
}

func (e *ExistsError) Error() string {
	return fmt.Sprintf("member %s (%s) already has %s %s", FormatID(e.Member.ID), e.Member.DisplayName(), e.By, e.Value)
}

func (e *ExistsError) Unwrap() error { return ErrExists }

// QuorumError explains a refused removal or an unhealthy cluster.
type QuorumError struct {
	// Voters is the number of voting members (after the change, for a
	// refused change), Healthy how many of them answer, Needed the quorum.
	Voters, Healthy, Needed int
	// Unhealthy names the voting members that did not answer.
	Unhealthy []string
	Action    string
}

func (e *QuorumError) Error() string {
	msg := fmt.Sprintf("%s: %d of %d voting members healthy, quorum needs %d", e.Action, e.Healthy, e.Voters, e.Needed)
	if len(e.Unhealthy) > 0 {
		msg += " (unhealthy: " + strings.Join(e.Unhealthy, ", ") + ")"
	}
	return msg
}

func (e *QuorumError) Unwrap() error { return ErrQuorum }

// FormatID formats a member ID the way etcdctl prints it: lowercase
// hexadecimal without padding.
func FormatID(id uint64) string { return strconv.FormatUint(id, 16) }

// ParseID parses a member ID as etcdctl prints it (hexadecimal; an optional
// "0x" prefix is accepted).
func ParseID(s string) (uint64, error) {
	t := strings.TrimPrefix(strings.TrimPrefix(strings.TrimSpace(s), "0x"), "0X")
	if t == "" || len(t) > 16 {
		return 0, fmt.Errorf("%w %q: want up to 16 hexadecimal digits, e.g. 8e9e05c52164694d", ErrInvalidID, s)
	}
	id, err := strconv.ParseUint(t, 16, 64)
	if err != nil || id == 0 {
		return 0, fmt.Errorf("%w %q: want up to 16 hexadecimal digits, e.g. 8e9e05c52164694d", ErrInvalidID, s)
	}
	return id, nil
}
