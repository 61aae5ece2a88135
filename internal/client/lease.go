package client

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Lease is what etcd reports about one lease.
type Lease struct {
	ID int64
	// GrantedTTL is the TTL in seconds etcd granted, which may be more than
	// the one asked for (etcd enforces a minimum).
	GrantedTTL int64
	// TTL is the remaining time to live in seconds.
	TTL int64
	// Keys attached to the lease; only filled when asked for.
	Keys []string
}

// GrantLease grants a lease of ttl seconds.
func (c *Client) GrantLease(ctx context.Context, ttl int64) (*Lease, error) {
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	resp, err := c.Grant(ctx, ttl)
	if err != nil {
		return nil, c.Describe(err, fmt.Sprintf("grant a lease of %d s", ttl), "")
	}
	return &Lease{ID: int64(resp.ID), GrantedTTL: resp.TTL, TTL: resp.TTL}, nil
}

// GetLease reads a lease, with its keys when withKeys. A lease that does not
// exist yields an error wrapping ErrLeaseNotFound.
func (c *Client) GetLease(ctx context.Context, id int64, withKeys bool) (*Lease, error) {
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	var opts []clientv3.LeaseOption
	if withKeys {
		opts = append(opts, clientv3.WithAttachedKeys())
	}
	resp, err := c.TimeToLive(ctx, clientv3.LeaseID(id), opts...)
	if isLeaseNotFound(err) || (err == nil && resp.TTL < 0) {
		// etcd answers TTL -1 for a lease it does not know.
		return nil, fmt.Errorf("lease %s: %w (it expired or was revoked)", FormatLeaseID(id), ErrLeaseNotFound)
	}
	if err != nil {
		return nil, c.Describe(err, "read lease "+FormatLeaseID(id), "")
	}
	l := &Lease{ID: id, GrantedTTL: resp.GrantedTTL, TTL: resp.TTL}
	for _, k := range resp.Keys {
		l.Keys = append(l.Keys, string(k))
	}
	return l, nil
}

// RevokeLease revokes a lease, which deletes every key attached to it. A
// lease that is already gone is not an error.
func (c *Client) RevokeLease(ctx context.Context, id int64) error {
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	_, err := c.Revoke(ctx, clientv3.LeaseID(id))
	if err == nil || isLeaseNotFound(err) {
		return nil
	}
	return c.Describe(err, "revoke lease "+FormatLeaseID(id), "")
}

// RenewLease renews a lease once, returning its new remaining TTL.
func (c *Client) RenewLease(ctx context.Context, id int64) (int64, error) {
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	resp, err := c.KeepAliveOnce(ctx, clientv3.LeaseID(id))
	if isLeaseNotFound(err) {
		return 0, fmt.Errorf("lease %s: %w (it expired or was revoked)", FormatLeaseID(id), ErrLeaseNotFound)
	}
	if err != nil {
		return 0, c.Describe(err, "renew lease "+FormatLeaseID(id), "")
	}
	return resp.TTL, nil
}

func isLeaseNotFound(err error) bool {
	return err != nil && (errors.Is(err, rpctypes.ErrLeaseNotFound) || errors.Is(err, rpctypes.ErrGRPCLeaseNotFound))
}
