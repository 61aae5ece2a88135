package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestDescribe(t *testing.T) {
	c := &Client{
		endpoints:      []string{"https://10.0.0.1:2379", "https://10.0.0.2:2379"},
		username:       "app",
		usernameSource: Source{Attribute: AttrUsername, Env: EnvUser},
		requestTimeout: 3 * time.Second,
	}
	anon := &Client{endpoints: c.endpoints, requestTimeout: time.Second}
	for _, tc := range []struct {
		name     string
		c        *Client
		err      error
		sentinel error
		contains []string
	}{
		{"permission denied", c, rpctypes.ErrPermissionDenied, ErrPermissionDenied,
			[]string{`write key "/app/x"`, `user "app"`, `on key "/app/x"`, "grant"}},
		{"permission denied grpc form", c, rpctypes.ErrGRPCPermissionDenied, ErrPermissionDenied, []string{`user "app"`}},
		{"permission denied without user", anon, rpctypes.ErrPermissionDenied, ErrPermissionDenied, []string{"without a user", "set username"}},
		{"auth failed", c, rpctypes.ErrAuthFailed, ErrAuthFailed,
			[]string{`user "app"`, "username (from ETCDCTL_USER)", "wrong user name or password"}},
		{"user empty", anon, rpctypes.ErrUserEmpty, ErrAuthFailed, []string{"no user is configured"}},
		{"deadline", c, context.DeadlineExceeded, ErrUnreachable,
			[]string{"https://10.0.0.1:2379, https://10.0.0.2:2379", "3s", "request_timeout"}},
		{"wrapped deadline", c, fmt.Errorf("x: %w", context.DeadlineExceeded), ErrUnreachable, []string{"10.0.0.2"}},
		{"unavailable", c, status.Error(codes.Unavailable, "connection refused"), ErrUnreachable, []string{"connection refused"}},
		{"lease not found", c, rpctypes.ErrLeaseNotFound, ErrLeaseNotFound, []string{"expired or was revoked"}},
		{"other", c, errors.New("boom"), nil, []string{`write key "/app/x": boom`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.c.Describe(tc.err, "write", "/app/x")
			if tc.sentinel != nil && !errors.Is(got, tc.sentinel) {
				t.Errorf("errors.Is(%v, %v) = false", got, tc.sentinel)
			}
			for _, want := range tc.contains {
				if !strings.Contains(got.Error(), want) {
					t.Errorf("%q does not contain %q", got, want)
				}
			}
		})
	}
	if c.Describe(nil, "x", "y") != nil {
		t.Error("Describe(nil) != nil")
	}
}
