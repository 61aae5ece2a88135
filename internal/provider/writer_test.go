package provider

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/terraform"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// ackWriter keeps writing keys under a prefix through a client of the
// cluster in the state, as an application would while the provider
// restarts, upgrades or re-certifies the members. It remembers every write
// etcd acknowledged and the longest time between two acknowledged writes
// (a write stall as a client that retries sees it), so that a test can
// check that no acknowledged write was lost and how long writes stalled.
type ackWriter struct {
	prefix     string
	stop, done chan struct{}

	mu       sync.Mutex
	acked    []string
	failed   int
	last     time.Time
	longest  time.Duration   // longest stall of the current window
	stalls   []time.Duration // longest stall of each closed window
	writeErr error
}

// startAckWriter starts a writer under prefix and returns once etcd has
// acknowledged its first write, so that what the test does next happens
// while writes are going through.
func startAckWriter(s *terraform.State, prefix string) (*ackWriter, error) {
	cli, err := clusterClient(s)
	if err != nil {
		return nil, err
	}
	w := &ackWriter{prefix: prefix, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer cli.Close()
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			default:
			}
			key := fmt.Sprintf("%s%07d", prefix, i)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err := cli.Put(ctx, key, "v")
			cancel()
			now := time.Now()
			w.mu.Lock()
			if err != nil {
				w.failed++
				w.writeErr = err
			} else {
				if !w.last.IsZero() && now.Sub(w.last) > w.longest {
					w.longest = now.Sub(w.last)
				}
				w.last = now
				w.acked = append(w.acked, key)
			}
			w.mu.Unlock()
			pause := 5 * time.Millisecond
			if err != nil {
				pause = 50 * time.Millisecond
			}
			select {
			case <-w.stop:
				return
			case <-time.After(pause):
			}
		}
	}()
	deadline := time.Now().Add(time.Minute)
	for w.acks() == 0 {
		if time.Now().After(deadline) {
			close(w.stop)
			<-w.done
			return nil, fmt.Errorf("no write under %s acknowledged within a minute (%d failed, last error: %v)", prefix, w.failed, w.writeErr)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return w, nil
}

// acks is how many writes etcd has acknowledged so far.
func (w *ackWriter) acks() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// window ends a measuring window (one apply): it logs and records the
// longest stall in it and starts the next.
func (w *ackWriter) window(name string, t *testing.T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("%s: %d writes acknowledged so far, %d failed (retried), longest stall %s", name, len(w.acked), w.failed, w.longest.Round(time.Millisecond))
	w.stalls = append(w.stalls, w.longest)
	w.longest = 0
}

// verify stops the writer and reads the prefix back through cli: every
// acknowledged write must be there, and more than ackedBefore writes must
// have been acknowledged (the writer kept going through what the test did
// after it counted ackedBefore).
func (w *ackWriter) verify(ctx context.Context, cli *clientv3.Client, t *testing.T, ackedBefore int) error {
	close(w.stop)
	<-w.done
	r, err := cli.Get(ctx, w.prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return err
	}
	have := make(map[string]bool, len(r.Kvs))
	for _, kv := range r.Kvs {
		have[string(kv.Key)] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var lost []string
	for _, k := range w.acked {
		if !have[k] {
			lost = append(lost, k)
		}
	}
	t.Logf("background writer under %s: %d writes acknowledged, %d failed and retried, %d lost, longest stall in the last window %s",
		w.prefix, len(w.acked), w.failed, len(lost), w.longest.Round(time.Millisecond))
	if len(lost) > 0 {
		return fmt.Errorf("%d acknowledged writes lost, e.g. %v", len(lost), lost[:min(5, len(lost))])
	}
	if len(w.acked) <= ackedBefore {
		return fmt.Errorf("the writer stopped: no write acknowledged after the first %d (%d failed, last error: %v)", ackedBefore, w.failed, w.writeErr)
	}
	return nil
}

// verifyState is verify through a client of the cluster in the state s.
func (w *ackWriter) verifyState(s *terraform.State, t *testing.T, ackedBefore int) error {
	cli, err := clusterClient(s)
	if err != nil {
		close(w.stop)
		<-w.done
		return err
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return w.verify(ctx, cli, t, ackedBefore)
}
