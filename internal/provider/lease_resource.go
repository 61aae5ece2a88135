package provider

import (
	"context"
	"errors"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/stringplanmodifier"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-log/tflog"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

var (
	_ resource.Resource                = (*leaseResource)(nil)
	_ resource.ResourceWithConfigure   = (*leaseResource)(nil)
	_ resource.ResourceWithImportState = (*leaseResource)(nil)
	_ resource.ResourceWithIdentity    = (*leaseResource)(nil)
)

// leaseResource is etcd_lease: one lease, granted on create and revoked on
// destroy.
type leaseResource struct {
	provider *providerData
}

func newLeaseResource() resource.Resource { return &leaseResource{} }

type leaseResourceModel struct {
	ID         types.String `tfsdk:"id"`
	TTL        types.Int64  `tfsdk:"ttl"`
	GrantedTTL types.Int64  `tfsdk:"granted_ttl"`
}

func (r *leaseResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_lease"
}

func (r *leaseResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "An etcd lease. Keys attached to it (`etcd_key.lease = etcd_lease.NAME.id`) live " +
			"as long as the lease does.\n\n" +
			"**Destroying this resource revokes the lease, and etcd then deletes every key attached to " +
			"it**, including keys written outside Terraform. Changing `ttl` replaces the lease, which " +
			"deletes its keys too; keys managed in the same configuration are replaced in the same plan.\n\n" +
			"The provider does not keep the lease alive: it expires `ttl` seconds after it was granted " +
			"unless something renews it (e.g. `etcdctl lease keep-alive ID`). A lease that has expired " +
			"or was revoked is gone from etcd, and so are its keys: the next plan grants a new lease and " +
			"creates the keys that used it again. For a lease that lasts only as long as a Terraform " +
			"run, use the `etcd_lease` ephemeral resource.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed: true,
				MarkdownDescription: "The lease ID in hexadecimal, as `etcdctl lease grant` prints it " +
					"(e.g. `\"694d7c8c1f0c7a0b\"`). Use it as `etcd_key.lease`.",
				PlanModifiers: []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"ttl": schema.Int64Attribute{
				Required: true,
				MarkdownDescription: "Time to live in seconds, at least 1. etcd may grant more than asked " +
					"for (it enforces a minimum of about 1.5 election timeouts); see `granted_ttl`. " +
					"Changing it replaces the lease, which deletes its keys.",
				Validators:    []validator.Int64{int64validator.AtLeast(1)},
				PlanModifiers: []planmodifier.Int64{int64planmodifier.RequiresReplace()},
			},
			"granted_ttl": schema.Int64Attribute{
				Computed: true,
				MarkdownDescription: "The TTL in seconds etcd granted. The remaining time to live changes " +
					"every second and is not stored; the `etcd_lease` data source reads it.",
				PlanModifiers: []planmodifier.Int64{int64planmodifier.UseStateForUnknown()},
			},
		},
	}
}

func (r *leaseResource) IdentitySchema(_ context.Context, _ resource.IdentitySchemaRequest, resp *resource.IdentitySchemaResponse) {
	resp.IdentitySchema = stringIdentitySchema("id", "The lease ID in hexadecimal, as `etcdctl lease grant` prints it.")
}

func (r *leaseResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *leaseResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan leaseResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	l, err := cl.GrantLease(ctx, plan.TTL.ValueInt64())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("ttl"), "Cannot grant lease", err.Error())
		return
	}
	plan.ID = types.StringValue(client.FormatLeaseID(l.ID))
	plan.GrantedTTL = types.Int64Value(l.GrantedTTL)
	tflog.Debug(ctx, "granted etcd lease", map[string]any{"id": plan.ID.ValueString(), "granted_ttl": l.GrantedTTL})
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "id", plan.ID.ValueString())...)
}

func (r *leaseResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state leaseResourceModel
	resp.Diagnostics.Append(getState(ctx, req.State, &state)...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "id", state.ID.ValueString())...)
	if r.provider.keepStateUnconfigured(&resp.Diagnostics) {
		return
	}
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	id, err := client.ParseLeaseID(state.ID.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("id"), "Invalid lease ID in state", err.Error())
		return
	}
	l, err := cl.GetLease(ctx, id, false)
	switch {
	case errors.Is(err, client.ErrLeaseNotFound):
		tflog.Warn(ctx, "etcd lease expired or revoked; removing it from state", map[string]any{"id": state.ID.ValueString()})
		resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "id", state.ID.ValueString())...) // the framework wants one
		resp.State.RemoveResource(ctx)
		return
	case err != nil:
		resp.Diagnostics.AddAttributeError(path.Root("id"), "Cannot read lease", err.Error())
		return
	}
	state.ID = types.StringValue(client.FormatLeaseID(id))
	state.GrantedTTL = types.Int64Value(l.GrantedTTL)
	if state.TTL.IsNull() { // import: the TTL asked for is not recorded by etcd
		state.TTL = types.Int64Value(l.GrantedTTL)
	}
	resp.Diagnostics.Append(setState(ctx, &resp.State, state)...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "id", state.ID.ValueString())...)
}

// Update is never called with a change (every attribute replaces the lease),
// but the framework requires it.
func (r *leaseResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan leaseResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "id", plan.ID.ValueString())...)
}

func (r *leaseResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state leaseResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	id, err := client.ParseLeaseID(state.ID.ValueString())
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("id"), "Invalid lease ID in state", err.Error())
		return
	}
	if err := cl.RevokeLease(ctx, id); err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("id"), "Cannot revoke lease", err.Error())
	}
}

func (r *leaseResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	target, diags := importTarget(ctx, req, "id", "694d7c8c1f0c7a0b")
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	id, err := client.ParseLeaseID(target)
	if err != nil {
		resp.Diagnostics.AddError("Invalid lease ID",
			fmt.Sprintf("%v. Import a lease by its ID, e.g. terraform import etcd_lease.NAME 694d7c8c1f0c7a0b", err))
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), client.FormatLeaseID(id))...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "id", client.FormatLeaseID(id))...)
}

// leaseChangeRequiresReplace is the plan modifier of a key's lease
// attribute: a key that was attached to a lease is replaced when the lease
// changes, including when it becomes unknown because the lease resource is
// being replaced. Revoking the old lease deletes the key, so an in-place
// update (guarded by the key's mod_revision) could not succeed; replacing it
// puts the destroy before the revoke and the create after the new grant, in
// the same plan. Attaching a key that had no lease, or detaching one, is an
// in-place write. The same lease spelled differently is no change.
func leaseChangeRequiresReplace() planmodifier.String {
	return stringplanmodifier.RequiresReplaceIf(
		func(_ context.Context, req planmodifier.StringRequest, resp *stringplanmodifier.RequiresReplaceIfFuncResponse) {
			resp.RequiresReplace = leaseChanged(req.StateValue, req.PlanValue)
		},
		"Replaces the key when the lease it was attached to changes (revoking a lease deletes its keys).",
		"Replaces the key when the lease it was attached to changes (revoking a lease deletes its keys).",
	)
}

func leaseChanged(prior, planned types.String) bool {
	switch {
	case prior.IsNull() || prior.IsUnknown() || planned.IsNull():
		return false
	case planned.IsUnknown():
		return true
	}
	a, errA := client.ParseLeaseID(prior.ValueString())
	b, errB := client.ParseLeaseID(planned.ValueString())
	return errA != nil || errB != nil || a != b
}
