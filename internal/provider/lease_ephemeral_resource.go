package provider

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral"
	"github.com/hashicorp/terraform-plugin-framework/ephemeral/schema"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

var (
	_ ephemeral.EphemeralResource              = (*leaseEphemeralResource)(nil)
	_ ephemeral.EphemeralResourceWithConfigure = (*leaseEphemeralResource)(nil)
	_ ephemeral.EphemeralResourceWithRenew     = (*leaseEphemeralResource)(nil)
	_ ephemeral.EphemeralResourceWithClose     = (*leaseEphemeralResource)(nil)
)

// privateEphemeralLease is the private data key holding the lease ID.
const privateEphemeralLease = "lease_id"

// leaseEphemeralResource is the ephemeral etcd_lease: a lease that lives as
// long as one Terraform run.
type leaseEphemeralResource struct {
	provider *providerData
}

func newLeaseEphemeralResource() ephemeral.EphemeralResource { return &leaseEphemeralResource{} }

type leaseEphemeralModel struct {
	TTL        types.Int64  `tfsdk:"ttl"`
	Keys       types.Map    `tfsdk:"keys"`
	ID         types.String `tfsdk:"id"`
	GrantedTTL types.Int64  `tfsdk:"granted_ttl"`
}

func (r *leaseEphemeralResource) Metadata(_ context.Context, req ephemeral.MetadataRequest, resp *ephemeral.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_lease"
}

func (r *leaseEphemeralResource) Schema(_ context.Context, _ ephemeral.SchemaRequest, resp *ephemeral.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A lease that lives exactly as long as one Terraform run (Terraform 1.10+, OpenTofu 1.11+). " +
			"It is granted when the run opens it, kept alive while the run lasts, and revoked when the run closes " +
			"it, which deletes every key attached to it. Plan and apply are separate runs, each with its own lease.\n\n" +
			"Use it for what must exist only while Terraform works: a marker that a deployment is in progress, a " +
			"registration that other tools watch. Write such keys with `keys`: they are put under the lease when " +
			"it is granted and vanish with it. Ephemeral values such as `id` can be passed to provider blocks, " +
			"other ephemeral resources, write-only arguments and locals, not to ordinary resource arguments, so " +
			"`etcd_key.lease` cannot use this lease; use the `etcd_lease` resource for keys that outlive the run.",
		Attributes: map[string]schema.Attribute{
			"ttl": schema.Int64Attribute{
				Required: true,
				MarkdownDescription: "Time to live in seconds, at least 1. The provider renews the lease while the " +
					"run lasts, so this is how long the keys outlive a run that is killed before it can revoke it.",
				Validators: []validator.Int64{int64validator.AtLeast(1)},
			},
			"keys": schema.MapAttribute{
				ElementType: types.StringType,
				Optional:    true,
				MarkdownDescription: "Keys to put under the lease when it is granted, full key → text value, e.g. " +
					"`{ \"/deploy/lock\" = \"terraform\" }`. A key that already exists is not overwritten: opening " +
					"fails and the lease is revoked.",
				Validators: []validator.Map{mapvalidator.KeysAre(stringvalidator.LengthAtLeast(1))},
			},
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The lease ID in hexadecimal, as `etcdctl lease grant` prints it.",
			},
			"granted_ttl": schema.Int64Attribute{
				Computed:            true,
				MarkdownDescription: "The TTL in seconds etcd granted.",
			},
		},
	}
}

func (r *leaseEphemeralResource) Configure(_ context.Context, req ephemeral.ConfigureRequest, resp *ephemeral.ConfigureResponse) {
	r.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *leaseEphemeralResource) Open(ctx context.Context, req ephemeral.OpenRequest, resp *ephemeral.OpenResponse) {
	var m leaseEphemeralModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	var ops []client.GuardedOp
	for k, v := range m.Keys.Elements() {
		ops = append(ops, client.GuardedOp{Key: k, Value: []byte(v.(types.String).ValueString())})
	}

	l, err := cl.GrantLease(ctx, m.TTL.ValueInt64())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("ttl"), "Cannot grant lease", err.Error())
		return
	}
	id := client.FormatLeaseID(l.ID)
	if len(ops) > 0 {
		for i := range ops {
			ops[i].Lease = l.ID
		}
		if _, err := cl.ApplyGuarded(ctx, ops, client.DefaultMaxTxnOps); err != nil {
			// Revoking also deletes whatever was written before the failure.
			if rerr := cl.RevokeLease(ctx, l.ID); rerr != nil {
				err = fmt.Errorf("%w; revoking lease %s also failed: %v (it expires in %d s)", err, id, rerr, l.GrantedTTL)
			}
			resp.Diagnostics.AddAttributeError(path.Root("keys"), "Cannot write keys under the lease",
				fmt.Sprintf("%v. The provider does not overwrite existing keys; delete them or choose other keys.", err))
			return
		}
	}
	keepAliveLease(cl, l.ID)
	tflog.Debug(ctx, "granted ephemeral etcd lease", map[string]any{"id": id, "granted_ttl": l.GrantedTTL, "keys": len(ops)})

	m.ID = types.StringValue(id)
	m.GrantedTTL = types.Int64Value(l.GrantedTTL)
	resp.Diagnostics.Append(resp.Result.Set(ctx, m)...)
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateEphemeralLease, fmt.Appendf(nil, "%q", id))...)
	resp.RenewAt = renewAt(l.GrantedTTL)
}

// renewAt is when Terraform should renew a lease of ttl seconds: at two
// thirds of it, so that a slow renewal still arrives in time.
func renewAt(ttl int64) time.Time {
	return time.Now().Add(time.Duration(ttl) * time.Second * 2 / 3)
}

func (r *leaseEphemeralResource) leaseFromPrivate(ctx context.Context, p privateGetter) (int64, string, error) {
	b, diags := p.GetKey(ctx, privateEphemeralLease)
	if diags.HasError() || len(b) < 2 {
		return 0, "", fmt.Errorf("the lease ID is missing from the ephemeral resource's private data")
	}
	hex := string(b[1 : len(b)-1])
	id, err := client.ParseLeaseID(hex)
	return id, hex, err
}

func (r *leaseEphemeralResource) Renew(ctx context.Context, req ephemeral.RenewRequest, resp *ephemeral.RenewResponse) {
	id, hex, err := r.leaseFromPrivate(ctx, req.Private)
	if err != nil {
		resp.Diagnostics.AddError("Cannot renew lease", err.Error())
		return
	}
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	ttl, err := cl.RenewLease(ctx, id)
	if err != nil {
		resp.Diagnostics.AddError("Cannot renew lease", fmt.Sprintf("lease %s: %v", hex, err))
		return
	}
	resp.RenewAt = renewAt(ttl)
}

func (r *leaseEphemeralResource) Close(ctx context.Context, req ephemeral.CloseRequest, resp *ephemeral.CloseResponse) {
	id, hex, err := r.leaseFromPrivate(ctx, req.Private)
	if err != nil {
		resp.Diagnostics.AddError("Cannot revoke lease", err.Error())
		return
	}
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	stopKeepAlive(cl, id)
	if err := cl.RevokeLease(ctx, id); err != nil {
		resp.Diagnostics.AddError("Cannot revoke lease",
			fmt.Sprintf("lease %s: %v. It expires by itself when its TTL runs out, and its keys with it.", hex, err))
		return
	}
	tflog.Debug(ctx, "revoked ephemeral etcd lease", map[string]any{"id": hex})
}

// keepAlives holds the keep-alive of each open ephemeral lease of this
// provider process, so that Close can stop it. Open and Close of one
// ephemeral resource instance happen in the same process.
var keepAlives = struct {
	sync.Mutex
	cancel map[keepAliveKey]context.CancelFunc
}{cancel: map[keepAliveKey]context.CancelFunc{}}

type keepAliveKey struct {
	client *client.Client
	id     int64
}

// keepAliveLease renews the lease in the background until stopKeepAlive.
// clientv3 sends a renewal every third of the TTL on one stream per client.
func keepAliveLease(cl *client.Client, id int64) {
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := cl.KeepAlive(ctx, clientv3.LeaseID(id))
	if err != nil {
		cancel()
		return // Renew, called by Terraform at RenewAt, still keeps it alive
	}
	keepAlives.Lock()
	keepAlives.cancel[keepAliveKey{cl, id}] = cancel
	keepAlives.Unlock()
	go func() {
		for range ch { //nolint:revive // drain the responses until the context ends
		}
	}()
}

func stopKeepAlive(cl *client.Client, id int64) {
	keepAlives.Lock()
	defer keepAlives.Unlock()
	if cancel, ok := keepAlives.cancel[keepAliveKey{cl, id}]; ok {
		cancel()
		delete(keepAlives.cancel, keepAliveKey{cl, id})
	}
}
