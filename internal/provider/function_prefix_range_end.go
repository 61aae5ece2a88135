package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/function"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/client"
)

var _ function.Function = prefixRangeEndFunction{}

// prefixRangeEndFunction is provider::etcd::prefix_range_end.
type prefixRangeEndFunction struct{}

func newPrefixRangeEndFunction() function.Function { return prefixRangeEndFunction{} }

func (prefixRangeEndFunction) Metadata(_ context.Context, _ function.MetadataRequest, resp *function.MetadataResponse) {
	resp.Name = "prefix_range_end"
}

func (prefixRangeEndFunction) Definition(_ context.Context, _ function.DefinitionRequest, resp *function.DefinitionResponse) {
	resp.Definition = function.Definition{
		Summary: "The range end that covers every key with a prefix",
		MarkdownDescription: "Returns the end of the key range that holds exactly the keys beginning with `prefix`, " +
			"as etcd computes it (`clientv3.GetPrefixRangeEnd`, `etcdctl get --prefix`): the last byte that is " +
			"not `0xff` is incremented and what follows it dropped, so `\"/app/\"` gives `\"/app0\"`. The range " +
			"`[prefix, prefix_range_end(prefix))` is what an etcd role permission or the `etcd_keys` data source " +
			"(`key` and `range_end`) needs.\n\n" +
			"The empty prefix gives `\"\\u0000\"`, which etcd reads as \"to the end of the key space\" (with a " +
			"range start of `\"\\u0000\"` too, that is every key). When incrementing the last byte would give " +
			"bytes that are not a valid Terraform string (for example a prefix ending in U+007F), the function " +
			"fails and says so rather than return a different range.",
		Parameters: []function.Parameter{
			function.StringParameter{
				Name:                "prefix",
				MarkdownDescription: "The key prefix, e.g. `\"/app/\"`.",
			},
		},
		Return: function.StringReturn{},
	}
}

func (prefixRangeEndFunction) Run(ctx context.Context, req function.RunRequest, resp *function.RunResponse) {
	var prefix string
	resp.Error = req.Arguments.Get(ctx, &prefix)
	if resp.Error != nil {
		return
	}
	end, err := client.PrefixRangeEndText(prefix)
	if err != nil {
		resp.Error = function.NewArgumentFuncError(0, err.Error())
		return
	}
	resp.Error = resp.Result.Set(ctx, end)
}
