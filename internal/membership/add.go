package membership

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultReconfigRetry bounds how long a member add keeps retrying while etcd
// refuses it as unsafe (rpctypes.ErrUnhealthy). etcd refuses reconfiguration
// until the leader has been connected to every voting member for 5 s, so an
// add right after a cluster formed (or after a member restarted) has to wait
// a little; one that is still refused after this long most likely faces a
// voting member that is down, which must be removed first.
const DefaultReconfigRetry = 30 * time.Second

// retryInterval is the pause between attempts of every retry loop here.
const retryInterval = 300 * time.Millisecond

// attemptTimeout bounds one request. A member that died without closing its
// connections (power loss, a cut link) keeps its connection "ready" in the
// client until TCP gives up, so a request the client balances onto it hangs;
// a bounded attempt and a retry (which the balancer sends elsewhere) get
// past it.
const attemptTimeout = 4 * time.Second

// attempt is one bounded request.
func attempt(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, attemptTimeout)
}

// attemptTimedOut: the attempt's own deadline passed while its parent
// context is still alive.
func attemptTimedOut(parent context.Context, err error) bool {
	return parent.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || isCode(err, codes.DeadlineExceeded))
}

// ValidatePeerURL checks u the way etcd will: an http or https URL with
// host:port and nothing else (no path, query or user).
func ValidatePeerURL(u string) error {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" {
		return fmt.Errorf("%q is not a URL: write it as scheme://host:port, e.g. https://10.0.0.4:2380", u)
	}
	if p.Scheme != "http" && p.Scheme != "https" {
		return fmt.Errorf("%q: the scheme must be http or https", u)
	}
	if _, port, err := net.SplitHostPort(p.Host); err != nil || port == "" {
		return fmt.Errorf("%q: the address must have the form host:port, e.g. https://10.0.0.4:2380", u)
	}
	if (p.Path != "" && p.Path != "/") || p.RawQuery != "" || p.Fragment != "" || p.User != nil {
		return fmt.Errorf("%q: a peer URL is scheme://host:port only, without path, query or user", u)
	}
	return nil
}

// ValidatePeerURLs checks a member's peer URL list: not empty, each valid,
// no duplicates.
func ValidatePeerURLs(urls []string) error {
	if len(urls) == 0 {
		return errors.New("at least one peer URL is needed")
	}
	var errs []error
	for i, u := range urls {
		if err := ValidatePeerURL(u); err != nil {
			errs = append(errs, err)
		}
		if slices.Contains(urls[:i], u) {
			errs = append(errs, fmt.Errorf("%q is listed twice", u))
		}
	}
	return errors.Join(errs...)
}

// AddLearner adds a non-voting member with the given peer URLs and returns
// it (unstarted: no name or client URLs yet). Start its process with
// initial-cluster-state "existing", an empty data dir and the initial
// cluster of List.InitialCluster, then WaitCaughtUp and Promote.
//
// A peer URL that a member already has gives a *ExistsError. While etcd
// refuses the change as unsafe (rpctypes.ErrUnhealthy), the add is retried
// for DefaultReconfigRetry (or until ctx ends).
func AddLearner(ctx context.Context, cli *clientv3.Client, peerURLs []string) (Member, error) {
	return add(ctx, cli, peerURLs, true)
}

// AddVoter adds a voting member directly. Until its process joins, the
// cluster counts it against the quorum: prefer AddLearner.
func AddVoter(ctx context.Context, cli *clientv3.Client, peerURLs []string) (Member, error) {
	return add(ctx, cli, peerURLs, false)
}

func add(ctx context.Context, cli *clientv3.Client, peerURLs []string, learner bool) (Member, error) {
	if err := ValidatePeerURLs(peerURLs); err != nil {
		return Member{}, err
	}
	l, err := MemberList(ctx, cli)
	if err != nil {
		return Member{}, err
	}
	for _, u := range peerURLs {
		if m, ok := l.ByPeerURL(u); ok {
			return Member{}, &ExistsError{By: "peer URL", Value: u, Member: m}
		}
	}
	rctx, cancel := context.WithTimeout(ctx, DefaultReconfigRetry)
	defer cancel()
	ambiguous := false // an earlier attempt may have been applied
	var last error
	for {
		var resp *clientv3.MemberAddResponse
		actx, acancel := attempt(rctx)
		api, _, done := pinned(actx, cli)
		if learner {
			resp, err = api.MemberAddAsLearner(actx, peerURLs)
		} else {
			resp, err = api.MemberAdd(actx, peerURLs)
		}
		done()
		acancel()
		if err == nil {
			m := resp.Member
			return Member{ID: m.ID, Name: m.Name, PeerURLs: slices.Clone(m.PeerURLs), ClientURLs: slices.Clone(m.ClientURLs), IsLearner: m.IsLearner}, nil
		}
		last = err
		switch {
		case errors.Is(err, rpctypes.ErrPeerURLExist), errors.Is(err, rpctypes.ErrMemberExist):
			l, lerr := MemberList(ctx, cli)
			if lerr != nil {
				return Member{}, fmt.Errorf("add member: %w (and then: %w)", err, lerr)
			}
			if m, ok := l.ByPeerURL(peerURLs[0]); ok {
				if ambiguous && !m.Started() && m.IsLearner == learner {
					return m, nil // our earlier attempt went through
				}
				return Member{}, &ExistsError{By: "peer URL", Value: peerURLs[0], Member: m}
			}
			return Member{}, fmt.Errorf("add member: %w", err)
		case errors.Is(err, rpctypes.ErrUnhealthy):
			// Refused as unsafe; retry below.
		case errors.Is(err, rpctypes.ErrMemberNotEnoughStarted):
			return Member{}, fmt.Errorf("add voting member: %w: adding it would leave too few started members for a quorum; remove members that are down first, or add it as a learner", err)
		case errors.Is(err, rpctypes.ErrTooManyLearners):
			return Member{}, fmt.Errorf("add learner: %w: promote or remove the existing learner first", err)
		case isTransient(err), attemptTimedOut(rctx, err):
			ambiguous = true
		default:
			return Member{}, fmt.Errorf("add member: %w", err)
		}
		if err := sleep(rctx, retryInterval); err != nil {
			if ctx.Err() != nil {
				return Member{}, fmt.Errorf("add member: %w (last error: %w)", ctx.Err(), last)
			}
			if errors.Is(last, rpctypes.ErrUnhealthy) {
				return Member{}, fmt.Errorf("add member: etcd kept refusing the change for %s: %w; it does so while a voting member is unreachable (remove dead members first: `etcdctl member remove`, or the etcd_member resource of that member) or for 5s after the cluster formed", DefaultReconfigRetry, last)
			}
			return Member{}, fmt.Errorf("add member: %w", last)
		}
	}
}

// isTransient: the request may or may not have reached the leader.
func isTransient(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	return errors.Is(err, rpctypes.ErrTimeout) || errors.Is(err, rpctypes.ErrTimeoutDueToLeaderFail) ||
		errors.Is(err, rpctypes.ErrTimeoutDueToConnectionLost) || errors.Is(err, rpctypes.ErrNoLeader) ||
		errors.Is(err, rpctypes.ErrLeaderChanged) || errors.Is(err, rpctypes.ErrStopped) ||
		isUnavailable(err)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func isUnavailable(err error) bool { return isCode(err, codes.Unavailable) }

func isCode(err error, c codes.Code) bool {
	s, ok := status.FromError(err)
	return ok && s.Code() == c
}
