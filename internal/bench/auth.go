package main

import (
	"context"
	"fmt"
	"os"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// authPermissions is the number of permissions of the authentication
// scenario's role (issue 17's figure).
const authPermissions = 1000

// benchRootPassword is the root password of the authentication scenario's
// cluster; it exists only for the length of the run.
const benchRootPassword = "bench-root-password"

// authConfig is one etcd_role with authPermissions permissions and users
// etcd_user resources holding it, each with a password in the state: the
// refresh then checks every password by authenticating as the user, which
// costs etcd one bcrypt comparison each.
func authConfig(endpoints []string, users int) string {
	return headerAuth(endpoints, benchRootPassword) + fmt.Sprintf(`resource "etcd_role" "r" {
  name        = "bench-role"
  permissions = [for i in range(%d) : { key = format("/bench/role/%%04d", i), access = "read" }]
}

resource "etcd_user" "u" {
  count    = %d
  name     = format("bench-user-%%05d", count.index)
  password = "password-${count.index}"
  roles    = [etcd_role.r.name]
}
`, authPermissions, users)
}

// authScenario enables authentication (a root user and role, as etcd
// requires), runs the scenario of authConfig, and disables authentication
// and removes root again, checking that the destroy left no other user or
// role behind.
func (b *bench) authScenario(users int) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli := b.cluster.Client()
	steps := []func() error{
		func() error { _, err := cli.UserAdd(ctx, "root", benchRootPassword); return err },
		func() error { _, err := cli.RoleAdd(ctx, "root"); return err },
		func() error { _, err := cli.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := cli.AuthEnable(ctx); return err },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return result{}, fmt.Errorf("enable authentication: %w", err)
		}
	}
	root, err := clientv3.New(clientv3.Config{
		Endpoints: b.cluster.Endpoints(), Username: "root", Password: benchRootPassword,
		DialTimeout: 10 * time.Second,
	})
	if err != nil {
		return result{}, fmt.Errorf("connect as root: %w", err)
	}
	defer root.Close()
	b.rootClient = root
	defer func() { b.rootClient = nil }()
	name := fmt.Sprintf("%d × etcd_user + 1 × etcd_role (%d permissions), auth on", users, authPermissions)
	fmt.Fprintf(os.Stderr, "bench: %s\n", name)
	r, err := b.scenario(name, users+1, authConfig(b.cluster.Endpoints(), users), "", nil, true)
	if derr := b.disableAuth(root, users); err == nil {
		err = derr
	}
	return r, err
}

// disableAuth turns authentication off as root and removes root, after
// checking that root is the only user and role left.
func (b *bench) disableAuth(root *clientv3.Client, users int) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ul, err := root.UserList(ctx)
	if err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	rl, err := root.RoleList(ctx)
	if err != nil {
		return fmt.Errorf("list roles: %w", err)
	}
	if _, err := root.AuthDisable(ctx); err != nil {
		return fmt.Errorf("disable authentication: %w", err)
	}
	cli := b.cluster.Client()
	if _, err := cli.UserDelete(ctx, "root"); err != nil {
		return err
	}
	if _, err := cli.RoleDelete(ctx, "root"); err != nil {
		return err
	}
	if len(ul.Users) != 1 || len(rl.Roles) != 1 {
		return fmt.Errorf("%d users: after destroy, users %v and roles %v are left, want root alone", users, ul.Users, rl.Roles)
	}
	return nil
}
