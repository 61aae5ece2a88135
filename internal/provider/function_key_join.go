package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/function"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

var _ function.Function = keyJoinFunction{}

// keyJoinFunction is provider::etcd::key_join.
type keyJoinFunction struct{}

func newKeyJoinFunction() function.Function { return keyJoinFunction{} }

func (keyJoinFunction) Metadata(_ context.Context, _ function.MetadataRequest, resp *function.MetadataResponse) {
	resp.Name = "key_join"
}

func (keyJoinFunction) Definition(_ context.Context, _ function.DefinitionRequest, resp *function.DefinitionResponse) {
	resp.Definition = function.Definition{
		Summary: "Joins key path segments with single slashes",
		MarkdownDescription: "Joins the parts of a key path with exactly one `/` between them: slashes where two " +
			"parts meet are collapsed to one, and one is added where neither part has it. A leading slash of " +
			"the first part and a trailing slash of the last part are kept, so " +
			"`key_join(\"/app/\", \"/db\", \"host\")` is `\"/app/db/host\"` and `key_join(\"/app\", \"cache/\")` " +
			"is `\"/app/cache/\"` (a prefix). Empty parts are skipped. Slashes inside a part are left as they " +
			"are: etcd keys are byte strings, and `/a//b` is a key of its own.",
		VariadicParameter: function.StringParameter{
			Name:                "parts",
			MarkdownDescription: "The segments to join, e.g. `\"/app\", var.env, \"config\"`.",
		},
		Return: function.StringReturn{},
	}
}

func (keyJoinFunction) Run(ctx context.Context, req function.RunRequest, resp *function.RunResponse) {
	var parts []string
	resp.Error = req.Arguments.Get(ctx, &parts)
	if resp.Error != nil {
		return
	}
	resp.Error = resp.Result.Set(ctx, client.JoinKey(parts...))
}
