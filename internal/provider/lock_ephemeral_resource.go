package provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
	"github.com/terraform-etcd/terraform-provider-etcd/recipes"
)

var (
	_ ephemeral.EphemeralResource              = (*lockEphemeralResource)(nil)
	_ ephemeral.EphemeralResourceWithConfigure = (*lockEphemeralResource)(nil)
	_ ephemeral.EphemeralResourceWithRenew     = (*lockEphemeralResource)(nil)
	_ ephemeral.EphemeralResourceWithClose     = (*lockEphemeralResource)(nil)
)

const (
	// privateEphemeralLock is the private data key holding a lockPrivate.
	privateEphemeralLock = "lock"

	defaultLockTTL = 60
	// defaultLockTimeout is how long Open waits, as written in HCL.
	defaultLockTimeout = "5m"
)

// lockEphemeralResource is the ephemeral etcd_lock: a recipes.Mutex held
// for as long as one Terraform run needs it.
type lockEphemeralResource struct {
	provider *providerData
}

func newLockEphemeralResource() ephemeral.EphemeralResource { return &lockEphemeralResource{} }

type lockEphemeralModel struct {
	Name    types.String `tfsdk:"name"`
	TTL     types.Int64  `tfsdk:"ttl"`
	Timeout types.String `tfsdk:"timeout"`
	Holder  types.String `tfsdk:"holder"`
	Token   types.Int64  `tfsdk:"token"`
	Key     types.String `tfsdk:"key"`
}

func (r *lockEphemeralResource) Metadata(_ context.Context, req ephemeral.MetadataRequest, resp *ephemeral.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_lock"
}

func (r *lockEphemeralResource) Schema(_ context.Context, _ ephemeral.SchemaRequest, resp *ephemeral.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A distributed lock held for the length of one Terraform run (Terraform 1.10+, " +
			"OpenTofu 1.11+), so that two pipelines working on the same thing take turns instead of " +
			"overlapping. Opening it waits (up to `timeout`) until the lock is free; closing it releases it.\n\n" +
			"It is a fair, fenced mutex of the provider's recipes SDK (`recipes.NewMutex`): waiters are served " +
			"in the order they asked, the holder's key lives under `name` and is attached to a lease the " +
			"provider keeps alive while the run lasts, so a run that is killed loses the lock within `ttl` " +
			"seconds. Other programs can take the same lock with `recipes.NewMutex` on the same prefix.\n\n" +
			"If the lock is lost in the middle of the run (the key was deleted, the lease revoked or expired), " +
			"the run fails with an error that says so, at the next renewal and when the lock is closed; " +
			"work already done during the run may then have overlapped with another holder's. `token` is the " +
			"fencing token: pass it to the systems the run changes so that they can reject a stale holder.\n\n" +
			"Terraform opens ephemeral resources in every run that needs them, and closes them once everything " +
			"that refers to them is done: make the work that needs the lock refer to it, e.g. pass `token` to " +
			"provisioners or scripts. `terraform plan` and `terraform apply` are separate runs, and `apply` " +
			"without a saved plan plans and applies in two phases: each holds the lock on its own, and " +
			"another holder may come in between.",
		Attributes: map[string]schema.Attribute{
			"name": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "The lock: a key prefix such as `\"/locks/deploy\"`. Every run (and every " +
					"`recipes.NewMutex`) with the same name contends for the same lock; its keys live under " +
					"the name followed by one `/`. Do not nest lock names (`/locks/a` and `/locks/a/b`).",
				Validators: []validator.String{
					stringvalidator.RegexMatches(regexp.MustCompile(`[^/]`),
						`must name a lock, such as "/locks/deploy", not consist of slashes only`),
				},
			},
			"ttl": schema.Int64Attribute{
				Optional: true,
				MarkdownDescription: fmt.Sprintf("Time to live of the lock's lease in seconds, at least 1. The "+
					"provider keeps the lease alive while the run lasts, so this is how long the lock stays taken "+
					"after a run that is killed before it can release it. Defaults to `%d`.", defaultLockTTL),
				Validators: []validator.Int64{int64validator.AtLeast(1)},
			},
			"timeout": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: fmt.Sprintf("How long to wait for the lock when another holder has it, as a "+
					"Go duration such as `\"30s\"` or `\"10m\"`. When it runs out, the run fails with an error "+
					"that names the current holder. Defaults to `\"%s\"`.", defaultLockTimeout),
				Validators: []validator.String{durationValidator{}},
			},
			"holder": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Text stored as the value of the holder's key, for humans: a pipeline or " +
					"job ID, a user name. It shows in the error of a run that waits in vain, and in " +
					"`etcdctl get --prefix <name>/`. Defaults to `\"terraform on <host name>\"`.",
			},
			"token": schema.Int64Attribute{
				Computed: true,
				MarkdownDescription: "The fencing token: the create revision of the holder's key. Every later " +
					"holder of the lock gets a larger one, so a system that remembers the highest token it has " +
					"seen can reject writes from a holder that lost the lock.",
			},
			"key": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The holder's key in etcd, under `name`.",
			},
		},
	}
}

func (r *lockEphemeralResource) Configure(_ context.Context, req ephemeral.ConfigureRequest, resp *ephemeral.ConfigureResponse) {
	r.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

// lockPrivate is what Terraform carries from Open to Renew and Close. The
// session and the held lock themselves stay in heldLocks, under ID.
type lockPrivate struct {
	ID    string `json:"id"`
	Name  string `json:"name"`
	Key   string `json:"key"`
	Token int64  `json:"token"`
	Lease int64  `json:"lease"`
	TTL   int64  `json:"ttl"`
}

// heldLock is one open etcd_lock of this provider process.
type heldLock struct {
	name    string
	ttl     int64 // granted TTL of the session's lease, seconds
	session *concurrency.Session
	lock    *recipes.Lock
}

// heldLocks holds the open etcd_locks of this provider process by the
// random ID kept in their private data: Terraform calls Open, Renew and
// Close of one ephemeral resource instance in the same provider process,
// which keeps the session's lease alive in between.
var heldLocks = struct {
	sync.Mutex
	m map[string]*heldLock
}{m: map[string]*heldLock{}}

func registerLock(h *heldLock) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	heldLocks.Lock()
	heldLocks.m[id] = h
	heldLocks.Unlock()
	return id, nil
}

func lookupLock(id string) *heldLock {
	heldLocks.Lock()
	defer heldLocks.Unlock()
	return heldLocks.m[id]
}

// takeLock removes the lock from the registry and returns it (nil if absent).
func takeLock(id string) *heldLock {
	heldLocks.Lock()
	defer heldLocks.Unlock()
	h := heldLocks.m[id]
	delete(heldLocks.m, id)
	return h
}

// lockRenewAt is when Terraform should call Renew, which checks that the
// lock is still held: every third of the lease's TTL.
func lockRenewAt(ttl int64) time.Time {
	return time.Now().Add(time.Duration(max(ttl, 1)) * time.Second / 3)
}

func defaultHolder() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown host"
	}
	return "terraform on " + host
}

func (r *lockEphemeralResource) Open(ctx context.Context, req ephemeral.OpenRequest, resp *ephemeral.OpenResponse) {
	var m lockEphemeralModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	name := m.Name.ValueString()
	ttl := int64(defaultLockTTL)
	if !m.TTL.IsNull() {
		ttl = m.TTL.ValueInt64()
	}
	rawTimeout := defaultLockTimeout
	if !m.Timeout.IsNull() {
		rawTimeout = m.Timeout.ValueString()
	}
	timeout, err := client.ParseTimeout(rawTimeout)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("timeout"), "Invalid timeout", err.Error())
		return
	}
	holder := defaultHolder()
	if !m.Holder.IsNull() {
		holder = m.Holder.ValueString()
	}
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}

	// The lease is granted with the request timeout; the session then
	// keeps it alive on the client's own context, beyond this call.
	lease, err := cl.GrantLease(ctx, ttl)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("ttl"), "Cannot take lock",
			fmt.Sprintf("lock %q: cannot grant its lease: %v", name, err))
		return
	}
	s, err := concurrency.NewSession(cl.Client, concurrency.WithLease(clientv3.LeaseID(lease.ID)), concurrency.WithTTL(int(lease.GrantedTTL)))
	if err != nil {
		_ = cl.RevokeLease(context.WithoutCancel(ctx), lease.ID)
		resp.Diagnostics.AddError("Cannot take lock",
			fmt.Sprintf("lock %q: cannot keep its lease alive: %v", name, cl.Describe(err, "keep lease "+client.FormatLeaseID(lease.ID)+" alive", "")))
		return
	}
	mu := recipes.NewMutex(s, name, recipes.WithValue(holder))

	tflog.Info(ctx, "waiting for etcd lock", map[string]any{"name": name, "timeout": timeout.String(), "lease": client.FormatLeaseID(lease.ID)})
	start := time.Now()
	lctx, cancel := context.WithTimeout(ctx, timeout)
	l, err := mu.Lock(lctx)
	timedOut := lctx.Err() == context.DeadlineExceeded && ctx.Err() == nil
	cancel()
	if err != nil {
		// Revoking the lease removes the waiting key, whatever Lock left.
		s.Orphan()
		revokeErr := cl.RevokeLease(context.WithoutCancel(ctx), lease.ID)
		switch {
		case timedOut:
			resp.Diagnostics.AddAttributeError(path.Root("timeout"), "Timed out waiting for lock",
				fmt.Sprintf("Lock %q was not free within %s: %s.\n\nWait for that holder to finish, or raise timeout. "+
					"A holder whose run was killed keeps the lock until its lease expires (its ttl).",
					name, timeout, describeHolder(ctx, cl, mu.Prefix())))
		case ctx.Err() != nil:
			resp.Diagnostics.AddError("Waiting for lock canceled", fmt.Sprintf("lock %q: %v", name, err))
		case errors.Is(err, recipes.ErrSessionExpired):
			resp.Diagnostics.AddError("Cannot take lock",
				fmt.Sprintf("lock %q: the lease of this run (%s) expired or was revoked while waiting: %v. Run again.",
					name, client.FormatLeaseID(lease.ID), err))
		default:
			resp.Diagnostics.AddError("Cannot take lock", fmt.Sprintf("lock %q: %v", name, cl.Describe(err, "take lock", mu.Prefix())))
		}
		if revokeErr != nil {
			resp.Diagnostics.AddWarning("Cannot revoke the lock's lease",
				fmt.Sprintf("%v. It expires by itself within %d s.", revokeErr, lease.GrantedTTL))
		}
		return
	}
	l.Done() // start watching the key, so that a loss is seen at once

	h := &heldLock{name: name, ttl: lease.GrantedTTL, session: s, lock: l}
	id, err := registerLock(h)
	if err != nil {
		r.release(ctx, h, &resp.Diagnostics)
		resp.Diagnostics.AddError("Cannot take lock", fmt.Sprintf("lock %q: %v", name, err))
		return
	}
	tflog.Info(ctx, "took etcd lock", map[string]any{"name": name, "key": l.Key(), "token": l.Token(),
		"waited": time.Since(start).Round(time.Millisecond).String()})

	priv, err := json.Marshal(lockPrivate{ID: id, Name: name, Key: l.Key(), Token: l.Token(), Lease: lease.ID, TTL: lease.GrantedTTL})
	if err == nil {
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateEphemeralLock, priv)...)
	} else {
		resp.Diagnostics.AddError("Cannot take lock", fmt.Sprintf("lock %q: %v", name, err))
	}
	m.Token = types.Int64Value(l.Token())
	m.Key = types.StringValue(l.Key())
	resp.Diagnostics.Append(resp.Result.Set(ctx, m)...)
	if resp.Diagnostics.HasError() {
		takeLock(id)
		r.release(ctx, h, &resp.Diagnostics)
		return
	}
	resp.RenewAt = lockRenewAt(lease.GrantedTTL)
}

// describeHolder says who holds the lock whose keys live under prefix: the
// key with the lowest create revision.
func describeHolder(ctx context.Context, cl *client.Client, prefix string) string {
	ctx, cancel := cl.Ctx(context.WithoutCancel(ctx))
	defer cancel()
	resp, err := cl.Get(ctx, prefix, append(clientv3.WithFirstCreate(), clientv3.WithPrefix())...)
	if err != nil {
		return fmt.Sprintf("the current holder could not be read (%v)", cl.Describe(err, "read", prefix))
	}
	if len(resp.Kvs) == 0 {
		return "nobody holds it now: it was released just as the wait ended; run again"
	}
	kv := resp.Kvs[0]
	return fmt.Sprintf("it is held by key %q with value %q (fencing token %d, lease %s)",
		kv.Key, kv.Value, kv.CreateRevision, client.FormatLeaseID(kv.Lease))
}

func lockFromPrivate(ctx context.Context, p privateGetter) (lockPrivate, error) {
	var lp lockPrivate
	b, diags := p.GetKey(ctx, privateEphemeralLock)
	if diags.HasError() || len(b) == 0 {
		return lp, errors.New("the lock's details are missing from the ephemeral resource's private data")
	}
	if err := json.Unmarshal(b, &lp); err != nil || lp.ID == "" {
		return lp, fmt.Errorf("the lock's details in the ephemeral resource's private data are not readable: %q", b)
	}
	return lp, nil
}

// lostError says that lock name was lost mid-run and what that means.
func lostError(name string, err error) string {
	return fmt.Sprintf("lock %q was lost mid-run: %v.\n\nAnother holder may have taken it since, so what this run "+
		"did after that may have overlapped with the other holder's work. Check the result, and find out why: the "+
		"lock's key was deleted, its lease revoked, or the provider could not reach etcd for longer than ttl.", name, err)
}

func (r *lockEphemeralResource) Renew(ctx context.Context, req ephemeral.RenewRequest, resp *ephemeral.RenewResponse) {
	lp, err := lockFromPrivate(ctx, req.Private)
	if err != nil {
		resp.Diagnostics.AddError("Cannot check lock", err.Error())
		return
	}
	h := lookupLock(lp.ID)
	if h == nil {
		resp.Diagnostics.AddError("Lock lost",
			fmt.Sprintf("lock %q is not held by this provider process (was the provider restarted?): nobody keeps "+
				"its lease alive, so it is lost mid-run, or will be within %d s.", lp.Name, lp.TTL))
		return
	}
	if err := h.lock.Err(); err != nil {
		resp.Diagnostics.AddError("Lock lost", lostError(h.name, err))
		return
	}
	// The watch behind Err reports a loss within milliseconds; asking etcd
	// as well makes the answer exact at this moment.
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	cctx, cancel := cl.Ctx(ctx)
	defer cancel()
	// A linearizable Get, which sees every change etcd acknowledged before
	// it. Not a transaction with the lock's Guard and nothing else: etcd
	// serves a transaction without operations as a serializable read, from
	// the state of the one member that answers, which may not have applied
	// the key's deletion yet (a follower lagging under load, or cut off
	// from the others), and the lost lock would be reported held.
	gr, err := cl.Get(cctx, h.lock.Key(), clientv3.WithKeysOnly())
	switch {
	case err != nil:
		resp.Diagnostics.AddWarning("Cannot check lock",
			fmt.Sprintf("lock %q: %v. The provider keeps trying to keep its lease alive; the lock is lost if etcd "+
				"stays unreachable for %d s.", h.name, cl.Describe(err, "read", lp.Key), lp.TTL))
		resp.RenewAt = time.Now().Add(time.Second)
		return
	case len(gr.Kvs) == 0 || gr.Kvs[0].CreateRevision != h.lock.Token():
		resp.Diagnostics.AddError("Lock lost", lostError(h.name,
			fmt.Errorf("%w: key %s no longer has create revision %d", recipes.ErrLockLost, h.lock.Key(), h.lock.Token())))
		return
	}
	resp.RenewAt = lockRenewAt(lp.TTL)
}

func (r *lockEphemeralResource) Close(ctx context.Context, req ephemeral.CloseRequest, resp *ephemeral.CloseResponse) {
	lp, err := lockFromPrivate(ctx, req.Private)
	if err != nil {
		resp.Diagnostics.AddError("Cannot release lock", err.Error())
		return
	}
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	h := takeLock(lp.ID)
	if h == nil {
		r.releaseUnknown(ctx, cl, lp, &resp.Diagnostics)
		return
	}
	r.release(ctx, h, &resp.Diagnostics)
}

// release unlocks (fenced by the token) and revokes the session's lease.
func (r *lockEphemeralResource) release(ctx context.Context, h *heldLock, diags *diag.Diagnostics) {
	ctx = context.WithoutCancel(ctx)
	s := h.session
	lease := int64(s.Lease())
	cl, cdiags := r.provider.Client(ctx)
	if cdiags.HasError() {
		diags.Append(cdiags...)
		return
	}
	uctx, cancel := cl.Ctx(ctx)
	err := h.lock.Unlock(uctx)
	cancel()
	s.Orphan()
	revokeErr := cl.RevokeLease(ctx, lease)
	switch {
	case errors.Is(err, recipes.ErrLockLost):
		diags.AddError("Lock lost", lostError(h.name, err))
	case err != nil:
		if revokeErr == nil {
			// Revoking the lease deleted the key: released after all.
			tflog.Warn(ctx, "etcd lock released by revoking its lease", map[string]any{"name": h.name, "unlock_error": err.Error()})
			break
		}
		diags.AddError("Cannot release lock",
			fmt.Sprintf("lock %q: %v; revoking its lease also failed: %v. The lock is released when its lease "+
				"expires, within %d s, or when its key %s is deleted.", h.name, cl.Describe(err, "release lock", h.lock.Key()),
				revokeErr, h.ttl, h.lock.Key()))
		return
	default:
		tflog.Info(ctx, "released etcd lock", map[string]any{"name": h.name, "key": h.lock.Key(), "token": h.lock.Token()})
	}
	if revokeErr != nil {
		diags.AddWarning("Cannot revoke the lock's lease",
			fmt.Sprintf("lock %q: %v. It expires by itself.", h.name, revokeErr))
	}
}

// releaseUnknown ends a lock that this provider process does not know,
// from its private data alone: it deletes the key if it still has the
// lock's token and revokes the lease.
func (r *lockEphemeralResource) releaseUnknown(ctx context.Context, cl *client.Client, lp lockPrivate, diags *diag.Diagnostics) {
	ctx = context.WithoutCancel(ctx)
	cctx, cancel := cl.Ctx(ctx)
	tr, err := cl.Txn(cctx).
		If(clientv3.Compare(clientv3.CreateRevision(lp.Key), "=", lp.Token)).
		Then(clientv3.OpDelete(lp.Key)).
		Commit()
	cancel()
	revokeErr := cl.RevokeLease(ctx, lp.Lease)
	switch {
	case err != nil:
		diags.AddError("Cannot release lock", fmt.Sprintf("lock %q: %v. It is released when its lease %s expires.",
			lp.Name, cl.Describe(err, "release lock", lp.Key), client.FormatLeaseID(lp.Lease)))
	case !tr.Succeeded:
		diags.AddError("Lock lost", lostError(lp.Name, fmt.Errorf("%w: key %s no longer has create revision %d "+
			"(and this provider process did not hold it: was the provider restarted?)", recipes.ErrLockLost, lp.Key, lp.Token)))
	default:
		diags.AddWarning("Lock released by another provider process",
			fmt.Sprintf("lock %q was taken by a provider process that is gone (was the provider restarted?); it was "+
				"still held and is now released, but nobody checked it in between.", lp.Name))
	}
	if revokeErr != nil {
		diags.AddWarning("Cannot revoke the lock's lease", fmt.Sprintf("lock %q: %v. It expires by itself.", lp.Name, revokeErr))
	}
}
