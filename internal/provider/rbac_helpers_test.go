package provider

// Helpers of the etcd_role, etcd_user and etcd_auth tests. Tests that need
// authentication start their own cluster (testserver.Start with WithAuth or
// WithTLS): the shared cluster of TestMain never has auth enabled.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"go.etcd.io/etcd/api/v3/authpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// rbacName is a user or role name of the test's own, so that tests on the
// shared cluster do not meet.
func rbacName(t *testing.T, suffix string) string {
	return strings.NewReplacer("/", "-", " ", "_").Replace("acc-"+t.Name()) + "-" + suffix
}

// startCluster starts a cluster of the test's own (one member by default),
// skipping without TF_ACC like every acceptance test.
func startCluster(t *testing.T, opts ...testserver.Option) *testserver.Cluster {
	t.Helper()
	accCluster(t)
	return testserver.Start(t, append([]testserver.Option{testserver.WithMembers(1)}, opts...)...)
}

// clusterProvider is a provider block for c: its endpoints, its CA when it
// uses TLS, plus extra attribute lines.
func clusterProvider(c *testserver.Cluster, extra ...string) string {
	lines := []string{"endpoints = " + hclList(c.Endpoints())}
	if info := c.TLS(); info != nil {
		lines = append(lines, "ca_cert = "+hclString(info.CAFile))
	}
	lines = append(lines, extra...)
	return "provider \"etcd\" {\n  " + strings.Join(lines, "\n  ") + "\n}\n"
}

// rootProvider is a provider block for c as root with a password.
func rootProvider(c *testserver.Cluster, password string) string {
	return clusterProvider(c, `username = "root"`, "password = "+hclString(password))
}

// rawClient is a plain clientv3 client for checks outside the provider:
// with user and password when user is set, with the cluster's root
// certificate when it uses TLS (whose CN "root" is then the user when no
// user is given).
func rawClient(t *testing.T, c *testserver.Cluster, user, password string) *clientv3.Client {
	t.Helper()
	cfg := clientv3.Config{Endpoints: c.Endpoints(), Username: user, Password: password, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if info := c.TLS(); info != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(info.CACertPEM)
		cert, err := tls.X509KeyPair(info.CertPEM, info.KeyPEM)
		if err != nil {
			t.Fatal(err)
		}
		cfg.TLS = &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatalf("client as %q: %v", user, err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// authenticate tells whether user/password is accepted by c (with auth on).
func authenticate(c *testserver.Cluster, user, password string) error {
	cfg := clientv3.Config{Endpoints: c.Endpoints(), Username: user, Password: password, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return err
	}
	return cli.Close()
}

func checkAuthenticates(c *testserver.Cluster, user, password string, want bool) func(*terraform.State) error {
	return func(*terraform.State) error {
		err := authenticate(c, user, password)
		switch {
		case want && err != nil:
			return fmt.Errorf("user %q cannot authenticate with the configured password: %v", user, err)
		case !want && err == nil:
			return fmt.Errorf("user %q authenticates with a password it should no longer have", user)
		}
		return nil
	}
}

// permStr describes one permission the way checkRole compares them.
func permStr(access, key, rangeEnd string) string {
	return fmt.Sprintf("%s [%q, %q)", access, key, rangeEnd)
}

func permString(p *authpb.Permission) string {
	a := map[authpb.Permission_Type]string{authpb.Permission_READ: "read", authpb.Permission_WRITE: "write", authpb.Permission_READWRITE: "readwrite"}[p.PermType]
	return permStr(a, string(p.Key), string(p.RangeEnd))
}

// checkRole reads role with cli and compares its permissions with want
// (permStr strings, any order).
func checkRole(cli func() *clientv3.Client, role string, want ...string) func(*terraform.State) error {
	return func(*terraform.State) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := cli().RoleGet(ctx, role)
		if err != nil {
			return fmt.Errorf("role get %q: %w", role, err)
		}
		got := make([]string, len(resp.Perm))
		for i, p := range resp.Perm {
			got[i] = permString(p)
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(want))
		if !slices.Equal(got, want) {
			return fmt.Errorf("role %q: etcd holds %q, want %q", role, got, want)
		}
		return nil
	}
}

// checkUserRoles reads user with cli and compares its roles with want.
func checkUserRoles(cli func() *clientv3.Client, user string, want ...string) func(*terraform.State) error {
	return func(*terraform.State) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := cli().UserGet(ctx, user)
		if err != nil {
			return fmt.Errorf("user get %q: %w", user, err)
		}
		got := slices.Sorted(slices.Values(resp.Roles))
		want := slices.Sorted(slices.Values(want))
		if !slices.Equal(got, want) {
			return fmt.Errorf("user %q: etcd holds roles %q, want %q", user, got, want)
		}
		return nil
	}
}

// checkGone asserts that none of the roles and users exist any more.
func checkGone(cli func() *clientv3.Client, roles, users []string) func(*terraform.State) error {
	return func(*terraform.State) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rl, err := cli().RoleList(ctx)
		if err != nil {
			return err
		}
		ul, err := cli().UserList(ctx)
		if err != nil {
			return err
		}
		for _, r := range roles {
			if slices.Contains(rl.Roles, r) {
				return fmt.Errorf("role %q left in etcd", r)
			}
		}
		for _, u := range users {
			if slices.Contains(ul.Users, u) {
				return fmt.Errorf("user %q left in etcd", u)
			}
		}
		return nil
	}
}

// sharedEtcd returns the shared cluster's client, for checks.
func sharedEtcd() *clientv3.Client { return testCluster.Client() }
