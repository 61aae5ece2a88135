package provider

import (
	"os"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
	"github.com/hashicorp/terraform-plugin-go/tfprotov6/tf6server"
)

// Serve serves the provider plugin under Address until the CLI is done
// with it: the SDK's logs quiet unless someone reads them, the collector
// tuned for serving, and the protocol server of NewProtocol6Server (timed
// per RPC when EnvRPCTimings names a file). With
// debug, it runs in managed debug mode (TF_REATTACH_PROVIDERS).
func Serve(version string, debug bool) error {
	QuietSDKLogsUnlessDebugging()
	TuneGCForServing()
	srv, err := NewProtocol6Server(version)()
	if err != nil {
		return err
	}
	if file := os.Getenv(EnvRPCTimings); file != "" {
		t, err := openRPCTimer(file)
		if err != nil {
			return err
		}
		if full, ok := srv.(protocolServer); ok {
			srv = &timedServer{protocolServer: full, t: t}
		}
	}
	var opts []tf6server.ServeOpt
	if debug {
		opts = append(opts, tf6server.WithManagedDebug())
	}
	return tf6server.Serve(Address, func() tfprotov6.ProviderServer { return srv }, opts...)
}

// NewProtocol6Server returns the factory of the provider's protocol server,
// for tf6server.Serve and for tests: the framework's server for the
// provider that New builds.
func NewProtocol6Server(version string) func() (tfprotov6.ProviderServer, error) {
	return providerserver.NewProtocol6WithError(New(version)())
}
