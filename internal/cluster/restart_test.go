package cluster

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/membership"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver/sshhost"
)

// TestRestartWaitsForQuorum: before a rolling restart takes a member down,
// it waits for the cluster to be safe to restart it in, instead of
// refusing on one probe. With n3 stopped, restarting n2 would leave one of
// three members: the check waits, and passes once n3 is back. With n3
// stopped for longer than the wait, it refuses with a quorum error naming
// n3, and n2 was never touched.
func TestRestartWaitsForQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("starts clusters over SSH")
	}
	hosts := sshhost.Start(t, 3)
	providerBinary(t)
	s := testSpec(hosts, 3, "rwait", 13479)
	t.Cleanup(func() { destroy(t, s, true) })
	applyOK(t, s, ApplyOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// Progress runs on the goroutine of the check; sawWait tells another
	// goroutine that the check is waiting.
	var waiting []string
	sawWait := make(chan struct{})
	c := New(s, WithProgress(func(msg string, f map[string]any) {
		t.Logf("%s %v", msg, f)
		if strings.HasPrefix(msg, "waiting for the cluster to be safe") {
			waiting = append(waiting, f["reason"].(string))
			if len(waiting) == 1 {
				close(sawWait)
			}
		}
	}))
	defer c.Close()
	cli, err := c.client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	n2, err := c.probe(ctx, s.Nodes[1])
	if err != nil {
		t.Fatal(err)
	}
	n3, err := c.probe(ctx, s.Nodes[2])
	if err != nil {
		t.Fatal(err)
	}
	pid := func() int {
		t.Helper()
		ss, err := n2.svc.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ss.PID
	}
	before := pid()

	// n3 comes back while the check waits.
	if err := n3.svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() {
		// Start n3 only once the check has seen it down and said so.
		select {
		case <-ctx.Done():
			started <- ctx.Err()
		case <-sawWait:
			started <- n3.svc.Start(ctx)
		}
	}()
	if _, self, err := c.safeToRestart(ctx, cli, n2); err != nil {
		t.Fatalf("n3 came back, yet the check refused: %v (waited for: %q)", err, waiting)
	} else if self.Name != "n2" || !self.Healthy {
		t.Fatalf("the check names %+v, want n2 healthy", self)
	}
	if err := <-started; err != nil {
		t.Fatal(err)
	}
	if len(waiting) != 1 || !strings.Contains(waiting[0], "n3") {
		t.Fatalf("the check did not report waiting for n3: %q", waiting)
	}

	// n3 stays down: a refusal once the wait ends, naming n3.
	defer func(w time.Duration) { restartWait = w }(restartWait)
	restartWait = 3 * time.Second
	if err := n3.svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	err = c.restartOne(ctx, cli, n2)
	var qe *membership.QuorumError
	if !errors.As(err, &qe) || qe.Healthy != 1 || qe.Needed != 2 || !strings.Contains(err.Error(), "n3") {
		t.Fatalf("restart of n2 with n3 down = %v, want a quorum error (1 of 2 needed) naming n3", err)
	}
	if after := pid(); after != before {
		t.Fatalf("n2 restarted (pid %d -> %d) although the check refused", before, after)
	}
	if err := n3.svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
}
