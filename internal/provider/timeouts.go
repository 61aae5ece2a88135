package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-framework/schema/validator"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

// operationTimeouts are the defaults of a resource's `timeouts` attribute,
// which etcd_cluster and etcd_member share: the schema (attribute), the
// model (timeoutsModel) and the parsing (get).
type operationTimeouts struct {
	Create, Update, Delete time.Duration
}

type timeoutsModel struct {
	Create types.String `tfsdk:"create"`
	Update types.String `tfsdk:"update"`
	Delete types.String `tfsdk:"delete"`
}

// attribute is the schema of `timeouts`; what says what the operations
// wait for.
func (d operationTimeouts) attribute(what string) schema.SingleNestedAttribute {
	opAttr := func(op string) schema.StringAttribute {
		return schema.StringAttribute{Optional: true, Validators: []validator.String{durationValidator{}},
			MarkdownDescription: "How long " + op + " may take."}
	}
	return schema.SingleNestedAttribute{Optional: true,
		MarkdownDescription: fmt.Sprintf("How long create, update and delete may take, as durations such as `\"30m\"`. "+
			"Defaults: create %s, update %s, delete %s. %s", shortDuration(d.Create), shortDuration(d.Update), shortDuration(d.Delete), what),
		Attributes: map[string]schema.Attribute{"create": opAttr("create"), "update": opAttr("update"), "delete": opAttr("delete")}}
}

// shortDuration prints whole minutes as "20m" rather than "20m0s".
func shortDuration(d time.Duration) string {
	if d%time.Minute == 0 {
		return fmt.Sprintf("%dm", int64(d/time.Minute))
	}
	return d.String()
}

// get returns the timeout of op ("create", "update" or "delete") set in
// obj (the `timeouts` attribute), or its default. A value that is not a
// positive duration is an error on timeouts.<op>: the validators catch it
// at plan time unless it was unknown then.
func (d operationTimeouts) get(ctx context.Context, obj types.Object, op string) (time.Duration, diag.Diagnostics) {
	def := map[string]time.Duration{"create": d.Create, "update": d.Update, "delete": d.Delete}[op]
	var diags diag.Diagnostics
	if obj.IsNull() || obj.IsUnknown() {
		return def, diags
	}
	var t timeoutsModel
	diags.Append(obj.As(ctx, &t, objectAsOptions)...)
	v := map[string]types.String{"create": t.Create, "update": t.Update, "delete": t.Delete}[op]
	if v.IsNull() || v.IsUnknown() {
		return def, diags
	}
	parsed, err := client.ParseTimeout(v.ValueString())
	if err != nil {
		diags.AddAttributeError(path.Root("timeouts").AtName(op), "Invalid timeout", fmt.Sprintf("%q is not a positive duration such as \"30m\".", v.ValueString()))
		return def, diags
	}
	return parsed, diags
}

// timeoutHint is added to an error caused by an operation's deadline.
func timeoutHint(op string, d time.Duration) string {
	return fmt.Sprintf("\n\nThe operation ran into its timeout (%s); raise it with timeouts = { %s = \"...\" } if the machines are slow.", shortDuration(d), op)
}

// noteDeadline explains a failed operation whose context ran out: ctx is
// the one bounded by timeouts.<op>.
func noteDeadline(ctx context.Context, diags *diag.Diagnostics, op string, timeout time.Duration) {
	if !diags.HasError() || !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return
	}
	diags.AddAttributeError(path.Root("timeouts").AtName(op), "Timeout reached",
		strings.TrimSpace(timeoutHint(op, timeout)))
}
