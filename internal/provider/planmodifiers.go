package provider

import (
	"context"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema/planmodifier"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// stateUnlessChanged plans a computed attribute as its prior state value
// when none of the given attributes changes, and leaves it unknown otherwise.
//
// It suits values that the server recomputes on every write, such as an etcd
// key's mod_revision and version: known (and so not shown as a change) when
// nothing is written, unknown when a write will happen, which is what keeps
// Terraform from reporting an inconsistent result after apply.
func stateUnlessChanged(attrs ...path.Path) planmodifier.Int64 {
	return stateUnlessChangedModifier{attrs: attrs}
}

type stateUnlessChangedModifier struct {
	attrs []path.Path
}

func (m stateUnlessChangedModifier) Description(context.Context) string {
	names := make([]string, len(m.attrs))
	for i, p := range m.attrs {
		names[i] = p.String()
	}
	return fmt.Sprintf("Keeps the prior value unless %s changes.", strings.Join(names, ", "))
}

func (m stateUnlessChangedModifier) MarkdownDescription(ctx context.Context) string {
	return m.Description(ctx)
}

func (m stateUnlessChangedModifier) PlanModifyInt64(ctx context.Context, req planmodifier.Int64Request, resp *planmodifier.Int64Response) {
	// Create and destroy: nothing to keep. A configured or already planned
	// value: not ours to touch.
	if req.State.Raw.IsNull() || req.Plan.Raw.IsNull() || !req.PlanValue.IsUnknown() || req.StateValue.IsNull() {
		return
	}
	if changed, ok := m.rootsChanged(req.Plan.Raw, req.State.Raw); ok {
		if !changed {
			resp.PlanValue = req.StateValue
		}
		return
	}
	for _, p := range m.attrs {
		var planned, prior attr.Value
		resp.Diagnostics.Append(req.Plan.GetAttribute(ctx, p, &planned)...)
		resp.Diagnostics.Append(req.State.GetAttribute(ctx, p, &prior)...)
		if resp.Diagnostics.HasError() {
			return
		}
		if planned.IsUnknown() || !planned.Equal(prior) {
			return // a write will happen: the new value is unknown
		}
	}
	resp.PlanValue = req.StateValue
}

// rootsChanged is the loop of PlanModifyInt64 on the raw objects, without
// walking the schema for every attribute (the framework does that on each
// GetAttribute, and this modifier runs on every planned resource): a
// planned value that is unknown or differs from the prior one is a change.
// ok is false when an attribute is not a top-level one of both objects; the
// framework path then decides.
func (m stateUnlessChangedModifier) rootsChanged(plan, state tftypes.Value) (changed, ok bool) {
	var planned, prior map[string]tftypes.Value
	if plan.As(&planned) != nil || state.As(&prior) != nil {
		return false, false
	}
	names := make([]string, len(m.attrs))
	for i, p := range m.attrs {
		steps := p.Steps()
		if len(steps) != 1 {
			return false, false
		}
		name, isAttr := steps[0].(path.PathStepAttributeName)
		if !isAttr {
			return false, false
		}
		names[i] = string(name)
		if _, ok := planned[names[i]]; !ok {
			return false, false
		}
		if _, ok := prior[names[i]]; !ok {
			return false, false
		}
	}
	for _, name := range names {
		if !planned[name].IsFullyKnown() || !planned[name].Equal(prior[name]) {
			return true, true
		}
	}
	return false, true
}
