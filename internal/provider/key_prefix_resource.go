package provider

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/terraform-plugin-framework-validators/int64validator"
	"github.com/hashicorp/terraform-plugin-framework-validators/mapvalidator"
	"github.com/hashicorp/terraform-plugin-framework-validators/stringvalidator"
	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/booldefault"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/int64default"
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
	_ resource.Resource                   = (*keyPrefixResource)(nil)
	_ resource.ResourceWithConfigure      = (*keyPrefixResource)(nil)
	_ resource.ResourceWithImportState    = (*keyPrefixResource)(nil)
	_ resource.ResourceWithValidateConfig = (*keyPrefixResource)(nil)
	_ resource.ResourceWithModifyPlan     = (*keyPrefixResource)(nil)
	_ resource.ResourceWithIdentity       = (*keyPrefixResource)(nil)
)

// Private state keys of etcd_key_prefix. Revisions are private rather than
// attributes so that state and plans show values only.
const (
	// privateRevisions: JSON object, suffix → mod_revision as last read or
	// written, for every key in state. Writes and deletes are guarded by it.
	privateRevisions = "mod_revisions"
	// privateUnmanaged: JSON object, suffix → mod_revision of the keys the
	// resource does not manage, read at plan time when delete_unmanaged is
	// being turned on; the apply deletes exactly these.
	privateUnmanaged = "unmanaged_mod_revisions"
	// privateImporting: set by ImportState, so that the next Read adopts
	// every key under the prefix.
	privateImporting = "importing"
)

// keyPrefixResource is etcd_key_prefix: every key under one prefix.
type keyPrefixResource struct {
	provider *providerData
}

func newKeyPrefixResource() resource.Resource { return &keyPrefixResource{} }

type keyPrefixModel struct {
	ID              types.String `tfsdk:"id"`
	Prefix          types.String `tfsdk:"prefix"`
	Values          types.Map    `tfsdk:"values"`
	ValuesBase64    types.Map    `tfsdk:"values_base64"`
	ValuesJSON      types.String `tfsdk:"values_json"`
	DeleteUnmanaged types.Bool   `tfsdk:"delete_unmanaged"`
	MaxTxnOps       types.Int64  `tfsdk:"max_txn_ops"`
	ValuesWO        types.Map    `tfsdk:"values_wo"`
	ValuesWOVersion types.Int64  `tfsdk:"values_wo_version"`
	AdoptIfEqual    types.Bool   `tfsdk:"adopt_if_equal"`
	KeepOnDestroy   types.Bool   `tfsdk:"keep_on_destroy"`
}

func (r *keyPrefixResource) Metadata(_ context.Context, req resource.MetadataRequest, resp *resource.MetadataResponse) {
	resp.TypeName = req.ProviderTypeName + "_key_prefix"
}

func (r *keyPrefixResource) Schema(_ context.Context, _ resource.SchemaRequest, resp *resource.SchemaResponse) {
	resp.Schema = schema.Schema{
		MarkdownDescription: "A whole subtree of etcd: every key under `prefix`, written from a map of " +
			"suffixes to values. One resource holds thousands of keys and reads them all with one " +
			"request, so it plans far faster than as many `etcd_key` resources. For tens of thousands of " +
			"keys, give the text values as one JSON document in `values_json`: Terraform then handles one " +
			"string where a map costs it time for every element.\n\n" +
			"The resource owns the keys it wrote. Creating it fails when a key it would write already " +
			"exists (import the prefix instead); with `delete_unmanaged = true` it also owns the rest of " +
			"the subtree and deletes every other key under the prefix, at create and whenever one shows up.\n\n" +
			"Changes are written in as few transactions as etcd allows (`max_txn_ops` operations each). " +
			"A change that fits in one transaction is all-or-nothing. Every transaction checks that each " +
			"key it touches still has the revision read when the plan was made, so a key changed " +
			"outside Terraform since then is reported as an error, not overwritten; if a change spans " +
			"several transactions and one fails, the ones before it are recorded in state. Keys that were " +
			"added, changed or deleted outside Terraform show up as a diff on the next plan.\n\n" +
			"**Secrets.** `values_wo` with `values_wo_version` writes values that are never stored in the plan or " +
			"state (Terraform 1.11+, OpenTofu 1.11+). The provider keeps only an HMAC-SHA-256 of each, keyed by a " +
			"random salt of the resource's own, in private state; when etcd holds something else for one of them, " +
			"the refresh warns and the plan writes them again (`values_wo_version` shows as changing). Any change " +
			"to `values_wo`, including added or removed suffixes, is applied only when `values_wo_version` changes.\n\n" +
			"**Adopting and leaving keys.** `adopt_if_equal = true` lets create (and an update that adds keys) take " +
			"over keys that already hold exactly the planned values; `keep_on_destroy = true` makes destroy forget " +
			"the keys without deleting them.",
		Attributes: map[string]schema.Attribute{
			"id": schema.StringAttribute{
				Computed:            true,
				MarkdownDescription: "The prefix, as for `prefix`.",
				PlanModifiers:       []planmodifier.String{stringplanmodifier.UseStateForUnknown()},
			},
			"prefix": schema.StringAttribute{
				Required: true,
				MarkdownDescription: "The prefix every key begins with, e.g. `/app/config/`. Each key is the " +
					"prefix followed by its suffix, with nothing in between: end the prefix with `/` for " +
					"path-like keys. Changing it replaces the resource.",
				Validators:    []validator.String{stringvalidator.LengthAtLeast(1)},
				PlanModifiers: []planmodifier.String{stringplanmodifier.RequiresReplace()},
			},
			"values": schema.MapAttribute{
				ElementType: types.StringType,
				Optional:    true,
				MarkdownDescription: "Text values (UTF-8) by suffix: `{ \"db/host\" = \"10.0.0.5\" }` writes " +
					"`<prefix>db/host`. A suffix may appear in only one of `values`, `values_json` and `values_base64`. A key " +
					"whose value becomes binary outside Terraform moves to `values_base64` in state, so the " +
					"change is visible.",
			},
			"values_base64": schema.MapAttribute{
				ElementType:         types.StringType,
				Optional:            true,
				MarkdownDescription: "Binary values by suffix, as standard base64 (e.g. from `filebase64()`).",
				Validators:          []validator.Map{mapvalidator.ValueStringsAre(base64Validator{})},
			},
			"values_json": schema.StringAttribute{
				Optional: true,
				MarkdownDescription: "Text values by suffix, as one JSON object of strings: " +
					"`jsonencode({ \"db/host\" = \"10.0.0.5\" })`, or `file(\"settings.json\")`. It means what `values` " +
					"means; use it for large prefixes. Terraform handles a map element by element in every plan, so " +
					"`values` with 100,000 keys takes tens of seconds per plan in Terraform itself; this document is one " +
					"string to Terraform, and only the provider looks inside. A key changed outside Terraform shows as a " +
					"change to the document: the refreshed state holds what etcd holds, one member per line in key " +
					"order. Reformatting the document plans an update that writes nothing, and so does moving keys " +
					"between `values` and `values_json`; an import fills `values`, so the apply after one moves them. " +
					"A suffix may appear in only one of `values`, `values_json`, `values_base64` and `values_wo`.",
			},
			"delete_unmanaged": schema.BoolAttribute{
				Optional: true,
				Computed: true,
				Default:  booldefault.StaticBool(false),
				MarkdownDescription: "Own the whole subtree: delete every key under the prefix that is not " +
					"in `values`, `values_json` or `values_base64`, at create and whenever such a key appears later (it " +
					"shows up in the plan as a value to remove). Turning it on deletes the keys present at " +
					"plan time; the plan warns how many. Defaults to `false`: keys under the prefix that " +
					"the resource did not write are left alone.",
			},
			"max_txn_ops": schema.Int64Attribute{
				Optional: true,
				Computed: true,
				Default:  int64default.StaticInt64(client.DefaultMaxTxnOps),
				MarkdownDescription: fmt.Sprintf("Most operations per transaction. Must not exceed the "+
					"cluster's `--max-txn-ops` (etcd's default, and this attribute's, is %d).", client.DefaultMaxTxnOps),
				Validators: []validator.Int64{int64validator.AtLeast(1)},
			},
			"values_wo": schema.MapAttribute{
				ElementType: types.StringType,
				Optional:    true,
				Sensitive:   true,
				WriteOnly:   true,
				MarkdownDescription: "Text values by suffix, write-only: written to etcd and never stored in the plan " +
					"or state. Needs Terraform 1.11+ or OpenTofu 1.11+, and `values_wo_version`. A suffix may appear in " +
					"only one of `values`, `values_json`, `values_base64` and `values_wo`.",
			},
			"values_wo_version": schema.Int64Attribute{
				Optional: true,
				MarkdownDescription: "Version of `values_wo`. The provider cannot see a write-only value change, so " +
					"change this number (e.g. increment it) to write `values_wo` again, with any suffix added or " +
					"removed. Required with `values_wo`. A refresh that finds another value in etcd for one of them " +
					"removes it from the state, so that the next apply writes `values_wo` again.",
			},
			"adopt_if_equal": schema.BoolAttribute{
				Optional: true,
				MarkdownDescription: "When a key the resource would write already exists, take it over if it holds " +
					"exactly the planned value (byte for byte) instead of failing; nothing is written to it. If any " +
					"holds something else, the plan or apply fails as without this argument. Defaults to `false`.",
			},
			"keep_on_destroy": schema.BoolAttribute{
				Optional: true,
				MarkdownDescription: "Destroying the resource (or replacing it) only removes it from the state and " +
					"leaves the keys in etcd. Set it, and apply, before the destroy. Cannot be combined with " +
					"`delete_unmanaged = true`. Defaults to `false`.",
			},
		},
	}
}

func (r *keyPrefixResource) IdentitySchema(_ context.Context, _ resource.IdentitySchemaRequest, resp *resource.IdentitySchemaResponse) {
	resp.IdentitySchema = stringIdentitySchema("prefix", "The prefix, e.g. `/app/config/`.")
}

func (r *keyPrefixResource) Configure(_ context.Context, req resource.ConfigureRequest, resp *resource.ConfigureResponse) {
	r.provider = providerDataFrom(req.ProviderData, &resp.Diagnostics)
}

func (r *keyPrefixResource) ValidateConfig(ctx context.Context, req resource.ValidateConfigRequest, resp *resource.ValidateConfigResponse) {
	var m keyPrefixModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &m)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if m.KeepOnDestroy.ValueBool() && m.DeleteUnmanaged.ValueBool() {
		resp.Diagnostics.AddAttributeError(path.Root("keep_on_destroy"), "Conflicting settings",
			"keep_on_destroy and delete_unmanaged are both true: delete_unmanaged deletes keys under the prefix that "+
				"the resource did not write, keep_on_destroy leaves the keys when the resource goes. Set one.")
	}
	hasWO := !m.ValuesWO.IsNull()
	switch {
	case hasWO && m.ValuesWOVersion.IsNull():
		resp.Diagnostics.AddAttributeError(path.Root("values_wo_version"), "Missing values_wo_version",
			"values_wo is write-only, so the provider cannot tell when it changes. Set values_wo_version (e.g. 1) "+
				"and change it whenever values_wo changes.")
	case !hasWO && !m.ValuesWOVersion.IsNull():
		resp.Diagnostics.AddAttributeError(path.Root("values_wo"), "Missing values_wo",
			"values_wo_version is set but values_wo is not; set values_wo, or remove values_wo_version.")
	}
	var doc map[string]string
	if !m.ValuesJSON.IsNull() && !m.ValuesJSON.IsUnknown() {
		var err error
		if doc, err = decodeJSONObject(m.ValuesJSON.ValueString()); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("values_json"), "Invalid values_json", valuesJSONDetail(err))
			return
		}
	}
	if m.Values.IsUnknown() || m.ValuesBase64.IsUnknown() || m.ValuesWO.IsUnknown() || m.ValuesJSON.IsUnknown() {
		return
	}
	text, bin := keySet(m.Values.Elements()), keySet(m.ValuesBase64.Elements())
	jsonKeys := keySet(doc)
	if both := inBoth(text, maps.Keys(m.ValuesBase64.Elements())); len(both) > 0 {
		resp.Diagnostics.AddAttributeError(path.Root("values_base64"), "Suffix in values and values_base64",
			fmt.Sprintf("These suffixes are in both values and values_base64: %s. Set each key's value once: "+
				"in values for text, in values_base64 for binary data.", quoteFirst(both, 10)))
	}
	// The document may be large: look its keys up, range over the others.
	for _, other := range []struct {
		name  string
		elems map[string]attr.Value
	}{{"values", m.Values.Elements()}, {"values_base64", m.ValuesBase64.Elements()}} {
		if both := inBoth(jsonKeys, maps.Keys(other.elems)); len(both) > 0 {
			resp.Diagnostics.AddAttributeError(path.Root("values_json"), "Suffix in "+other.name+" and values_json",
				fmt.Sprintf("These suffixes are in both %s and values_json: %s. Set each key's value once.", other.name, quoteFirst(both, 10)))
		}
	}
	for _, other := range []struct {
		name string
		m    func(string) bool
	}{{"values", text}, {"values_base64", bin}, {"values_json", jsonKeys}} {
		if both := inBoth(other.m, maps.Keys(m.ValuesWO.Elements())); len(both) > 0 {
			resp.Diagnostics.AddAttributeError(path.Root("values_wo"), "Suffix in "+other.name+" and values_wo",
				fmt.Sprintf("These suffixes are in both %s and values_wo: %s. Set each key's value once.", other.name, quoteFirst(both, 10)))
		}
	}
}

// keySet reports whether a suffix is a key of m, without copying the keys
// (values_json may hold 100,000).
func keySet[V any](m map[string]V) func(string) bool {
	return func(s string) bool { _, ok := m[s]; return ok }
}

// inBoth lists, sorted, the suffixes of b that are also in a.
func inBoth(a func(string) bool, b iter.Seq[string]) []string {
	var both []string
	for s := range b {
		if a(s) {
			both = append(both, s)
		}
	}
	slices.Sort(both)
	return both
}

// valuesJSONDetail is the error for a values_json that is not a JSON
// object of strings.
func valuesJSONDetail(err error) string {
	return fmt.Sprintf("values_json must be one JSON object whose values are all strings, e.g. "+
		"jsonencode({ \"db/host\" = \"10.0.0.5\" }), but %v.", err)
}

// prefixEntry is one key of the prefix: its value, and whether it is written in
// values_base64 or values_json rather than values.
type prefixEntry struct {
	value []byte
	b64   bool
	json  bool // in values_json rather than values
	wo    bool // from values_wo: never stored in state
	keep  bool // a write-only key left as it is (its value is not known)
}

// woEntries reads values_wo from the configuration (the plan holds it as
// null). known is false when it, or any element, is not known yet.
func woEntries(ctx context.Context, config tfsdk.Config) (es map[string]prefixEntry, known bool, diags diag.Diagnostics) {
	var m types.Map
	diags.Append(config.GetAttribute(ctx, path.Root("values_wo"), &m)...)
	if diags.HasError() || m.IsUnknown() {
		return nil, false, diags
	}
	es = make(map[string]prefixEntry, len(m.Elements()))
	for s, v := range m.Elements() {
		sv, ok := v.(types.String)
		if !ok || sv.IsUnknown() {
			return nil, false, diags
		}
		es[s] = prefixEntry{value: []byte(sv.ValueString()), wo: true}
	}
	return es, true, diags
}

// entries decodes values, values_json and values_base64. known is false
// when any of them, or any element, is not known yet.
func (m keyPrefixModel) entries() (es map[string]prefixEntry, known bool, diags diag.Diagnostics) {
	if m.Values.IsUnknown() || m.ValuesBase64.IsUnknown() || m.ValuesJSON.IsUnknown() {
		return nil, false, nil
	}
	var doc map[string]string
	if !m.ValuesJSON.IsNull() {
		var err error
		if doc, err = decodeJSONObject(m.ValuesJSON.ValueString()); err != nil {
			diags.AddAttributeError(path.Root("values_json"), "Invalid values_json", valuesJSONDetail(err))
			return nil, true, diags
		}
	}
	es = make(map[string]prefixEntry, len(m.Values.Elements())+len(m.ValuesBase64.Elements())+len(doc))
	for s, v := range doc {
		es[s] = prefixEntry{value: []byte(v), json: true}
	}
	for s, v := range m.Values.Elements() {
		sv, ok := v.(types.String)
		if !ok || sv.IsUnknown() {
			return nil, false, nil
		}
		es[s] = prefixEntry{value: []byte(sv.ValueString())}
	}
	for s, v := range m.ValuesBase64.Elements() {
		sv, ok := v.(types.String)
		if !ok || sv.IsUnknown() {
			return nil, false, nil
		}
		b, err := base64.StdEncoding.DecodeString(sv.ValueString())
		if err != nil {
			diags.AddAttributeError(path.Root("values_base64").AtMapKey(s), "Invalid base64",
				fmt.Sprintf("values_base64[%q] is not valid standard base64: %v.", s, err))
			continue
		}
		es[s] = prefixEntry{value: b, b64: true}
	}
	return es, true, diags
}

// setEntries stores es in values, values_json and values_base64. An
// attribute with no entries is null when it is null in ref (the
// configuration or prior state), so that an unset attribute stays unset.
// values_json is ref's document when it has the same members, else the
// document in the provider's layout.
func (m *keyPrefixModel) setEntries(es map[string]prefixEntry, ref keyPrefixModel) {
	// ref's document, when it holds exactly the entries for values_json.
	var prior map[string]string
	same := false
	if !ref.ValuesJSON.IsNull() && !ref.ValuesJSON.IsUnknown() {
		var err error
		prior, err = decodeJSONObject(ref.ValuesJSON.ValueString())
		same = err == nil
	}
	text := make(map[string]attr.Value)
	bin := make(map[string]attr.Value)
	inDoc := 0
	for s, e := range es {
		switch {
		case e.wo:
		case e.b64:
			bin[s] = types.StringValue(base64.StdEncoding.EncodeToString(e.value))
		case e.json:
			inDoc++
			if same {
				v, ok := prior[s]
				same = ok && v == string(e.value)
			}
		default:
			text[s] = types.StringValue(string(e.value))
		}
	}
	m.Values = mapOrNull(text, ref.Values.IsNull())
	m.ValuesBase64 = mapOrNull(bin, ref.ValuesBase64.IsNull())
	switch {
	case same && inDoc == len(prior):
		m.ValuesJSON = ref.ValuesJSON
	case inDoc > 0 || !ref.ValuesJSON.IsNull():
		doc := make(map[string]string, inDoc)
		for s, e := range es {
			if e.json && !e.wo && !e.b64 {
				doc[s] = string(e.value)
			}
		}
		m.ValuesJSON = types.StringValue(encodeJSONObject(doc))
	default:
		m.ValuesJSON = types.StringNull()
	}
	m.ValuesWO = types.MapNull(types.StringType)
}

func mapOrNull(elems map[string]attr.Value, null bool) types.Map {
	if len(elems) == 0 && null {
		return types.MapNull(types.StringType)
	}
	return types.MapValueMust(types.StringType, elems)
}

func (m keyPrefixModel) maxOps() int {
	if m.MaxTxnOps.IsNull() || m.MaxTxnOps.IsUnknown() {
		return client.DefaultMaxTxnOps
	}
	return int(m.MaxTxnOps.ValueInt64())
}

// clientIfKnown returns the client when the provider configuration is known;
// at plan time with a configuration known only after apply it returns nil
// and no error, so that planning goes on.
func (r *keyPrefixResource) clientIfKnown(ctx context.Context) (*client.Client, diag.Diagnostics) {
	if r.provider == nil || len(r.provider.unknown) > 0 {
		return nil, nil
	}
	return r.provider.Client(ctx)
}

func (r *keyPrefixResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy
	}
	var plan keyPrefixModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() || plan.Prefix.IsUnknown() {
		return
	}
	desired, known, diags := plan.entries()
	resp.Diagnostics.Append(diags...)
	if !known || resp.Diagnostics.HasError() {
		return
	}
	wo, known, diags := woEntries(ctx, req.Config)
	resp.Diagnostics.Append(diags...)
	if !known || resp.Diagnostics.HasError() {
		return
	}
	prefix := plan.Prefix.ValueString()
	deleteUnmanaged := plan.DeleteUnmanaged.ValueBool()

	var owned map[string]prefixEntry
	creating := req.State.Raw.IsNull()
	if !creating {
		var state keyPrefixModel
		resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
		rec, diags := getWORecord(ctx, req.Private)
		resp.Diagnostics.Append(diags...)
		if resp.Diagnostics.HasError() {
			return
		}
		owned, _, diags = state.entries()
		resp.Diagnostics.Append(diags...)
		if rec != nil {
			for s := range rec.MACs {
				owned[s] = prefixEntry{wo: true, keep: true}
			}
		}
		// values_wo is applied only when its version changes.
		if plan.ValuesWOVersion.Equal(state.ValuesWOVersion) {
			wo = nil
		}
		// A key to be added that is not in state needs a look at etcd: it
		// may exist without being ours. So does turning delete_unmanaged on.
		adding := false
		for s := range desired {
			if _, ok := owned[s]; !ok {
				adding = true
				break
			}
		}
		for s := range wo {
			if _, ok := owned[s]; !ok {
				adding = true
				break
			}
		}
		turningOn := deleteUnmanaged && !state.DeleteUnmanaged.ValueBool()
		if !adding && !turningOn {
			return
		}
		if !turningOn {
			deleteUnmanaged = false
		}
	}
	for s, e := range wo {
		desired[s] = e
	}

	cl, diags := r.clientIfKnown(ctx)
	resp.Diagnostics.Append(diags...)
	if cl == nil || resp.Diagnostics.HasError() {
		return
	}
	kvs, _, err := cl.ReadPrefix(ctx, prefix)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("prefix"), "Cannot read prefix", err.Error())
		return
	}
	var taken, differ []string
	unmanaged := prefixRevisions{}
	for _, kv := range kvs {
		s := kv.Key[len(prefix):]
		if _, ok := owned[s]; ok {
			continue
		}
		if d, ok := desired[s]; ok {
			taken = append(taken, s)
			if !bytes.Equal(d.value, kv.Value) {
				differ = append(differ, s)
			}
		} else if deleteUnmanaged {
			unmanaged[s] = kv.ModRevision
		}
	}
	switch {
	case len(differ) > 0 && plan.AdoptIfEqual.ValueBool():
		resp.Diagnostics.AddAttributeError(path.Root("adopt_if_equal"), "Keys exist with other values", adoptDetail(prefix, differ))
		return
	case len(taken) > 0 && !plan.AdoptIfEqual.ValueBool():
		resp.Diagnostics.AddAttributeError(path.Root("values"), "Keys already exist", existingKeysDetail(prefix, taken, creating))
		return
	}
	if len(unmanaged) > 0 {
		names := make([]string, 0, len(unmanaged))
		for s := range unmanaged {
			names = append(names, prefix+s)
		}
		slices.Sort(names)
		resp.Diagnostics.AddAttributeWarning(path.Root("delete_unmanaged"), "Keys not in the configuration will be deleted",
			fmt.Sprintf("delete_unmanaged is true, so applying this plan deletes %d key(s) under %q that are not in "+
				"values, values_json or values_base64: %s.", len(unmanaged), prefix, quoteFirst(names, 10)))
		if !creating {
			resp.Diagnostics.Append(setRevisions(ctx, resp.Private, privateUnmanaged, unmanaged)...)
		}
	}
}

// adoptDetail explains why adopt_if_equal did not take keys over. The
// values are never printed: they may be secrets.
func adoptDetail(prefix string, suffixes []string) string {
	keys := make([]string, len(suffixes))
	for i, s := range suffixes {
		keys[i] = prefix + s
	}
	slices.Sort(keys)
	return fmt.Sprintf("%d key(s) under %q that this resource would write already exist in etcd with another value: %s. "+
		"adopt_if_equal takes over only keys that hold exactly the planned value, so nothing was written. To manage the "+
		"existing keys with Terraform as they are, import the prefix (replace NAME with this resource's name):\n\n"+
		"    terraform import etcd_key_prefix.NAME %s\n\n"+
		"or make the configuration match the values in etcd, or choose suffixes that are free.",
		len(keys), prefix, quoteFirst(keys, 10), shell.Quote(prefix))
}

func existingKeysDetail(prefix string, suffixes []string, creating bool) string {
	keys := make([]string, len(suffixes))
	for i, s := range suffixes {
		keys[i] = prefix + s
	}
	slices.Sort(keys)
	if creating {
		return fmt.Sprintf("%d key(s) under %q that this resource would write already exist in etcd: %s. The provider "+
			"does not overwrite data it did not create. To manage the existing keys with Terraform, import the "+
			"prefix (replace NAME with this resource's name), which adopts every key under it:\n\n"+
			"    terraform import etcd_key_prefix.NAME %s\n\n"+
			"or choose suffixes that are free.", len(keys), prefix, quoteFirst(keys, 10), shell.Quote(prefix))
	}
	return fmt.Sprintf("%d key(s) under %q that were added to the configuration already exist in etcd and are not "+
		"managed by this resource: %s. The provider does not overwrite data it did not create: delete them first, "+
		"or adopt them by importing the prefix again (terraform state rm, then terraform import "+
		"etcd_key_prefix.NAME %s), or set delete_unmanaged = true and apply before adding them.",
		len(keys), prefix, quoteFirst(keys, 10), shell.Quote(prefix))
}

func (r *keyPrefixResource) Create(ctx context.Context, req resource.CreateRequest, resp *resource.CreateResponse) {
	var plan keyPrefixModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}
	desired, _, diags := plan.entries()
	resp.Diagnostics.Append(diags...)
	wo, _, diags := woEntries(ctx, req.Config)
	resp.Diagnostics.Append(diags...)
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	for s, e := range wo {
		desired[s] = e
	}
	var rec *woRecord
	if len(wo) > 0 || !plan.ValuesWOVersion.IsNull() {
		var err error
		if rec, err = newWORecord(nil); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("values_wo"), "Cannot record write-only values", err.Error())
			return
		}
	}
	prefix := plan.Prefix.ValueString()
	plan.ID = types.StringValue(prefix)
	plan.ValuesWO = types.MapNull(types.StringType)

	kvs, _, err := cl.ReadPrefix(ctx, prefix)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("prefix"), "Cannot read prefix", err.Error())
		return
	}
	var taken, differ []string
	var ops []client.GuardedOp
	revs := prefixRevisions{}
	adopted := map[string]bool{}
	for _, kv := range kvs {
		s := kv.Key[len(prefix):]
		if d, ok := desired[s]; ok {
			taken = append(taken, s)
			if bytes.Equal(d.value, kv.Value) {
				adopted[s] = true
				revs[s] = kv.ModRevision
			} else {
				differ = append(differ, s)
			}
		} else if plan.DeleteUnmanaged.ValueBool() {
			ops = append(ops, client.GuardedOp{Key: kv.Key, Delete: true, ModRevision: kv.ModRevision})
		}
	}
	switch {
	case len(differ) > 0 && plan.AdoptIfEqual.ValueBool():
		resp.Diagnostics.AddAttributeError(path.Root("adopt_if_equal"), "Keys exist with other values", adoptDetail(prefix, differ))
		return
	case len(taken) > 0 && !plan.AdoptIfEqual.ValueBool():
		resp.Diagnostics.AddAttributeError(path.Root("values"), "Keys already exist", existingKeysDetail(prefix, taken, true))
		return
	}
	written := map[string]prefixEntry{}
	for _, s := range sortedSuffixes(desired) {
		if adopted[s] {
			// Taken over as it is, at the revision read: nothing is written,
			// and the next refresh shows any change made since.
			written[s] = desired[s]
			if desired[s].wo {
				rec.record(s, desired[s].value)
			}
			continue
		}
		ops = append(ops, client.GuardedOp{Key: prefix + s, Value: desired[s].value})
	}
	if len(adopted) > 0 {
		tflog.Info(ctx, "adopting existing etcd keys with the planned values", map[string]any{"prefix": prefix, "keys": len(adopted)})
	}

	applied, err := cl.ApplyGuarded(ctx, ops, plan.maxOps())
	for _, a := range applied {
		if a.Delete {
			continue
		}
		s := a.Key[len(prefix):]
		written[s] = desired[s]
		revs[s] = a.Revision
		if desired[s].wo {
			rec.record(s, desired[s].value)
		}
	}
	if err != nil {
		if len(applied) > 0 {
			// Record what was written; Terraform keeps it (tainted) so that
			// nothing is left unrecorded.
			partial := plan
			partial.setEntries(written, plan)
			resp.Diagnostics.Append(resp.State.Set(ctx, partial)...)
			resp.Diagnostics.Append(setRevisions(ctx, resp.Private, privateRevisions, revs)...)
			resp.Diagnostics.Append(setWORecord(ctx, resp.Private, rec)...)
			resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "prefix", prefix)...)
		}
		r.addWriteError(&resp.Diagnostics, err, prefix, len(applied), len(ops), "created")
		return
	}
	tflog.Debug(ctx, "created etcd key prefix", map[string]any{"prefix": prefix, "keys": len(desired), "operations": len(ops)})
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
	resp.Diagnostics.Append(setRevisions(ctx, resp.Private, privateRevisions, revs)...)
	resp.Diagnostics.Append(setWORecord(ctx, resp.Private, rec)...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "prefix", prefix)...)
}

func (r *keyPrefixResource) addWriteError(diags *diag.Diagnostics, err error, prefix string, applied, total int, verb string) {
	var ce *client.ConflictError
	progress := ""
	if total > 0 && applied > 0 {
		progress = fmt.Sprintf(" %d of %d operations were applied before the failure and are recorded in state.", applied, total)
	}
	if errors.As(err, &ce) {
		diags.AddAttributeError(path.Root("prefix"), "Keys changed outside Terraform",
			fmt.Sprintf("Keys under %q were changed outside Terraform after they were last read, so they were not %s: %v. "+
				"The provider never overwrites a change it has not shown you. Run plan again to see the current "+
				"values, then apply.%s", prefix, verb, err, progress))
		return
	}
	diags.AddAttributeError(path.Root("prefix"), "Cannot write keys", err.Error()+"."+progress)
}

func (r *keyPrefixResource) Read(ctx context.Context, req resource.ReadRequest, resp *resource.ReadResponse) {
	var state keyPrefixModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	importing, diags := req.Private.GetKey(ctx, privateImporting)
	resp.Diagnostics.Append(diags...)
	if len(importing) == 0 && !resp.Diagnostics.HasError() {
		resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "prefix", state.Prefix.ValueString())...)
		if r.provider.keepStateUnconfigured(&resp.Diagnostics) {
			return
		}
	}
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	rec, diags := getWORecord(ctx, req.Private)
	resp.Diagnostics.Append(diags...)
	owned, _, diags := state.entries()
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	adopt := len(importing) > 0 || state.DeleteUnmanaged.ValueBool()

	prefix := state.Prefix.ValueString()
	kvs, _, err := cl.ReadPrefix(ctx, prefix)
	if err != nil {
		resp.Diagnostics.AddAttributeError(path.Root("prefix"), "Cannot read prefix", err.Error())
		return
	}
	now := make(map[string]prefixEntry, len(owned))
	revs := make(prefixRevisions, len(owned))
	var unrepresentable, changedWO []string
	seenWO := map[string]bool{}
	for _, kv := range kvs {
		s := kv.Key[len(prefix):]
		if rec != nil {
			if _, ok := rec.MACs[s]; ok {
				// A write-only value: checked against its HMAC, never read
				// into the state.
				seenWO[s] = true
				revs[s] = kv.ModRevision
				if !rec.matches(s, kv.Value) {
					changedWO = append(changedWO, kv.Key)
				}
				continue
			}
		}
		prior, ok := owned[s]
		if !ok && !adopt {
			continue
		}
		if !utf8.ValidString(s) {
			unrepresentable = append(unrepresentable, fmt.Sprintf("%q", kv.Key))
			continue
		}
		// A key adopted now (import, delete_unmanaged) joins values_json
		// when the state uses it: a prefix that large needs it.
		inDoc := prior.json || (!ok && !state.ValuesJSON.IsNull())
		now[s] = prefixEntry{value: kv.Value, b64: prior.b64 || !utf8.Valid(kv.Value), json: inDoc}
		revs[s] = kv.ModRevision
	}
	if len(unrepresentable) > 0 {
		resp.Diagnostics.AddAttributeWarning(path.Root("prefix"), "Keys that are not valid UTF-8",
			fmt.Sprintf("%d key(s) under the prefix are not valid UTF-8 after the prefix, so they cannot be map keys in "+
				"Terraform and are left alone: %s.", len(unrepresentable), strings.Join(unrepresentable[:min(10, len(unrepresentable))], ", ")))
	}
	if rec != nil {
		for s := range rec.MACs {
			if !seenWO[s] {
				changedWO = append(changedWO, prefix+s)
			}
		}
	}
	if len(changedWO) > 0 && !state.ValuesWOVersion.IsNull() {
		slices.Sort(changedWO)
		state.ValuesWOVersion = types.Int64Null()
		resp.Diagnostics.AddAttributeWarning(path.Root("values_wo_version"), "Write-only values changed outside Terraform",
			fmt.Sprintf("%d key(s) written from values_wo no longer hold the value Terraform wrote (changed or deleted "+
				"outside Terraform): %s. The plan writes values_wo again.", len(changedWO), quoteFirst(changedWO, 10)))
	}
	if len(importing) > 0 {
		tflog.Info(ctx, "imported etcd key prefix", map[string]any{"prefix": prefix, "keys": len(now)})
		resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateImporting, nil)...)
	}
	state.ID = types.StringValue(prefix)
	state.setEntries(now, state)
	if state.DeleteUnmanaged.IsNull() {
		state.DeleteUnmanaged = types.BoolValue(false)
	}
	if state.MaxTxnOps.IsNull() {
		state.MaxTxnOps = types.Int64Value(client.DefaultMaxTxnOps)
	}
	resp.Diagnostics.Append(resp.State.Set(ctx, state)...)
	resp.Diagnostics.Append(setRevisions(ctx, resp.Private, privateRevisions, revs)...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "prefix", prefix)...)
}

func (r *keyPrefixResource) Update(ctx context.Context, req resource.UpdateRequest, resp *resource.UpdateResponse) {
	var plan, state keyPrefixModel
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	desired, _, diags := plan.entries()
	resp.Diagnostics.Append(diags...)
	current, _, diags := state.entries()
	resp.Diagnostics.Append(diags...)
	revs, diags := getRevisions(ctx, req.Private, privateRevisions)
	resp.Diagnostics.Append(diags...)
	unmanaged, diags := getRevisions(ctx, req.Private, privateUnmanaged)
	resp.Diagnostics.Append(diags...)
	prior, diags := getWORecord(ctx, req.Private)
	resp.Diagnostics.Append(diags...)
	wo, _, diags := woEntries(ctx, req.Config)
	resp.Diagnostics.Append(diags...)
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	prefix := state.Prefix.ValueString()
	resp.Diagnostics.Append(r.fillMissingRevisions(ctx, cl, prefix, current, revs)...)
	if resp.Diagnostics.HasError() {
		return
	}

	// The write-only keys: written from the configuration when
	// values_wo_version changed, else left as they are.
	var rec *woRecord
	if len(wo) > 0 || prior != nil {
		var err error
		if rec, err = newWORecord(prior); err != nil {
			resp.Diagnostics.AddAttributeError(path.Root("values_wo"), "Cannot record write-only values", err.Error())
			return
		}
	}
	if prior != nil {
		for s := range prior.MACs {
			current[s] = prefixEntry{wo: true, keep: true}
		}
	}
	if plan.ValuesWOVersion.Equal(state.ValuesWOVersion) && prior != nil {
		for s, mac := range prior.MACs {
			desired[s] = prefixEntry{wo: true, keep: true}
			rec.MACs[s] = mac
		}
	} else {
		for s, e := range wo {
			desired[s] = e
		}
	}

	var ops []client.GuardedOp
	for _, s := range sortedSuffixes(desired) {
		d := desired[s]
		if d.keep {
			continue
		}
		if c, ok := current[s]; ok && !c.wo && !d.wo && bytes.Equal(c.value, d.value) {
			continue
		}
		// revs[s] is 0 for a key not managed yet: it must not exist.
		ops = append(ops, client.GuardedOp{Key: prefix + s, Value: d.value, ModRevision: revs[s]})
	}
	for _, s := range sortedSuffixes(current) {
		if _, ok := desired[s]; !ok {
			ops = append(ops, client.GuardedOp{Key: prefix + s, Delete: true, ModRevision: revs[s]})
		}
	}
	for _, s := range sortedSuffixes(unmanaged) {
		if _, ok := desired[s]; !ok {
			ops = append(ops, client.GuardedOp{Key: prefix + s, Delete: true, ModRevision: unmanaged[s]})
		}
	}

	applied, err := cl.ApplyGuarded(ctx, ops, plan.maxOps())
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateUnmanaged, nil)...)
	// What etcd holds now, of the keys this resource manages.
	now := current
	for s, e := range current {
		if e.wo {
			delete(now, s)
		}
	}
	for _, a := range applied {
		s := a.Key[len(prefix):]
		switch {
		case a.Delete:
			delete(now, s)
			delete(revs, s)
			if rec != nil {
				delete(rec.MACs, s)
			}
		case desired[s].wo:
			delete(now, s)
			revs[s] = a.Revision
			rec.record(s, desired[s].value)
		default:
			now[s] = desired[s]
			revs[s] = a.Revision
			if rec != nil {
				delete(rec.MACs, s)
			}
		}
	}
	if rec != nil && len(rec.MACs) == 0 && len(wo) == 0 {
		rec = nil
	}
	if err != nil {
		partial := plan
		partial.setEntries(now, plan)
		if rec != nil && !plan.ValuesWOVersion.Equal(state.ValuesWOVersion) {
			// Not every write-only key was written: the next plan writes them again.
			partial.ValuesWOVersion = state.ValuesWOVersion
		}
		resp.Diagnostics.Append(resp.State.Set(ctx, partial)...)
		resp.Diagnostics.Append(setRevisions(ctx, resp.Private, privateRevisions, revs)...)
		resp.Diagnostics.Append(setWORecord(ctx, resp.Private, rec)...)
		resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "prefix", prefix)...)
		r.addWriteError(&resp.Diagnostics, err, prefix, len(applied), len(ops), "updated")
		return
	}
	tflog.Debug(ctx, "updated etcd key prefix", map[string]any{"prefix": prefix, "operations": len(ops)})
	plan.ID = types.StringValue(prefix)
	plan.ValuesWO = types.MapNull(types.StringType)
	resp.Diagnostics.Append(resp.State.Set(ctx, plan)...)
	resp.Diagnostics.Append(setRevisions(ctx, resp.Private, privateRevisions, revs)...)
	resp.Diagnostics.Append(setWORecord(ctx, resp.Private, rec)...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "prefix", prefix)...)
}

// fillMissingRevisions reads the prefix when a key in state has no recorded
// revision (a state written without private data, e.g. moved by hand): the
// guard then uses the revision read now.
func (r *keyPrefixResource) fillMissingRevisions(ctx context.Context, cl *client.Client, prefix string, current map[string]prefixEntry, revs prefixRevisions) diag.Diagnostics {
	var diags diag.Diagnostics
	missing := false
	for s := range current {
		if revs[s] == 0 {
			missing = true
			break
		}
	}
	if !missing {
		return diags
	}
	kvs, _, err := cl.ReadPrefix(ctx, prefix)
	if err != nil {
		diags.AddAttributeError(path.Root("prefix"), "Cannot read prefix", err.Error())
		return diags
	}
	for _, kv := range kvs {
		s := kv.Key[len(prefix):]
		if _, ok := current[s]; ok && revs[s] == 0 {
			revs[s] = kv.ModRevision
		}
	}
	return diags
}

func (r *keyPrefixResource) Delete(ctx context.Context, req resource.DeleteRequest, resp *resource.DeleteResponse) {
	var state keyPrefixModel
	resp.Diagnostics.Append(req.State.Get(ctx, &state)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if state.KeepOnDestroy.ValueBool() {
		tflog.Info(ctx, "keep_on_destroy: leaving the etcd keys in place", map[string]any{"prefix": state.Prefix.ValueString()})
		return
	}
	current, _, diags := state.entries()
	resp.Diagnostics.Append(diags...)
	revs, diags := getRevisions(ctx, req.Private, privateRevisions)
	resp.Diagnostics.Append(diags...)
	rec, diags := getWORecord(ctx, req.Private)
	resp.Diagnostics.Append(diags...)
	cl, diags := r.provider.Client(ctx)
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	prefix := state.Prefix.ValueString()
	resp.Diagnostics.Append(r.fillMissingRevisions(ctx, cl, prefix, current, revs)...)
	if resp.Diagnostics.HasError() {
		return
	}
	if rec != nil {
		for s := range rec.MACs {
			if revs[s] != 0 { // a write-only key deleted outside Terraform has none
				current[s] = prefixEntry{wo: true}
			}
		}
	}
	var ops []client.GuardedOp
	for _, s := range sortedSuffixes(current) {
		ops = append(ops, client.GuardedOp{Key: prefix + s, Delete: true, ModRevision: revs[s]})
	}
	applied, err := cl.ApplyGuarded(ctx, ops, state.maxOps())
	if err == nil {
		return
	}
	// Keep what is left in state.
	for _, a := range applied {
		s := a.Key[len(prefix):]
		delete(current, s)
		delete(revs, s)
		if rec != nil {
			delete(rec.MACs, s)
		}
	}
	left := state
	left.setEntries(current, state)
	resp.Diagnostics.Append(resp.State.Set(ctx, left)...)
	resp.Diagnostics.Append(setRevisions(ctx, resp.Private, privateRevisions, revs)...)
	resp.Diagnostics.Append(setWORecord(ctx, resp.Private, rec)...)
	r.addWriteError(&resp.Diagnostics, err, prefix, len(applied), len(ops), "deleted")
}

func (r *keyPrefixResource) ImportState(ctx context.Context, req resource.ImportStateRequest, resp *resource.ImportStateResponse) {
	prefix, diags := importTarget(ctx, req, "prefix", "/app/config/")
	resp.Diagnostics.Append(diags...)
	if resp.Diagnostics.HasError() {
		return
	}
	if prefix == "" {
		resp.Diagnostics.AddError("Missing prefix", "Give the prefix to import, e.g. terraform import etcd_key_prefix.NAME /app/config/")
		return
	}
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("prefix"), prefix)...)
	resp.Diagnostics.Append(resp.State.SetAttribute(ctx, path.Root("id"), prefix)...)
	resp.Diagnostics.Append(resp.Private.SetKey(ctx, privateImporting, []byte("true"))...)
	resp.Diagnostics.Append(setIdentity(ctx, resp.Identity, "prefix", prefix)...)
}

func sortedSuffixes[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// quoteFirst quotes up to n items and says how many more there are.
func quoteFirst(items []string, n int) string {
	q := make([]string, 0, min(len(items), n))
	for _, it := range items[:min(len(items), n)] {
		q = append(q, fmt.Sprintf("%q", it))
	}
	s := strings.Join(q, ", ")
	if len(items) > n {
		s += fmt.Sprintf(" and %d more", len(items)-n)
	}
	return s
}
