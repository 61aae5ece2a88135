package testserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const rootUser = "root"

// enableAuth creates user root with role root and a random password, then
// enables authentication. It runs before any client holds credentials.
func (c *Cluster) enableAuth(ctx context.Context) error {
	password, err := randomString(16)
	if err != nil {
		return err
	}
	cli, err := c.NewClient(clientv3.Config{})
	if err != nil {
		return err
	}
	defer cli.Close()
	if _, err := cli.UserAdd(ctx, rootUser, password); err != nil {
		return fmt.Errorf("auth: add user root: %w", err)
	}
	if _, err := cli.UserGrantRole(ctx, rootUser, rootUser); err != nil {
		return fmt.Errorf("auth: grant role root: %w", err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		return fmt.Errorf("auth: enable: %w", err)
	}
	c.mu.Lock()
	c.rootPassword = password
	c.mu.Unlock()
	return nil
}

// RootCredentials returns the user name and password of root, or empty
// strings without WithAuth.
func (c *Cluster) RootCredentials() (user, password string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rootPassword == "" {
		return "", ""
	}
	return rootUser, c.rootPassword
}

func randomString(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return hex.EncodeToString(b), nil
}
