package provider

import (
	"context"
	"fmt"
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
)

// keyEvent is one change seen by a watch, with when it was seen.
type keyEvent struct {
	put   bool
	key   string
	lease int64
	at    time.Time
}

// watchPrefix records every change under prefix until the test ends.
func watchPrefix(t *testing.T, prefix string) func() []keyEvent {
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu     sync.Mutex
		events []keyEvent
		done   = make(chan struct{})
	)
	ch := testCluster.Client().Watch(ctx, prefix, clientv3.WithPrefix())
	go func() {
		defer close(done)
		for resp := range ch {
			now := time.Now()
			mu.Lock()
			for _, ev := range resp.Events {
				events = append(events, keyEvent{put: ev.Type == mvccpb.PUT, key: string(ev.Kv.Key), lease: ev.Kv.Lease, at: now})
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	// The watch is in place once etcd confirms it; a write proves it.
	mustPut(t, prefix+"watch-ready", "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(events)
		mu.Unlock()
		if n > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := testCluster.Client().Delete(etcdCtx(t), prefix+"watch-ready"); err != nil {
		t.Fatal(err)
	}
	return func() []keyEvent {
		time.Sleep(200 * time.Millisecond) // let the last events arrive
		mu.Lock()
		defer mu.Unlock()
		return append([]keyEvent(nil), events...)
	}
}

func TestAccLeaseEphemeralResource(t *testing.T) {
	accCluster(t)
	prefix := keyPrefix(t)
	marker := prefix + "marker"
	mustPut(t, prefix+"taken", "someone else's")
	t.Cleanup(func() { _, _ = testCluster.Client().Delete(context.Background(), prefix+"taken") })
	events := watchPrefix(t, prefix)

	const ttl, sleep = 2, 4
	config := func(keys string) string {
		return providerConfig() + fmt.Sprintf(`ephemeral "etcd_lease" "run" {
  ttl  = %d
  keys = %s
}

# Uses the lease for longer than its TTL: the provider must keep it alive.
resource "terraform_data" "deploy" {
  provisioner "local-exec" {
    command     = "sleep %d"
    environment = { LEASE = ephemeral.etcd_lease.run.id }
  }
}
`, ttl, keys, sleep)
	}

	// After the runs: every key written under an ephemeral lease was
	// deleted, each lease is gone, and in the apply the key lived longer
	// than the TTL, so the lease was kept alive, not left to expire.
	checkRevoked := func(*terraform.State) error {
		evs := events()
		var puts int
		var longest time.Duration
		for i, ev := range evs {
			if !ev.put || ev.key != marker {
				continue
			}
			puts++
			if ev.lease == 0 {
				return fmt.Errorf("%s written without a lease", ev.key)
			}
			deleted := false
			for _, later := range evs[i+1:] {
				if !later.put && later.key == marker {
					deleted = true
					longest = max(longest, later.at.Sub(ev.at))
					break
				}
			}
			if !deleted {
				return fmt.Errorf("%s (lease %x) was never deleted", marker, ev.lease)
			}
			if ttl, _, err := leaseTTL(ev.lease); err != nil || ttl != -1 {
				return fmt.Errorf("lease %x still exists (TTL %d, %v)", ev.lease, ttl, err)
			}
		}
		if puts < 2 { // at least the plan and the apply
			return fmt.Errorf("%d runs wrote %s, want at least 2: %+v", puts, marker, evs)
		}
		if longest < sleep*time.Second {
			return fmt.Errorf("the key lived at most %s, less than the %d s the apply took: the lease was not kept alive", longest, sleep)
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
			puts := 0
			for _, ev := range events() {
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
