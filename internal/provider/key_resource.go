package provider

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/diag"
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
	"github.com/terraform-etcd/terraform-provider-etcd/internal/shell"
)

var (
	_ resource.Resource                   = (*keyResource)(nil)
	_ resource.ResourceWithConfigure      = (*keyResource)(nil)
	_ resource.ResourceWithImportState    = (*keyResource)(nil)
	_ resource.ResourceWithValidateConfig = (*keyResource)(nil)
)

// keyResource is etcd_key: one key and its value.
type keyResource struct {
	provider *providerData
}

func newKeyResource() resource.Resource { return &keyResource{} }

type keyResourceModel struct {
	ID             types.String `tfsdk:"id"`
	Key            types.String `tfsdk:"key"`
	Value          types.String `tfsdk:"value"`
	ValueBase64    types.String `tfsdk:"value_base64"`
	Lease          types.String `tfsdk:"lease"`
	CreateRevision types.Int64  `tfsdk:"create_revision"`
	ModRevision    types.Int64  `tfsdk:"mod_revision"`
	Version        types.Int64  `tfsdk:"version"`
}

func (r *keyResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_key"
}

func (r *keyResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	// A write happens, and etcd assigns a new mod_revision and version, when
	// any of these changes.
	written := []path.Path{path.Root("value"), path.Root("value_base64"), path.Root("lease")}
	resp.Schema = schema.Schema{
		MarkdownDescription: "One key in etcd and its value.\n\n" +
			"The provider never takes over or overwrites data it does not know about: creating a key " +
			"that already exists fails (import it instead), and an update or delete fails when the key " +
			"was changed outside Terraform after it was last read (run `plan` again to see the change). " +
			"A value changed or deleted outside Terraform shows up as a diff on the next plan.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The key, as for `key`.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"key": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "The key, e.g. `/app/config`. etcd keys are arbitrary byte strings; " +
					"by convention they look like paths. Changing it replaces the resource (a new key is " +
					"created and the old one deleted).",
				Validators:    []validator.String{stringvalidator.LengthAtLeast(1)},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"value": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "The value as text (UTF-8). Exactly one of `value` and `value_base64` " +
					"must be set; use `value_base64` for binary data.",
			},
			"value_base64": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "The value as standard base64, for binary data (e.g. " +
					"`filebase64(\"blob.bin\")` or `base64encode(...)`). Exactly one of `value` and " +
					"`value_base64` must be set. If the key was managed with `value` and now holds bytes " +
					"that are not valid UTF-8, they appear here so that the change is visible.",
				Validators: []validator.String{base64Validator{}},
			},
			"lease": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "ID of a lease to attach the key to, in hexadecimal as `etcdctl lease grant` " +
					"prints it (e.g. `\"694d7c8c1f0c7a0b\"`). The key is deleted by etcd when the lease " +
					"expires or is revoked; Terraform then plans to create it again.",
				Validators:    []validator.String{leaseIDValidator{}},
				PlanModifiers: []planmodifier.String{leaseChangeRequiresReplace()},
			},
			"create_revision": schema.Int64Attribute{
				Computed:            true,
				MarkdownDescription: "Revision of the cluster at which the key was created.",
				PlanModifiers:       []planmodifier.Int64{int64planmodifier.UseStateForUnknown()},
			},
			"mod_revision": schema.Int64Attribute{
				Computed: true,
				MarkdownDescription: "Revision of the cluster at which the key was last written. Updates and " +
					"deletes are guarded by it: they fail if the key changed since.",
				PlanModifiers: []planmodifier.Int64{stateUnlessChanged(written...)},
			},
			"version": schema.Int64Attribute{
				Computed:            true,
				MarkdownDescription: "Number of writes to the key since it was created (1 after creation).",
				PlanModifiers:       []planmodifier.Int64{stateUnlessChanged(written...)},
			},
		},
	}
}

func (r *keyResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *keyResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m keyResourceModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(checkOneValue(m.Value, m.ValueBase64)...)
}

// checkOneValue enforces "exactly one of value and value_base64" on known
// values; an unknown one may still turn out either way.
func checkOneValue(value, valueBase64 types.String) diag.Diagnostics {
	var diags diag.Diagnostics
	if value.IsUnknown() || valueBase64.IsUnknown() {
		return diags
	}
	switch {
	case !value.IsNull() && !valueBase64.IsNull():
		diags.AddAttributeError(path.Root("value_base64"), "Conflicting values",
			"value and value_base64 are both set; set exactly one: value for text, value_base64 for binary data.")
	case value.IsNull() && valueBase64.IsNull():
		diags.AddAttributeError(path.Root("value"), "Missing value",
			"Neither value nor value_base64 is set; set exactly one: value for text (value = \"\" for an "+
				"empty value), value_base64 for binary data.")
	}
	return diags
}

// write holds what a create or update puts into etcd.
type write struct {
	value []byte
	lease int64
}

func (m keyResourceModel) write() (write, diag.Diagnostics) {
	var w write
	diags := checkOneValue(m.Value, m.ValueBase64)
	if diags.HasError() {
		return w, diags
	}
	if !m.ValueBase64.IsNull() {
		b, err := base64.StdEncoding.DecodeString(m.ValueBase64.ValueString())
		if err != nil {
			diags.AddAttributeError(path.Root("value_base64"), "Invalid base64",
				fmt.Sprintf("value_base64 is not valid standard base64: %v.", err))
			return w, diags
		}
		w.value = b
	} else {
		w.value = []byte(m.Value.ValueString())
	}
	if !m.Lease.IsNull() {
		id, err := client.ParseLeaseID(m.Lease.ValueString())
		if err != nil {
			diags.AddAttributeError(path.Root("lease"), "Invalid lease ID", fmt.Sprintf("lease: %v.", err))
			return w, diags
		}
		w.lease = id
	}
	return w, diags
}

// fromKV records what etcd holds. The value goes to value_base64 when the
// model already uses it, or when the bytes are not valid UTF-8 (a string
// attribute must never hold invalid UTF-8); otherwise to value. A lease ID
// that denotes the same lease keeps the form it was written in.
func (m *keyResourceModel) fromKV(kv *client.KeyValue) {
	m.ID = types.StringValue(kv.Key)
	m.Key = types.StringValue(kv.Key)
	m.CreateRevision = types.Int64Value(kv.CreateRevision)
	m.ModRevision = types.Int64Value(kv.ModRevision)
	m.Version = types.Int64Value(kv.Version)

	if !m.ValueBase64.IsNull() || !utf8.Valid(kv.Value) {
		m.Value = types.StringNull()
		m.ValueBase64 = types.StringValue(base64.StdEncoding.EncodeToString(kv.Value))
	} else {
		m.Value = types.StringValue(string(kv.Value))
		m.ValueBase64 = types.StringNull()
	}

	switch {
	case kv.Lease == 0:
		m.Lease = types.StringNull()
	case !m.Lease.IsNull() && !m.Lease.IsUnknown():
		if id, err := client.ParseLeaseID(m.Lease.ValueString()); err == nil && id == kv.Lease {
			break // same lease, keep the user's spelling
		}
		m.Lease = types.StringValue(client.FormatLeaseID(kv.Lease))
	default:
		m.Lease = types.StringValue(client.FormatLeaseID(kv.Lease))
	}
}

func (r *keyResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan keyResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	w, diags := plan.write()
	resp.Diagnostics.Append(diags...)
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}

	key := plan.Key.ValueString()
	kv, err := cl.CreateKey(ctx, key, w.value, w.lease)
	var exists *client.KeyExistsError
	switch {
	case errors.As(err, &exists):
		resp.Diagnostics.AddAttributeError(path.Root("key"), "Key already exists",
			fmt.Sprintf("The key %q already exists in etcd (create_revision %d, mod_revision %d), and the provider "+
				"does not take over data it did not create. To manage the existing key with Terraform, import "+
				"it (replace NAME with this resource's name):\n\n    terraform import etcd_key.NAME %s\n\n"+
				"or use another key.", key, exists.Current.CreateRevision, exists.Current.ModRevision, shell.Quote(key)))
		return
	case err != nil:
		resp.Diagnostics.AddAttributeError(writeErrorPath(err), "Cannot create key", err.Error())
		return
	}
	plan.fromKV(kv)
	tflog.Debug(ctx, "created etcd key", map[string]any{"key": key, "mod_revision": kv.ModRevision})
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *keyResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state keyResourceModel
	resp.Diagnostics.Append(getState(ctx, req.State, &state)...) // no per-call reflection: see state_codec.go
	if resp.Diagnostics.HasError() {
		return
	}
	found, diags := readKey(ctx, r.provider, &state)
	resp.Diagnostics.Append(diags...)
	switch {
	case resp.Diagnostics.HasError():
	case !found:
		resp.State.RemoveResource(ctx)
	default:
		resp.Diagnostics.Append(setState(ctx, &resp.State, state)...)
	}
}

// readKey refreshes state from etcd, for Read and for the protocol-level
// refresh in fast_read.go; found is false when the key no longer exists.
func readKey(ctx context.Context, data *providerData, state *keyResourceModel) (found bool, diags diag.Diagnostics) {
	cl, diags := data.Client(ctx)
	if diags.HasError() {
		return false, diags
	}
	key := state.Key.ValueString()
	kv, err := cl.GetKey(ctx, key)
	switch {
	case errors.Is(err, client.ErrKeyNotFound):
		tflog.Warn(ctx, "etcd key deleted outside Terraform; removing it from state", map[string]any{"key": key})
		return false, diags
	case err != nil:
		diags.AddAttributeError(path.Root("key"), "Cannot read key", err.Error())
		return false, diags
	}
	state.fromKV(kv)
	return true, diags
}

func (r *keyResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state keyResourceModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	w, diags := plan.write()
	resp.Diagnostics.Append(diags...)
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}

	key := state.Key.ValueString()
	kv, err := cl.UpdateKey(ctx, key, w.value, w.lease, state.ModRevision.ValueInt64())
	var changed *client.KeyChangedError
	switch {
	case errors.As(err, &changed):
		resp.Diagnostics.AddAttributeError(path.Root("key"), "Key changed outside Terraform", changedDetail(changed, "updated"))
		return
	case err != nil:
		resp.Diagnostics.AddAttributeError(writeErrorPath(err), "Cannot update key", err.Error())
		return
	}
	plan.fromKV(kv)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
}

func (r *keyResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state keyResourceModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}

	key := state.Key.ValueString()
	err := cl.DeleteKey(ctx, key, state.ModRevision.ValueInt64())
	var changed *client.KeyChangedError
	switch {
	case errors.As(err, &changed):
		resp.Diagnostics.AddAttributeError(path.Root("key"), "Key changed outside Terraform", changedDetail(changed, "deleted"))
	case err != nil:
		resp.Diagnostics.AddAttributeError(path.Root("key"), "Cannot delete key", err.Error())
	}
}

func (r *keyResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	if req.ID == "" {
		resp.Diagnostics.AddError("Missing key", "Give the etcd key to import, e.g. terraform import etcd_key.NAME /app/config")
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("key"), req.ID)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), req.ID)...)
}

// writeErrorPath is the attribute a failed write is about.
func writeErrorPath(err error) path.Path {
	if errors.Is(err, client.ErrLeaseNotFound) {
		return path.Root("lease")
	}
	return path.Root("key")
}

func changedDetail(e *client.KeyChangedError, verb string) string {
	now := fmt.Sprintf("now %d", e.Actual)
	if e.Actual == 0 {
		now = "now deleted"
	}
	return fmt.Sprintf("The key %q was changed outside Terraform after the plan (mod_revision %d, %s), so it was not %s: "+
		"the provider never overwrites a change it has not shown you. Run plan again to see the current value, then apply.",
		e.Key, e.Expected, now, verb)
}
