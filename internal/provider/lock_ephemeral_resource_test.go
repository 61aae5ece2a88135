package provider

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
	"github.com/hashicorp/terraform-plugin-testing/config"
	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
	"github.com/terraform-etcd/terraform-provider-etcd/testserver"
)

// testLock takes lock name on the shared cluster with its own session, as
// another pipeline would, and returns it; the session ends with the test.
func testLock(t *testing.T, name, holder string) *recipes.Lock {
	t.Helper()
	s, err := concurrency.NewSession(testCluster.Client(), concurrency.WithTTL(10))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	l, err := recipes.NewMutex(s, name, recipes.WithValue(holder)).Lock(etcdCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// prefixKeys lists the keys under prefix with their create revisions.
func prefixKeys(t *testing.T, prefix string) map[string]int64 {
	t.Helper()
	resp, err := testCluster.Client().Get(etcdCtx(t), prefix, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int64{}
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = kv.CreateRevision
	}
	return out
}

// Through the CLI: a run waits for a lock somebody else holds and fails
// after timeout naming the holder, leaving nothing behind; once the lock is
// free, a run takes it for its whole length (a provisioner that sleeps
// gets the token of a key that lives that long) and releases it at the end.
func TestAccEphemeralLockSerializes(t *testing.T) {
	accCluster(t)
	// Paused here until the serial tests are done, before the other
	// pipeline's session takes the lock: resource.ParallelTest would pause
	// only after this setup, and the session's lease could expire while the
	// serial tests run.
	t.Parallel()
	prefix := keyPrefix(t)
	name := prefix + "lock"
	events := watchPrefix(t, prefix)
	other := testLock(t, name, "pipeline 1")
	out := filepath.Join(t.TempDir(), "token")
	done := filepath.Join(t.TempDir(), "done")

	const sleep = 3
	config := func(timeout string) string {
		return providerConfig() + fmt.Sprintf(`ephemeral "etcd_lock" "deploy" {
  name    = %s
  ttl     = 5
  timeout = %q
  holder  = "pipeline 2"
}

resource "terraform_data" "deploy" {
  provisioner "local-exec" {
    command = "echo \"$TOKEN $KEY\" > %s && sleep %d && : > %s"
    environment = {
      TOKEN = ephemeral.etcd_lock.deploy.token
      KEY   = ephemeral.etcd_lock.deploy.key
    }
  }
}
`, hclString(name), timeout, out, sleep, done)
	}

	var applyKey string
	var applyToken int64
	checkRun := func(*terraform.State) error {
		b, err := os.ReadFile(out)
		if err != nil {
			return fmt.Errorf("the provisioner did not run: %w", err)
		}
		tok, key, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
		applyKey = key
		if applyToken, err = strconv.ParseInt(tok, 10, 64); err != nil {
			return fmt.Errorf("token %q: %w", tok, err)
		}
		if !strings.HasPrefix(key, name+"/") {
			return fmt.Errorf("key %q is not under %s/", key, name)
		}
		if applyToken <= other.Token() {
			return fmt.Errorf("token %d is not larger than the previous holder's %d", applyToken, other.Token())
		}
		return nil
	}

	// After the runs: the apply's key was written with a lease when the
	// run took the lock, and deleted only after the provisioner had
	// finished (the watch sees a deletion after it happens, never before);
	// every lease of the runs is revoked and nothing is left.
	checkReleased := func(*terraform.State) error {
		evs, doneAt, err := afterRun(events, done)
		if err != nil {
			return err
		}
		var released time.Time
		for i, ev := range evs {
			if !ev.put || ev.key == other.Key() || !strings.HasPrefix(ev.key, name+"/") {
				continue
			}
			if ev.lease == 0 {
				return fmt.Errorf("%s written without a lease", ev.key)
			}
			if ttl, _, err := leaseTTL(ev.lease); err != nil || ttl != -1 {
				return fmt.Errorf("lease %x of %s still exists (TTL %d, %v)", ev.lease, ev.key, ttl, err)
			}
			if deleted, ok := nextDeletion(evs, i); ok && ev.key == applyKey {
				released = deleted
			}
		}
		if released.IsZero() {
			return fmt.Errorf("the apply's lock key %s was never deleted: %+v", applyKey, evs)
		}
		if released.Before(doneAt) {
			return fmt.Errorf("the apply's lock key %s was deleted at %s, before the provisioner finished at %s",
				applyKey, released.Format(time.StampMilli), doneAt.Format(time.StampMilli))
		}
		return checkNoKeys(prefix)(nil)
	}

	resource.Test(t, resource.TestCase{
		TerraformVersionChecks: []tfversion.TerraformVersionCheck{
			// Ephemeral resources: Terraform 1.10, OpenTofu 1.11.
			tfversion.SkipBelow(tfversion.Version1_10_0),
		},
		ProtoV6ProviderFactories: testAccProviders,
		CheckDestroy:             checkReleased,
		Steps: []resource.TestStep{
			{
				Config:      config("soon"),
				ExpectError: errorText(`"soon" is not a duration`),
			},
			{
				Config: config("2s"),
				ExpectError: errorText(fmt.Sprintf(`Lock %q was not free within 2s: it is held by key %q with value "pipeline 1"`,
					name, other.Key())),
			},
			{
				PreConfig: func() {
					// The run that gave up left no waiting key behind.
					if keys := prefixKeys(t, prefix); len(keys) != 1 || keys[other.Key()] == 0 {
						t.Fatalf("keys under %s after the timed-out run: %v, want only %s", prefix, keys, other.Key())
					}
					if err := other.Unlock(etcdCtx(t)); err != nil {
						t.Fatal(err)
					}
				},
				Config: config("1m"),
				Check:  checkRun,
			},
		},
	})
}

// The documentation example runs and releases its lock.
func TestAccEphemeralLockExample(t *testing.T) {
	c := accCluster(t)
	// Not parallel: the example has no provider block.
	t.Setenv("ETCDCTL_ENDPOINTS", strings.Join(c.Endpoints(), ","))
	const name = "/locks/deploy/"
	events := watchPrefix(t, name)
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
				return fmt.Errorf("the example never took its lock")
			}
			return checkNoKeys(name)(nil)
		},
		Steps: []resource.TestStep{{
			ConfigDirectory: config.StaticDirectory("../../examples/ephemeral-resources/etcd_lock"),
		}},
	})
}

// lockRPC calls the provider's ephemeral etcd_lock over the plugin
// protocol, as the CLI does, with the provider configured for the shared
// cluster (newLockRPC) or for some endpoints (newLockRPCAt).
type lockRPC struct {
	t   *testing.T
	srv tfprotov6.ProviderServer
	typ tftypes.Object
}

func newLockRPC(t *testing.T) *lockRPC {
	t.Helper()
	return newLockRPCAt(t, testCluster.Endpoints(), nil)
}

// newLockRPCAt configures the provider with endpoints and the provider
// attributes in extra.
func newLockRPCAt(t *testing.T, endpoints []string, extra map[string]tftypes.Value) *lockRPC {
	t.Helper()
	ctx := context.Background()
	srv, err := NewProtocol6Server("test")()
	if err != nil {
		t.Fatal(err)
	}
	sch, err := srv.GetProviderSchema(ctx, &tfprotov6.GetProviderSchemaRequest{})
	if err != nil || len(sch.Diagnostics) > 0 {
		t.Fatal(err, sch.Diagnostics)
	}
	eps := make([]tftypes.Value, 0, len(endpoints))
	for _, ep := range endpoints {
		eps = append(eps, tftypes.NewValue(tftypes.String, ep))
	}
	attrs := map[string]tftypes.Value{"endpoints": tftypes.NewValue(tftypes.List{ElementType: tftypes.String}, eps)}
	for k, v := range extra {
		attrs[k] = v
	}
	pcfg := dynamicValue(t, sch.Provider.ValueType().(tftypes.Object), attrs)
	cresp, err := srv.ConfigureProvider(ctx, &tfprotov6.ConfigureProviderRequest{Config: pcfg})
	if err != nil || len(cresp.Diagnostics) > 0 {
		t.Fatal(err, diagText(cresp.Diagnostics))
	}
	return &lockRPC{t: t, srv: srv, typ: sch.EphemeralResourceSchemas["etcd_lock"].ValueType().(tftypes.Object)}
}

// dynamicValue is an object of type typ with the given attributes, the
// others null.
func dynamicValue(t *testing.T, typ tftypes.Object, attrs map[string]tftypes.Value) *tfprotov6.DynamicValue {
	t.Helper()
	vals := map[string]tftypes.Value{}
	for name, at := range typ.AttributeTypes {
		if v, ok := attrs[name]; ok {
			vals[name] = v
		} else {
			vals[name] = tftypes.NewValue(at, nil)
		}
	}
	dv, err := tfprotov6.NewDynamicValue(typ, tftypes.NewValue(typ, vals))
	if err != nil {
		t.Fatal(err)
	}
	return &dv
}

func diagText(ds []*tfprotov6.Diagnostic) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "[%s] %s: %s\n", d.Severity, d.Summary, d.Detail)
	}
	return b.String()
}

// openedLock is what Open returned.
type openedLock struct {
	private []byte
	renewAt time.Time
	key     string
	token   int64
}

func (r *lockRPC) open(name string, ttl int64) openedLock {
	r.t.Helper()
	resp, err := r.srv.OpenEphemeralResource(context.Background(), &tfprotov6.OpenEphemeralResourceRequest{
		TypeName: "etcd_lock",
		Config: dynamicValue(r.t, r.typ, map[string]tftypes.Value{
			"name":    tftypes.NewValue(tftypes.String, name),
			"ttl":     tftypes.NewValue(tftypes.Number, ttl),
			"timeout": tftypes.NewValue(tftypes.String, "10s"),
			"holder":  tftypes.NewValue(tftypes.String, r.t.Name()),
		}),
	})
	if err != nil || len(resp.Diagnostics) > 0 {
		r.t.Fatal(err, diagText(resp.Diagnostics))
	}
	v, err := resp.Result.Unmarshal(r.typ)
	if err != nil {
		r.t.Fatal(err)
	}
	var attrs map[string]tftypes.Value
	if err := v.As(&attrs); err != nil {
		r.t.Fatal(err)
	}
	o := openedLock{private: resp.Private, renewAt: resp.RenewAt}
	var tok big.Float
	if err := attrs["token"].As(&tok); err != nil {
		r.t.Fatal(err)
	}
	o.token, _ = tok.Int64()
	if err := attrs["key"].As(&o.key); err != nil {
		r.t.Fatal(err)
	}
	return o
}

func (r *lockRPC) renew(o openedLock) *tfprotov6.RenewEphemeralResourceResponse {
	r.t.Helper()
	resp, err := r.srv.RenewEphemeralResource(context.Background(), &tfprotov6.RenewEphemeralResourceRequest{TypeName: "etcd_lock", Private: o.private})
	if err != nil {
		r.t.Fatal(err)
	}
	return resp
}

func (r *lockRPC) close(o openedLock) []*tfprotov6.Diagnostic {
	r.t.Helper()
	resp, err := r.srv.CloseEphemeralResource(context.Background(), &tfprotov6.CloseEphemeralResourceRequest{TypeName: "etcd_lock", Private: o.private})
	if err != nil {
		r.t.Fatal(err)
	}
	return resp.Diagnostics
}

// wantDiag fails unless ds holds exactly one diagnostic, of severity sev,
// whose summary and detail contain every phrase.
func wantDiag(t *testing.T, what string, ds []*tfprotov6.Diagnostic, sev tfprotov6.DiagnosticSeverity, phrases ...string) {
	t.Helper()
	if len(ds) != 1 || ds[0].Severity != sev {
		t.Fatalf("%s: want one %s diagnostic, got:\n%s", what, sev, diagText(ds))
	}
	for _, p := range phrases {
		if !strings.Contains(ds[0].Summary+": "+ds[0].Detail, p) {
			t.Errorf("%s: diagnostic does not say %q:\n%s", what, p, diagText(ds))
		}
	}
}

// leaseOf returns the lease of key (0 if the key does not exist).
func leaseOf(t *testing.T, key string) int64 {
	t.Helper()
	resp, err := testCluster.Client().Get(etcdCtx(t), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return 0
	}
	return resp.Kvs[0].Lease
}

// deleteKey deletes key through cli, which must delete exactly that key:
// a test that deleted nothing would find the lock still held.
func deleteKey(t *testing.T, cli *clientv3.Client, key string) {
	t.Helper()
	resp, err := cli.Delete(etcdCtx(t), key)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Deleted != 1 {
		t.Fatalf("delete %s: deleted %d keys, want 1", key, resp.Deleted)
	}
}

// checkLeaseRevoked fails unless lease id no longer exists.
func checkLeaseRevoked(t *testing.T, id int64) {
	t.Helper()
	if ttl, _, err := leaseTTL(id); err != nil || ttl != -1 {
		t.Errorf("lease %x still exists (TTL %d, %v)", id, ttl, err)
	}
}

// Open, Renew and Close called directly, as the CLI would, with the lock
// lost in between in each way it can be: the run is told it was lost, at
// Renew and at Close, and nothing is left behind.
func TestAccEphemeralLockLost(t *testing.T) {
	accCluster(t)
	r := newLockRPC(t)
	prefix := keyPrefix(t)

	t.Run("held", func(t *testing.T) {
		r.t = t
		name := prefix + "held"
		start := time.Now()
		o := r.open(name, 6)
		opened := time.Now()
		if !strings.HasPrefix(o.key, name+"/") || o.token == 0 {
			t.Fatalf("key %q, token %d", o.key, o.token)
		}
		if got := prefixKeys(t, name+"/"); len(got) != 1 || got[o.key] != o.token {
			t.Fatalf("keys under the lock: %v, want %s with create revision %d", got, o.key, o.token)
		}
		lease := leaseOf(t, o.key)
		if ttl, granted, err := leaseTTL(lease); err != nil || ttl <= 0 || granted != 6 {
			t.Fatalf("lease %x: TTL %d of %d, %v", lease, ttl, granted, err)
		}
		// Renew every third of the TTL, counted from a moment during Open
		// (however long Open took on a busy machine).
		if from := o.renewAt.Add(-2 * time.Second); from.Before(start) || from.After(opened) {
			t.Errorf("RenewAt is %s after Open began and %s after it returned, want 2s after a moment in between",
				o.renewAt.Sub(start), o.renewAt.Sub(opened))
		}
		// Somebody else cannot have it meanwhile.
		s, err := concurrency.NewSession(testCluster.Client(), concurrency.WithTTL(5))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if _, err := recipes.NewMutex(s, name).TryLock(etcdCtx(t)); !errors.Is(err, recipes.ErrLocked) {
			t.Fatalf("TryLock by another session: %v, want ErrLocked", err)
		}
		resp := r.renew(o)
		if len(resp.Diagnostics) > 0 || !resp.RenewAt.After(time.Now()) {
			t.Fatalf("Renew: RenewAt %s, diagnostics:\n%s", resp.RenewAt, diagText(resp.Diagnostics))
		}
		if ds := r.close(o); len(ds) > 0 {
			t.Fatalf("Close:\n%s", diagText(ds))
		}
		if got := prefixKeys(t, name+"/"); len(got) > 0 {
			t.Errorf("keys left after Close: %v", got)
		}
		checkLeaseRevoked(t, lease)
	})

	t.Run("key deleted", func(t *testing.T) {
		r.t = t
		name := prefix + "deleted"
		o := r.open(name, 30)
		lease := leaseOf(t, o.key)
		deleteKey(t, testCluster.Client(), o.key)
		resp := r.renew(o)
		wantDiag(t, "Renew", resp.Diagnostics, tfprotov6.DiagnosticSeverityError, "Lock lost", fmt.Sprintf("lock %q was lost mid-run", name))
		wantDiag(t, "Close", r.close(o), tfprotov6.DiagnosticSeverityError, "Lock lost", fmt.Sprintf("lock %q was lost mid-run", name))
		checkLeaseRevoked(t, lease)
	})

	t.Run("key deleted and taken by another holder", func(t *testing.T) {
		r.t = t
		name := prefix + "taken"
		o := r.open(name, 30)
		deleteKey(t, testCluster.Client(), o.key)
		next := testLock(t, name, "next holder")
		if next.Token() <= o.token {
			t.Fatalf("next holder's token %d is not above %d", next.Token(), o.token)
		}
		wantDiag(t, "Close", r.close(o), tfprotov6.DiagnosticSeverityError, "Lock lost", "was lost mid-run")
		// The fenced release left the new holder's key alone.
		if got := prefixKeys(t, name+"/"); len(got) != 1 || got[next.Key()] != next.Token() {
			t.Errorf("keys under the lock: %v, want only the next holder's %s", got, next.Key())
		}
	})

	t.Run("lease revoked", func(t *testing.T) {
		r.t = t
		name := prefix + "revoked"
		o := r.open(name, 30)
		lease := leaseOf(t, o.key)
		if _, err := testCluster.Client().Revoke(etcdCtx(t), clientv3.LeaseID(lease)); err != nil {
			t.Fatal(err)
		}
		resp := r.renew(o)
		wantDiag(t, "Renew", resp.Diagnostics, tfprotov6.DiagnosticSeverityError, "Lock lost", fmt.Sprintf("lock %q was lost mid-run", name))
		wantDiag(t, "Close", r.close(o), tfprotov6.DiagnosticSeverityError, "Lock lost", fmt.Sprintf("lock %q was lost mid-run", name))
		if got := prefixKeys(t, name+"/"); len(got) > 0 {
			t.Errorf("keys left: %v", got)
		}
	})

	// A provider process that does not know the lock (it was restarted)
	// cannot vouch for it at Renew, and releases it from the private data
	// at Close.
	t.Run("unknown to the process", func(t *testing.T) {
		r.t = t
		name := prefix + "unknown"
		o := r.open(name, 30)
		lease := leaseOf(t, o.key)
		var id string
		heldLocks.Lock()
		for k, h := range heldLocks.m {
			if h.lock.Key() == o.key {
				id = k
			}
		}
		heldLocks.Unlock()
		h := takeLock(id)
		if h == nil {
			t.Fatalf("lock %s is not in the registry", o.key)
		}
		h.session.Orphan() // the old process's keep-alive is gone
		wantDiag(t, "Renew", r.renew(o).Diagnostics, tfprotov6.DiagnosticSeverityError, "Lock lost", "not held by this provider process")
		wantDiag(t, "Close", r.close(o), tfprotov6.DiagnosticSeverityWarning, "released")
		if got := prefixKeys(t, name+"/"); len(got) > 0 {
			t.Errorf("keys left: %v", got)
		}
		checkLeaseRevoked(t, lease)
	})
}

// Renew asks etcd with a linearizable read: a member that has not applied
// the deletion of the lock's key must not vouch for the lock from its own
// state. Here the provider talks to a follower cut off from the others; on
// a loaded machine, a follower that merely lags behind the leader by a few
// milliseconds did the same, and Renew said a deleted lock was held.
func TestAccEphemeralLockRenewStaleMember(t *testing.T) {
	accCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A cluster of its own: the shared one serves parallel tests.
	c, err := testserver.New(ctx, testserver.WithMembers(3))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	leader, err := c.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var stale *testserver.Member
	var others []string
	for _, m := range c.Members() {
		if m.ID != leader.ID && stale == nil {
			stale = &m
		} else {
			others = append(others, m.ClientURLs...)
		}
	}
	majority, err := c.NewClient(clientv3.Config{Endpoints: others})
	if err != nil {
		t.Fatal(err)
	}
	defer majority.Close()

	// Renew while cut off waits this long; under load, Open needs more
	// than a second or two at times.
	r := newLockRPCAt(t, stale.ClientURLs, map[string]tftypes.Value{
		"request_timeout": tftypes.NewValue(tftypes.String, "5s"),
	})
	name := keyPrefix(t) + "lock"
	o := r.open(name, 30)
	if err := c.Partition(stale.Name); err != nil {
		t.Fatal(err)
	}
	healed := false
	defer func() {
		if !healed {
			_ = c.Heal(stale.Name)
		}
	}()
	deleteKey(t, majority, o.key)

	// The cut-off member cannot tell: Renew warns that it cannot check.
	wantDiag(t, "Renew while cut off", r.renew(o).Diagnostics, tfprotov6.DiagnosticSeverityWarning, "Cannot check lock")

	// Back with the others, the member has the deletion.
	if err := c.Heal(stale.Name); err != nil {
		t.Fatal(err)
	}
	healed = true
	wantDiag(t, "Renew", r.renew(o).Diagnostics, tfprotov6.DiagnosticSeverityError, "Lock lost", fmt.Sprintf("lock %q was lost mid-run", name))
	wantDiag(t, "Close", r.close(o), tfprotov6.DiagnosticSeverityError, "Lock lost", fmt.Sprintf("lock %q was lost mid-run", name))
}
