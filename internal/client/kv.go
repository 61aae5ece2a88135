package client

import (
	"context"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// KeyValue is one key as etcd holds it.
type KeyValue struct {
	Key            string
	Value          []byte
	CreateRevision int64
	ModRevision    int64
	Version        int64
	Lease          int64 // 0: no lease
}

// Sentinel errors of the key operations; the concrete errors below wrap them.
var (
	// ErrKeyNotFound: the key does not exist.
	ErrKeyNotFound = errors.New("key not found")
	// ErrKeyExists: a create found the key already there.
	ErrKeyExists = errors.New("key already exists")
	// ErrKeyChanged: the key's mod_revision is not the expected one.
	ErrKeyChanged = errors.New("key changed concurrently")
)

// KeyExistsError is returned by CreateKey when the key is already there.
type KeyExistsError struct {
	Current KeyValue
}

func (e *KeyExistsError) Error() string {
	return fmt.Sprintf("key %q already exists (create_revision %d, mod_revision %d)", e.Current.Key, e.Current.CreateRevision, e.Current.ModRevision)
}

func (e *KeyExistsError) Unwrap() error { return ErrKeyExists }

// KeyChangedError is returned by guarded writes when the key's mod_revision
// is not the one the caller last saw.
type KeyChangedError struct {
	Key      string
	Expected int64 // the mod_revision the caller saw
	Actual   int64 // the mod_revision now; 0 when the key is gone
}

func (e *KeyChangedError) Error() string {
	if e.Actual == 0 {
		return fmt.Sprintf("key %q was deleted concurrently (expected mod_revision %d)", e.Key, e.Expected)
	}
	return fmt.Sprintf("key %q was changed concurrently (mod_revision %d, now %d)", e.Key, e.Expected, e.Actual)
}

func (e *KeyChangedError) Unwrap() error { return ErrKeyChanged }

// CreateKey writes key only if it does not exist, in one transaction:
// If CreateRevision(key) == 0 Then Put Else Get. When the key exists, nothing
// is written and a *KeyExistsError describes what is there.
func (c *Client) CreateKey(ctx context.Context, key string, value []byte, lease int64) (*KeyValue, error) {
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	resp, err := c.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(value), putOpts(lease)...), clientv3.OpGet(key)).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return nil, c.Describe(err, "create", key)
	}
	kv := lastGet(resp)
	if !resp.Succeeded {
		if kv == nil { // deleted between the compare and the get: impossible in one txn
			return nil, fmt.Errorf("create key %q: the transaction failed but the key is absent", key)
		}
		return nil, &KeyExistsError{Current: *kv}
	}
	if kv == nil {
		return nil, fmt.Errorf("create key %q: the key is absent right after writing it (a lease that expired at once?)", key)
	}
	return kv, nil
}

// UpdateKey writes key only if its mod_revision is still modRevision, in one
// transaction: If ModRevision(key) == modRevision Then Put Else Get. When the
// key changed (or vanished) a *KeyChangedError says so and nothing is written.
func (c *Client) UpdateKey(ctx context.Context, key string, value []byte, lease, modRevision int64) (*KeyValue, error) {
	if modRevision <= 0 {
		// ModRevision == 0 would match an absent key and create it.
		return nil, fmt.Errorf("update key %q: no known mod_revision to guard the write with (got %d)", key, modRevision)
	}
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	resp, err := c.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", modRevision)).
		Then(clientv3.OpPut(key, string(value), putOpts(lease)...), clientv3.OpGet(key)).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return nil, c.Describe(err, "update", key)
	}
	kv := lastGet(resp)
	if !resp.Succeeded {
		e := &KeyChangedError{Key: key, Expected: modRevision}
		if kv != nil {
			e.Actual = kv.ModRevision
		}
		return nil, e
	}
	if kv == nil {
		return nil, fmt.Errorf("update key %q: the key is absent right after writing it (a lease that expired at once?)", key)
	}
	return kv, nil
}

// DeleteKey deletes key only if its mod_revision is still modRevision:
// a value written by someone else since it was last read is not destroyed.
// A key that is already gone is not an error.
func (c *Client) DeleteKey(ctx context.Context, key string, modRevision int64) error {
	if modRevision <= 0 {
		return fmt.Errorf("delete key %q: no known mod_revision to guard the delete with (got %d)", key, modRevision)
	}
	ctx, cancel := c.Ctx(ctx)
	defer cancel()
	resp, err := c.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(key), "=", modRevision)).
		Then(clientv3.OpDelete(key)).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return c.Describe(err, "delete", key)
	}
	if resp.Succeeded {
		return nil
	}
	kv := lastGet(resp)
	if kv == nil {
		return nil // already gone
	}
	return &KeyChangedError{Key: key, Expected: modRevision, Actual: kv.ModRevision}
}

func putOpts(lease int64) []clientv3.OpOption {
	if lease == 0 {
		return nil
	}
	return []clientv3.OpOption{clientv3.WithLease(clientv3.LeaseID(lease))}
}

// lastGet returns the key of the last range response in a txn, or nil.
func lastGet(resp *clientv3.TxnResponse) *KeyValue {
	for i := len(resp.Responses) - 1; i >= 0; i-- {
		r := resp.Responses[i].GetResponseRange()
		if r == nil {
			continue
		}
		if len(r.Kvs) == 0 {
			return nil
		}
		return fromKV(r.Kvs[0])
	}
	return nil
}

// fromKV copies etcd's key-value into ours.
func fromKV(kv *mvccpb.KeyValue) *KeyValue {
	return &KeyValue{
		Key:            string(kv.Key),
		Value:          append([]byte{}, kv.Value...),
		CreateRevision: kv.CreateRevision,
		ModRevision:    kv.ModRevision,
		Version:        kv.Version,
		Lease:          kv.Lease,
	}
}
