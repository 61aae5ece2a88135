package provider

import (
	"bytes"
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
	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
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
	_ resource.ResourceWithIdentity       = (*keyResource)(nil)
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
	ValueWO        types.String `tfsdk:"value_wo"`
	ValueBase64WO  types.String `tfsdk:"value_base64_wo"`
	ValueWOVersion types.Int64  `tfsdk:"value_wo_version"`
	AdoptIfEqual   types.Bool   `tfsdk:"adopt_if_equal"`
	KeepOnDestroy  types.Bool   `tfsdk:"keep_on_destroy"`
}

func (r *keyResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_key"
}

func (r *keyResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	// A write happens, and etcd assigns a new mod_revision and version, when
	// any of these changes.
	written := []path.Path{path.Root("value"), path.Root("value_base64"), path.Root("lease"), path.Root("value_wo_version")}
	resp.Schema = schema.Schema{
		MarkdownDescription: "One key in etcd and its value.\n\n" +
			"The provider never takes over or overwrites data it does not know about: creating a key " +
			"that already exists fails (import it instead), and an update or delete fails when the key " +
			"was changed outside Terraform after it was last read (run `plan` again to see the change). " +
			"A value changed or deleted outside Terraform shows up as a diff on the next plan.\n\n" +
			"**Secrets.** `value_wo` (or `value_base64_wo`) with `value_wo_version` writes a value that is never " +
			"stored in the plan or state (Terraform 1.11+, OpenTofu 1.11+). To notice a change made outside " +
			"Terraform, the provider keeps only an HMAC-SHA-256 of the value, keyed by a random salt of the " +
			"resource's own, in the resource's private state; when etcd holds something else, the refresh warns and " +
			"the plan writes the configured value again (`value_wo_version` shows as changing). Importing a key " +
			"reads its value into the state: to take over an existing secret without that, create the resource " +
			"with `adopt_if_equal = true` instead.\n\n" +
			"**Adopting and leaving keys.** `adopt_if_equal = true` lets create take over a key that already holds " +
			"exactly the planned value; `keep_on_destroy = true` makes destroy (and replacement) forget the key " +
			"without deleting it.",
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
				MarkdownDescription: "The value as text (UTF-8). Exactly one of `value`, `value_base64`, " +
					"`value_wo` and `value_base64_wo` must be set; use `value_base64` for binary data.",
			},
			"value_wo": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				WriteOnly: true,
				MarkdownDescription: "The value as text, write-only: written to etcd and never stored in the plan or " +
					"state. Needs Terraform 1.11+ or OpenTofu 1.11+, and `value_wo_version`. Conflicts with `value`, " +
					"`value_base64` and `value_base64_wo`.",
			},
			"value_base64_wo": schema.StringAttribute{
				Optional:  true,
				Sensitive: true,
				WriteOnly: true,
				MarkdownDescription: "The value as standard base64, write-only, for binary secrets (e.g. " +
					"`filebase64(\"key.der\")`). As `value_wo` otherwise.",
				Validators: []validator.String{base64Validator{}},
			},
			"value_wo_version": schema.Int64Attribute{
				Optional: true,
				MarkdownDescription: "Version of `value_wo` or `value_base64_wo`. The provider cannot see a write-only " +
					"value change, so change this number (e.g. increment it) to write a new value. Required with " +
					"`value_wo` and `value_base64_wo`. A refresh that finds another value in etcd removes it from the " +
					"state, so that the next apply writes the configured value again.",
			},
			"adopt_if_equal": schema.BoolAttribute{
				Optional: true,
				MarkdownDescription: "When the key already exists at create, take it over if it holds exactly the " +
					"planned value (byte for byte, and the same `lease`) instead of failing; nothing is written. If it " +
					"holds anything else, create fails as without this argument, with the import command to use. " +
					"Defaults to `false`.",
			},
			"keep_on_destroy": schema.BoolAttribute{
				Optional: true,
				MarkdownDescription: "Destroying the resource (or replacing it, e.g. when `key` changes) only removes " +
					"it from the state and leaves the key in etcd. Set it, and apply, before the destroy. Defaults to " +
					"`false`: destroy deletes the key.",
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

func (r *keyResource) IdentitySchema(_ context.Context, _ resource.IdentitySchemaRequest, resp *resource.IdentitySchemaResponse) {
	resp.IdentitySchema = stringIdentitySchema("key", "The key, e.g. `/app/config`.")
}

func (r *keyResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *keyResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m keyResourceModel
	resp.Diagnostics.Append(getConfig(ctx, req.Config, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	resp.Diagnostics.Append(m.checkOneValue()...)
	resp.Diagnostics.Append(checkWOVersion(m.ValueWO, m.ValueBase64WO, m.ValueWOVersion)...)
}

// namedString is one of the value attributes of etcd_key.
type namedString struct {
	name  string
	value types.String
}

func (m keyResourceModel) values() []namedString {
	return []namedString{{"value", m.Value}, {"value_base64", m.ValueBase64}, {"value_wo", m.ValueWO}, {"value_base64_wo", m.ValueBase64WO}}
}

// checkOneValue enforces "exactly one of value, value_base64, value_wo and
// value_base64_wo" on known values; an unknown one may still turn out
// either way. The error names the second attribute set.
func (m keyResourceModel) checkOneValue() diag.Diagnostics {
	var diags diag.Diagnostics
	var set []string
	for _, v := range m.values() {
		if v.value.IsUnknown() {
			return diags
		}
		if !v.value.IsNull() {
			set = append(set, v.name)
		}
	}
	switch {
	case len(set) > 1:
		diags.AddAttributeError(path.Root(set[1]), "Conflicting values",
			fmt.Sprintf("%s and %s are both set; set exactly one: value for text, value_base64 for binary data, "+
				"value_wo or value_base64_wo (with value_wo_version) for a secret that must not be stored in the state.", set[0], set[1]))
	case len(set) == 0:
		diags.AddAttributeError(path.Root("value"), "Missing value",
			"None of value, value_base64, value_wo and value_base64_wo is set; set exactly one: value for text "+
				"(value = \"\" for an empty value), value_base64 for binary data, value_wo or value_base64_wo for a secret.")
	}
	return diags
}

// checkWOVersion: a write-only value needs its version, and a version
// needs a write-only value.
func checkWOVersion(wo, woBase64 types.String, version types.Int64) diag.Diagnostics {
	var diags diag.Diagnostics
	hasWO := !wo.IsNull() || !woBase64.IsNull()
	switch {
	case hasWO && version.IsNull():
		diags.AddAttributeError(path.Root("value_wo_version"), "Missing value_wo_version",
			"A write-only value is never stored, so the provider cannot tell when it changes. Set value_wo_version "+
				"(e.g. 1) and change it whenever the write-only value changes.")
	case !hasWO && !version.IsNull() && !wo.IsUnknown() && !woBase64.IsUnknown():
		diags.AddAttributeError(path.Root("value_wo"), "Missing value_wo",
			"value_wo_version is set but neither value_wo nor value_base64_wo is; set one, or remove value_wo_version.")
	}
	return diags
}

// write holds what a create or update puts into etcd.
type write struct {
	value []byte
	lease int64
}

// write is what m puts into etcd. The write-only values must have been
// read from the configuration into m (withWriteOnly).
func (m keyResourceModel) write() (write, diag.Diagnostics) {
	var w write
	diags := m.checkOneValue()
	if diags.HasError() {
		return w, diags
	}
	switch {
	case !m.ValueBase64.IsNull(), !m.ValueBase64WO.IsNull():
		name, v := "value_base64", m.ValueBase64
		if v.IsNull() {
			name, v = "value_base64_wo", m.ValueBase64WO
		}
		b, err := base64.StdEncoding.DecodeString(v.ValueString())
		if err != nil {
			// The error of the decoder names an offset, never the value.
			diags.AddAttributeError(path.Root(name), "Invalid base64",
				fmt.Sprintf("%s is not valid standard base64: %v.", name, err))
			return w, diags
		}
		w.value = b
	case !m.ValueWO.IsNull():
		w.value = []byte(m.ValueWO.ValueString())
	default:
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
//
// A key whose value is write-only (writeOnly) keeps value and value_base64
// null: its value never goes into the state.
func (m *keyResourceModel) fromKV(kv *client.KeyValue, writeOnly bool) {
	m.ID = types.StringValue(kv.Key)
	m.Key = types.StringValue(kv.Key)
	m.CreateRevision = types.Int64Value(kv.CreateRevision)
	m.ModRevision = types.Int64Value(kv.ModRevision)
	m.Version = types.Int64Value(kv.Version)
	m.ValueWO = types.StringNull()
	m.ValueBase64WO = types.StringNull()

	switch {
	case writeOnly:
		m.Value = types.StringNull()
		m.ValueBase64 = types.StringNull()
	case !m.ValueBase64.IsNull() || !utf8.Valid(kv.Value):
		m.Value = types.StringNull()
		m.ValueBase64 = types.StringValue(base64.StdEncoding.EncodeToString(kv.Value))
	default:
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

// withWriteOnly reads the write-only values from the configuration into m:
// the plan holds them as null.
func (m *keyResourceModel) withWriteOnly(ctx context.Context, config tfsdk.Config) diag.Diagnostics {
	var diags diag.Diagnostics
	diags.Append(config.GetAttribute(ctx, path.Root("value_wo"), &m.ValueWO)...)
	diags.Append(config.GetAttribute(ctx, path.Root("value_base64_wo"), &m.ValueBase64WO)...)
	return diags
}

func (m keyResourceModel) writeOnly() bool { return !m.ValueWO.IsNull() || !m.ValueBase64WO.IsNull() }

// recordWrite returns the private record after writing w: the HMAC of the
// value when it is write-only (keeping prior's salt), nil otherwise.
func recordWrite(m keyResourceModel, w write, prior *woRecord) (*woRecord, diag.Diagnostics) {
	var diags diag.Diagnostics
	if !m.writeOnly() {
		return nil, diags
	}
	rec, err := newWORecord(prior)
	if err != nil {
		diags.AddAttributeError(path.Root("value_wo"), "Cannot record write-only value", err.Error())
		return nil, diags
	}
	rec.record("", w.value)
	return rec, diags
}

func (r *keyResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan keyResourceModel
	resp.Diagnostics.Append(getPlan(ctx, req.Plan, &plan)...)
	resp.Diagnostics.Append(plan.withWriteOnly(ctx, req.Config)...)
	if resp.Diagnostics.HasError() {
		return
	}
	w, diags := plan.write()
	resp.Diagnostics.Append(diags...)
	rec, diags := recordWrite(plan, w, nil)
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
	case errors.As(err, &exists) && plan.AdoptIfEqual.ValueBool():
		cur := exists.Current
		if !bytes.Equal(cur.Value, w.value) || cur.Lease != w.lease {
			// The values are never printed: either may be a secret.
			resp.Diagnostics.AddAttributeError(path.Root("adopt_if_equal"), "Key exists with another value",
				fmt.Sprintf("The key %q already exists in etcd (mod_revision %d) and its %s not the planned one, so "+
					"adopt_if_equal did not take it over and nothing was written. To manage the existing key with "+
					"Terraform as it is, import it (replace NAME with this resource's name):\n\n"+
					"    terraform import etcd_key.NAME %s\n\n"+
					"or make the configuration match the value in etcd, or use another key.",
					key, cur.ModRevision, differsWhat(cur, w), shell.Quote(key)))
			return
		}
		tflog.Info(ctx, "adopted existing etcd key with the planned value", map[string]any{"key": key, "mod_revision": cur.ModRevision})
		kv = &cur
	case errors.As(err, &exists):
		resp.Diagnostics.AddAttributeError(path.Root("key"), "Key already exists",
			fmt.Sprintf("The key %q already exists in etcd (create_revision %d, mod_revision %d), and the provider "+
				"does not take over data it did not create. To manage the existing key with Terraform, import "+
				"it (replace NAME with this resource's name):\n\n    terraform import etcd_key.NAME %s\n\n"+
				"or set adopt_if_equal = true if it already holds the planned value, or use another key.",
				key, exists.Current.CreateRevision, exists.Current.ModRevision, shell.Quote(key)))
		return
	case err != nil:
		resp.Diagnostics.AddAttributeError(writeErrorPath(err), "Cannot create key", err.Error())
		return
	}
	plan.fromKV(kv, rec != nil)
	tflog.Debug(ctx, "created etcd key", map[string]any{"key": key, "mod_revision": kv.ModRevision})
	resp.Diagnostics.Append(setState(ctx, &resp.State, plan)...)
	resp.Diagnostics.Append(setWORecord(ctx, resp.Private, rec)...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "key", key)...)
}

func differsWhat(cur client.KeyValue, w write) string {
	switch {
	case !bytes.Equal(cur.Value, w.value) && cur.Lease != w.lease:
		return "value and lease are"
	case cur.Lease != w.lease:
		return "lease is"
	}
	return "value is"
}

func (r *keyResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state keyResourceModel
	resp.Diagnostics.Append(getState(ctx, req.State, &state)...) // no per-call reflection: see state_codec.go
	rec, diags := getWORecord(ctx, req.Private)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	// The framework wants an identity also when the key is gone.
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "key", state.Key.ValueString())...)
	// A key just imported has no mod_revision yet: its state is only the
	// key, so it must be read (and fails when the provider cannot).
	if !state.ModRevision.IsNull() && r.provider.keepStateUnconfigured(&resp.Diagnostics) {
		return
	}
	found, diags := readKey(ctx, r.provider, &state, rec)
	resp.Diagnostics.Append(diags...)
	switch {
	case resp.Diagnostics.HasError():
	case !found:
		resp.State.RemoveResource(ctx)
	default:
		resp.Diagnostics.Append(setState(ctx, &resp.State, state)...)
	}
}

// readKey refreshes state from etcd, for Read; found is false when the key
// no longer exists.
// rec is the record of a write-only value (nil for a plain one): when etcd
// holds another value, value_wo_version is dropped from the state, so that
// the plan writes the configured value again.
func readKey(ctx context.Context, data *providerData, state *keyResourceModel, rec *woRecord) (found bool, diags diag.Diagnostics) {
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
	// A state with value_wo_version and no record (private state lost, e.g.
	// moved by hand) is still write-only: its value stays out.
	state.fromKV(kv, rec != nil || !state.ValueWOVersion.IsNull())
	if rec != nil && !state.ValueWOVersion.IsNull() && !rec.matches("", kv.Value) {
		state.ValueWOVersion = types.Int64Null()
		diags.AddAttributeWarning(path.Root("value_wo_version"), "Write-only value changed outside Terraform",
			fmt.Sprintf("The key %q no longer holds the write-only value Terraform wrote (mod_revision %d). The plan "+
				"writes the configured value again.", key, kv.ModRevision))
	}
	return true, diags
}

// valueChanged tells whether an update must write the key: anything that
// goes into etcd changed, rather than only how the provider manages it
// (adopt_if_equal, keep_on_destroy).
func (m keyResourceModel) valueChanged(state keyResourceModel) bool {
	return !m.Value.Equal(state.Value) || !m.ValueBase64.Equal(state.ValueBase64) ||
		!m.ValueWOVersion.Equal(state.ValueWOVersion) || !m.Lease.Equal(state.Lease)
}

func (r *keyResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state keyResourceModel
	resp.Diagnostics.Append(getPlan(ctx, req.Plan, &plan)...)
	resp.Diagnostics.Append(getState(ctx, req.State, &state)...)
	resp.Diagnostics.Append(plan.withWriteOnly(ctx, req.Config)...)
	prior, diags := getWORecord(ctx, req.Private)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	key := state.Key.ValueString()
	if !plan.valueChanged(state) {
		// Only adopt_if_equal or keep_on_destroy changed: nothing to write.
		plan.ID, plan.CreateRevision, plan.ModRevision, plan.Version = state.ID, state.CreateRevision, state.ModRevision, state.Version
		plan.ValueWO, plan.ValueBase64WO = types.StringNull(), types.StringNull()
		resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
		resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "key", key)...)
		return
	}
	w, diags := plan.write()
	resp.Diagnostics.Append(diags...)
	rec, diags := recordWrite(plan, w, prior)
	resp.Diagnostics.Append(diags...)
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}

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
	plan.fromKV(kv, rec != nil)
	resp.Diagnostics.Append(setState(ctx, &resp.State, plan)...)
	resp.Diagnostics.Append(setWORecord(ctx, resp.Private, rec)...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "key", key)...)
}

func (r *keyResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state keyResourceModel
	resp.Diagnostics.Append(getState(ctx, req.State, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	key := state.Key.ValueString()
	if state.KeepOnDestroy.ValueBool() {
		tflog.Info(ctx, "keep_on_destroy: leaving the etcd key in place", map[string]any{"key": key})
		return
	}
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}

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
	key, diags := importTarget(ctx, req, "key", "/app/config")
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if key == "" {
		resp.Diagnostics.AddError("Missing key", "Give the etcd key to import, e.g. terraform import etcd_key.NAME /app/config")
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("key"), key)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), key)...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "key", key)...)
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
