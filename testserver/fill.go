package testserver

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"golang.org/x/sync/errgroup"
)

// Fill writes size bytes of random 1 KiB values under prefix, as keys
// prefix + a 9-digit number from 000000000 up, and returns how many keys it
// wrote. It writes 128 puts to a transaction (etcd's default max-txn-ops),
// four transactions at a time, through the cluster's client. A transaction
// that fails is retried, up to 20 times: a busy machine makes the cluster
// change leaders now and then ("request timed out"), and the puts are
// idempotent. Benchmarks use it to give snapshots, restores and
// defragmentations realistic data; raise the quota (WithQuotaBackendBytes)
// above about twice size first.
func (c *Cluster) Fill(ctx context.Context, prefix string, size int64) (int, error) {
	const valueSize, perTxn = 1024, 128
	keys := int(size / valueSize)
	cli := c.Client()
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for start := 0; start < keys; start += perTxn {
		g.Go(func() error {
			ops := make([]clientv3.Op, 0, perTxn)
			for k := start; k < min(start+perTxn, keys); k++ {
				v := make([]byte, valueSize)
				_, _ = rand.Read(v)
				ops = append(ops, clientv3.OpPut(fmt.Sprintf("%s%09d", prefix, k), string(v)))
			}
			var err error
			for range 20 {
				if _, err = cli.Txn(ctx).Then(ops...).Commit(); err == nil || ctx.Err() != nil {
					return err
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(200 * time.Millisecond):
				}
			}
			return fmt.Errorf("fill %s: %w", prefix, err)
		})
	}
	return keys, g.Wait()
}
