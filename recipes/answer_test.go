package recipes

import (
	"context"
	"errors"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// A write sent at most once waits for its answer past attemptTimeout while
// the cluster answers reads: a slow answer is an answer, not an unknown
// outcome. Once the cluster answers nothing (its members stopped), the
// write is given up with an error wrapping ErrEtcd.
func TestWaitAnswerWaitsWhileClusterAnswers(t *testing.T) {
	c := testserver.Start(t, testserver.WithMembers(1))
	cli, err := c.NewClient(clientv3.Config{DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	old := attemptTimeout
	attemptTimeout = time.Second
	defer func() { attemptTimeout = old }()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The "write" answers only after two attempt timeouts (and probes).
	v, err := waitAnswer(ctx, cli, "probe", func(ctx context.Context) (int, error) {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * attemptTimeout / 2):
			return 7, nil
		}
	})
	if err != nil || v != 7 {
		t.Fatalf("slow write = %d, %v; want 7, nil", v, err)
	}

	// No member answers: the write that never answers is given up.
	if err := c.StopMember(ctx, c.Members()[0].Name); err != nil {
		t.Fatal(err)
	}
	_, err = waitAnswer(ctx, cli, "probe", func(ctx context.Context) (int, error) {
		<-ctx.Done()
		return 0, ctx.Err()
	})
	if !errors.Is(err, errNoAnswer) || ctx.Err() != nil {
		t.Fatalf("write to a stopped cluster = %v (ctx %v), want errNoAnswer", err, ctx.Err())
	}
	if got := attemptErr(ctx, "enqueue", err); !errors.Is(got, ErrEtcd) {
		t.Fatalf("attemptErr = %v, want ErrEtcd", got)
	}
}
