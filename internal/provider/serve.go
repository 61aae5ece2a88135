package provider

import (
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6/tf6server"
)

// Serve serves the provider plugin under Address until the CLI is done
// with it: the SDK's logs quiet unless someone reads them, the collector
// tuned for serving, and the protocol server of NewProtocol6Server. With
// debug, it runs in managed debug mode (TF_REATTACH_PROVIDERS).
func Serve(version string, debug bool) error {
	QuietSDKLogsUnlessDebugging()
	TuneGCForServing()
	srv, err := NewProtocol6Server(version)()
	if err != nil {
		return err
	}
	var opts []tf6server.ServeOpt
	if debug {
		opts = append(opts, tf6server.WithManagedDebug())
	}
	return tf6server.Serve(Address, func() tfprotov6.ProviderServer { return srv }, opts...)
}
