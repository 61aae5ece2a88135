package provider

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

// keyEvent is one change seen by a watch, with when it was seen.
type keyEvent struct {
	put   bool
	key   string
	lease int64
	at    time.Time
}

// watchPrefix records every change under prefix until the test ends. The
// function it returns gives the changes made so far: before it answers, it
// waits until the watch has caught up with the cluster's revision at the
// time of the call (etcd delivers a watch's events in revision order, and a
// progress notification says that everything up to its revision has been
// delivered).
func watchPrefix(t *testing.T, prefix string) func() ([]keyEvent, error) {
	cli := testCluster.Client()
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu       sync.Mutex
		events   []keyEvent
		caughtUp int64 // every event up to this revision has arrived
		created  = make(chan struct{})
		done     = make(chan struct{})
	)
	ch := cli.Watch(ctx, prefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	go func() {
		defer close(done)
		for resp := range ch {
			now := time.Now()
			if resp.Created {
				close(created)
				continue
			}
			mu.Lock()
			for _, ev := range resp.Events {
				events = append(events, keyEvent{put: ev.Type == mvccpb.PUT, key: string(ev.Kv.Key), lease: ev.Kv.Lease, at: now})
				caughtUp = max(caughtUp, ev.Kv.ModRevision)
			}
			if resp.IsProgressNotify() {
				caughtUp = max(caughtUp, resp.Header.Revision)
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-created:
	case <-time.After(time.Minute):
		t.Fatalf("the watch on %s was not set up within a minute", prefix)
	}
	return func() ([]keyEvent, error) {
		wctx, wcancel := context.WithTimeout(ctx, time.Minute)
		defer wcancel()
		r, err := cli.Get(wctx, prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
		if err != nil {
			return nil, err
		}
		for {
			mu.Lock()
			ok := caughtUp >= r.Header.Revision
			mu.Unlock()
			if ok {
				break
			}
			// On the watch's own stream (same context).
			if err := cli.RequestProgress(ctx); err != nil {
				return nil, fmt.Errorf("watch progress: %w", err)
			}
			select {
			case <-wctx.Done():
				return nil, fmt.Errorf("the watch on %s did not reach revision %d within a minute", prefix, r.Header.Revision)
			case <-time.After(50 * time.Millisecond):
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return append([]keyEvent(nil), events...), nil
	}
}

// afterRun is what a check needs once a run is over: the changes the
// watch has seen, and when the run's provisioner wrote the file done, its
// last step.
func afterRun(events func() ([]keyEvent, error), done string) ([]keyEvent, time.Time, error) {
	evs, err := events()
	if err != nil {
		return nil, time.Time{}, err
	}
	fi, err := os.Stat(done)
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("the provisioner did not finish: %w", err)
	}
	return evs, fi.ModTime(), nil
}

// nextDeletion is when the watch saw the key of evs[i] deleted after
// evs[i]; ok is false if it did not.
func nextDeletion(evs []keyEvent, i int) (at time.Time, ok bool) {
	for _, later := range evs[i+1:] {
		if !later.put && later.key == evs[i].key {
			return later.at, true
		}
	}
	return time.Time{}, false
}

func TestAccLeaseEphemeralResource(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	marker := prefix + "marker"
	mustPut(t, prefix+"taken", "someone else's")
	t.Cleanup(func() { _, _ = testCluster.Client().Delete(context.Background(), prefix+"taken") })
	events := watchPrefix(t, prefix)

	const ttl, sleep = 2, 4
	done := filepath.Join(t.TempDir(), "done")
	config := func(keys string) string {
		return providerConfig() + fmt.Sprintf(`ephemeral "etcd_lease" "run" {
  ttl  = %d
  keys = %s
}

# Uses the lease for longer than its TTL, then writes its ID to a file: the
# provider must keep the lease alive meanwhile.
resource "terraform_data" "deploy" {
  provisioner "local-exec" {
    command     = "sleep %d && echo \"$LEASE\" > %s"
    environment = { LEASE = ephemeral.etcd_lease.run.id }
  }
}
`, ttl, keys, sleep, done)
	}

	// After the runs: every key written under an ephemeral lease was
	// deleted and each lease is gone. The apply's key was deleted only after
	// the provisioner had finished, longer than the TTL after the run
	// opened the lease: the lease was kept alive, not left to expire. (The
	// watch sees a deletion after it happens, never before, so a deletion
	// seen before the provisioner's file was written happened before it.)
	checkRevoked := func(*terraform.State) error {
		evs, doneAt, err := afterRun(events, done)
		if err != nil {
			return err
		}
		b, err := os.ReadFile(done)
		if err != nil {
			return err
		}
		applyLease, err := client.ParseLeaseID(strings.TrimSpace(string(b)))
		if err != nil {
			return fmt.Errorf("the provisioner's lease %q: %w", b, err)
		}
		var puts int
		var applyDeleted time.Time
		for i, ev := range evs {
			if !ev.put || ev.key != marker {
				continue
			}
			puts++
			if ev.lease == 0 {
				return fmt.Errorf("%s written without a lease", ev.key)
			}
			deleted, ok := nextDeletion(evs, i)
			if !ok {
				return fmt.Errorf("%s (lease %x) was never deleted", marker, ev.lease)
			}
			if ev.lease == applyLease {
				applyDeleted = deleted
			}
			if ttl, _, err := leaseTTL(ev.lease); err != nil || ttl != -1 {
				return fmt.Errorf("lease %x still exists (TTL %d, %v)", ev.lease, ttl, err)
			}
		}
		if puts < 2 { // at least the plan and the apply
			return fmt.Errorf("%d runs wrote %s, want at least 2: %+v", puts, marker, evs)
		}
		if applyDeleted.IsZero() {
			return fmt.Errorf("no run wrote %s under the apply's lease %x: %+v", marker, applyLease, evs)
		}
		if applyDeleted.Before(doneAt) {
			return fmt.Errorf("the apply's %s was deleted at %s, before the provisioner finished at %s (it slept %d s, "+
				"the lease's TTL is %d s): the lease was not kept alive", marker, applyDeleted.Format(time.StampMilli),
				doneAt.Format(time.StampMilli), sleep, ttl)
		}
		if err := checkPrefix(prefix, map[string]string{"taken": "someone else's"})(nil); err != nil {
			return err
		}
		return nil
	}

	resource.ParallelTest(t, resource.TestCase{
		TerraformVersionChecks: []tfversion.TerraformVersionCheck{
			// Ephemeral resources: Terraform 1.10, OpenTofu 1.11.
			tfversion.SkipBelow(tfversion.Version1_10_0),
		},
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkRevoked,
		Steps: []resource.TestStep{
			// Bad input first: the last configuration is the one destroyed.
			{
				Config:      providerConfig() + "ephemeral \"etcd_lease\" \"run\" {\n  ttl = 0\n}\n",
				ExpectError: errorText("ttl value must be at least 1, got: 0"),
			},
			// An existing key is not overwritten, and nothing is written.
			{
				Config:      config(fmt.Sprintf("{ %s = \"x\", %s = \"mine\" }", hclString(prefix+"free"), hclString(prefix+"taken"))),
				ExpectError: errorText("does not overwrite existing keys"),
			},
			{
				Config: config(fmt.Sprintf("{ %s = \"deploying\" }", hclString(marker))),
			},
		},
	})
}

// The documentation example runs, and its marker is gone afterwards.
func TestAccLeaseEphemeralResourceExample(t *testing.T) {
	c := accCluster(t)
	// Not parallel: the example has no provider block.
	t.Setenv("ETCDCTL_ENDPOINTS", strings.Join(c.Endpoints(), ","))
	events := watchPrefix(t, "/app/deploy/")
	resource.Test(t, resource.TestCase{
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.SkipBelow(tfversion.Version1_10_0)},
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy: func(*terraform.State) error {
			evs, err := events()
			if err != nil {
				return err
			}
			puts := 0
			for _, ev := range evs {
				if ev.put {
					puts++
				}
			}
			if puts == 0 {
				return fmt.Errorf("the example never wrote its marker")
			}
			return checkNoKeys("/app/deploy/")(nil)
		},
		Steps: []resource.TestStep{{
			ConfigDirectory: config.StaticDirectory("../../examples/ephemeral-resources/etcd_lease"),
		}},
	})
}
