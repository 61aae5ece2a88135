package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ConfigError is a problem with one provider setting.
type ConfigError struct {
	Source
	// Index is the position in a list attribute (endpoints) when HasIndex.
	Index    int
	HasIndex bool
	Err      error
}

func (e *ConfigError) Error() string {
	where := e.Source.String()
	if e.HasIndex {
		if e.Env != "" {
			where = fmt.Sprintf("%s (entry %d of %s)", e.Attribute, e.Index+1, e.Env)
		} else {
			where = fmt.Sprintf("%s[%d]", e.Attribute, e.Index)
		}
	}
	return where + ": " + e.Err.Error()
}

func (e *ConfigError) Unwrap() error { return e.Err }

// Sentinel errors. Describe wraps them, so callers can test with errors.Is.
var (
	// ErrUnreachable: no endpoint answered within the timeout.
	ErrUnreachable = errors.New("etcd cluster unreachable")
	// ErrAuthFailed: the user name or password was rejected, or the cluster
	// requires credentials that were not given.
	ErrAuthFailed = errors.New("etcd authentication failed")
	// ErrPermissionDenied: the user lacks a role granting the operation.
	ErrPermissionDenied = errors.New("etcd permission denied")
	// ErrLeaseNotFound: the lease given does not exist (expired or revoked).
	ErrLeaseNotFound = errors.New("lease not found")
)

// Describe turns an error from a clientv3 call into one that says what
// failed, on which key, and what to do. op is a short verb phrase such as
// "read" or "write"; key may be empty when the operation is not on a key.
// The password never appears in the result.
func (c *Client) Describe(err error, op, key string) error {
	if err == nil {
		return nil
	}
	what := op
	if key != "" {
		what = fmt.Sprintf("%s key %q", op, key)
	}
	user := c.username
	switch {
	case errors.Is(err, rpctypes.ErrPermissionDenied), errors.Is(err, rpctypes.ErrGRPCPermissionDenied):
		if user == "" && c.certUser != "" && key != "" {
			return fmt.Errorf("%s: %w: etcd user %q (the common name of the client certificate) has no role that grants this on key %q; grant one (etcd_role / etcdctl role grant-permission) or use another certificate", what, ErrPermissionDenied, c.certUser, key)
		}
		if user == "" && c.certUser != "" {
			return fmt.Errorf("%s: %w: etcd user %q (the common name of the client certificate) is not allowed to do this, or does not exist; use a certificate of a user with the needed role (root for cluster-wide operations)", what, ErrPermissionDenied, c.certUser)
		}
		if user == "" {
			return fmt.Errorf("%s: %w: the cluster has authentication enabled and the provider connects without a user; set username and password (or %s)", what, ErrPermissionDenied, EnvUser)
		}
		if key != "" {
			return fmt.Errorf("%s: %w: etcd user %q has no role that grants this on key %q; grant one (etcd_role / etcdctl role grant-permission) or use another user", what, ErrPermissionDenied, user, key)
		}
		return fmt.Errorf("%s: %w: etcd user %q is not allowed to do this; use a user with the needed role (root for cluster-wide operations)", what, ErrPermissionDenied, user)

	case errors.Is(err, rpctypes.ErrAuthFailed), errors.Is(err, rpctypes.ErrGRPCAuthFailed):
		return fmt.Errorf("%s: %w for user %q (set by %s): wrong user name or password; check username/password (or %s/%s)", what, ErrAuthFailed, user, c.usernameSource, EnvUser, EnvPassword)

	case errors.Is(err, rpctypes.ErrUserEmpty), errors.Is(err, rpctypes.ErrGRPCUserEmpty):
		return fmt.Errorf("%s: %w: the cluster has authentication enabled but no user is configured; set username and password (or %s)", what, ErrAuthFailed, EnvUser)

	case errors.Is(err, rpctypes.ErrInvalidAuthToken), errors.Is(err, rpctypes.ErrGRPCInvalidAuthToken),
		errors.Is(err, rpctypes.ErrAuthOldRevision), errors.Is(err, rpctypes.ErrGRPCAuthOldRevision):
		return fmt.Errorf("%s: %w for user %q: the auth token was rejected (%v); run again", what, ErrAuthFailed, user, err)

	case errors.Is(err, rpctypes.ErrLeaseNotFound), errors.Is(err, rpctypes.ErrGRPCLeaseNotFound):
		return fmt.Errorf("%s: %w: the lease does not exist (it expired or was revoked); grant a new lease and use its ID", what, ErrLeaseNotFound)

	case errors.Is(err, rpctypes.ErrRequestTooLarge), errors.Is(err, rpctypes.ErrGRPCRequestTooLarge):
		return fmt.Errorf("%s: %w; the value exceeds the cluster's max-request-bytes", what, err)

	case errors.Is(err, rpctypes.ErrNoSpace), errors.Is(err, rpctypes.ErrGRPCNoSpace):
		return fmt.Errorf("%s: %w; the cluster's database is full: compact, defragment and disarm the NOSPACE alarm", what, err)

	case errors.Is(err, context.DeadlineExceeded), isCode(err, codes.DeadlineExceeded), isCode(err, codes.Unavailable):
		timeoutAttr := c.timeoutAttr
		if timeoutAttr == "" {
			timeoutAttr = AttrRequestTimeout
		}
		return fmt.Errorf("%s: %w: no answer from %s within %s (%s): %v; check that the endpoints are right and reachable, the cluster has quorum, and the TLS settings match the server",
			what, ErrUnreachable, strings.Join(c.endpoints, ", "), c.requestTimeout, timeoutAttr, err)

	case errors.Is(err, context.Canceled):
		return fmt.Errorf("%s: canceled: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

func isCode(err error, code codes.Code) bool {
	s, ok := status.FromError(err)
	return ok && s.Code() == code
}
