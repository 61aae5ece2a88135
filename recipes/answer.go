package recipes

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// errNoAnswer ends a write that waitAnswer gave up on. It wraps
// context.DeadlineExceeded, so attemptErr reports an unknown outcome.
var errNoAnswer = fmt.Errorf("no answer while the cluster answered no read either: %w", context.DeadlineExceeded)

// waitAnswer runs send, one attempt of a write that is sent at most once
// (an Enqueue, a take, an Ack or a Nack: sending it again could apply it
// twice, so its caller cannot retry it after a timeout).
//
// A fixed bound on such an attempt cannot tell a dead connection from a
// cluster that is merely slow (a busy machine, a long fsync): on a slow
// cluster it turns writes that would have succeeded into errors of
// unknown outcome. So the attempt has no fixed bound. Each attemptTimeout
// without an answer, waitAnswer asks the cluster for a linearizable read
// of probeKey (itself bounded by attemptTimeout): while the cluster
// answers, the write keeps waiting; once a probe gets no answer either,
// the write is abandoned with errNoAnswer. The caller's ctx ends the wait
// as always.
func waitAnswer[T any](ctx context.Context, c *clientv3.Client, probeKey string, send func(context.Context) (T, error)) (T, error) {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var (
		mu   sync.Mutex
		over bool
		tm   *time.Timer
	)
	mu.Lock()
	tm = time.AfterFunc(attemptTimeout, func() {
		if !probe(actx, c, probeKey) {
			cancel(errNoAnswer)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if !over {
			tm.Reset(attemptTimeout)
		}
	})
	mu.Unlock()
	v, err := send(actx)
	mu.Lock()
	over = true
	tm.Stop()
	mu.Unlock()
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(actx), errNoAnswer) {
		return v, errNoAnswer
	}
	return v, err
}

// probe reports whether the cluster answers a linearizable read of key
// within attemptTimeout (a read needs a quorum, as a write does).
func probe(ctx context.Context, c *clientv3.Client, key string) bool {
	pctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	_, err := c.Get(pctx, key, clientv3.WithCountOnly())
	return err == nil
}
