package provider

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6"
)

// EnvRPCTimings names a file: when it is set, the plugin server appends one
// line per RPC it serves to it, "<pid> <rpc> <type> <microseconds>", so that
// `make bench` can say where a command's provider time goes. Unset (the
// default), Serve does not wrap the server at all.
const EnvRPCTimings = "ETCD_PROVIDER_RPC_TIMINGS"

// rpcTimer appends timing lines to a file. Each line is one write on a
// file opened with O_APPEND, so lines of concurrent RPCs and of several
// provider processes never interleave.
type rpcTimer struct {
	mu  sync.Mutex
	f   *os.File
	pid int
}

func openRPCTimer(file string) (*rpcTimer, error) {
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", EnvRPCTimings, err)
	}
	return &rpcTimer{f: f, pid: os.Getpid()}, nil
}

func (t *rpcTimer) record(rpc, typeName string, start time.Time) {
	d := time.Since(start)
	if typeName == "" {
		typeName = "-"
	}
	line := fmt.Sprintf("%d %s %s %d\n", t.pid, rpc, typeName, d.Microseconds())
	t.mu.Lock()
	defer t.mu.Unlock()
	_, _ = t.f.WriteString(line)
}

// protocolServer is everything the framework's protocol server implements;
// timedServer embeds it so that the plugin server still finds every
// optional RPC interface on the wrapper.
type protocolServer interface {
	tfprotov6.ProviderServer
	tfprotov6.ListResourceServer
	tfprotov6.ActionServer
	tfprotov6.StateStoreServer
}

// timedServer times the RPCs that a plan, apply or destroy sends, and
// passes everything to the server it wraps.
type timedServer struct {
	protocolServer
	t *rpcTimer
}

func (s *timedServer) GetMetadata(ctx context.Context, req *tfprotov6.GetMetadataRequest) (*tfprotov6.GetMetadataResponse, error) {
	defer s.t.record("GetMetadata", "", time.Now())
	return s.protocolServer.GetMetadata(ctx, req)
}

func (s *timedServer) GetProviderSchema(ctx context.Context, req *tfprotov6.GetProviderSchemaRequest) (*tfprotov6.GetProviderSchemaResponse, error) {
	defer s.t.record("GetProviderSchema", "", time.Now())
	return s.protocolServer.GetProviderSchema(ctx, req)
}

func (s *timedServer) GetResourceIdentitySchemas(ctx context.Context, req *tfprotov6.GetResourceIdentitySchemasRequest) (*tfprotov6.GetResourceIdentitySchemasResponse, error) {
	defer s.t.record("GetResourceIdentitySchemas", "", time.Now())
	return s.protocolServer.GetResourceIdentitySchemas(ctx, req)
}

func (s *timedServer) ValidateProviderConfig(ctx context.Context, req *tfprotov6.ValidateProviderConfigRequest) (*tfprotov6.ValidateProviderConfigResponse, error) {
	defer s.t.record("ValidateProviderConfig", "", time.Now())
	return s.protocolServer.ValidateProviderConfig(ctx, req)
}

func (s *timedServer) ConfigureProvider(ctx context.Context, req *tfprotov6.ConfigureProviderRequest) (*tfprotov6.ConfigureProviderResponse, error) {
	defer s.t.record("ConfigureProvider", "", time.Now())
	return s.protocolServer.ConfigureProvider(ctx, req)
}

func (s *timedServer) ValidateResourceConfig(ctx context.Context, req *tfprotov6.ValidateResourceConfigRequest) (*tfprotov6.ValidateResourceConfigResponse, error) {
	defer s.t.record("ValidateResourceConfig", req.TypeName, time.Now())
	return s.protocolServer.ValidateResourceConfig(ctx, req)
}

func (s *timedServer) UpgradeResourceState(ctx context.Context, req *tfprotov6.UpgradeResourceStateRequest) (*tfprotov6.UpgradeResourceStateResponse, error) {
	defer s.t.record("UpgradeResourceState", req.TypeName, time.Now())
	return s.protocolServer.UpgradeResourceState(ctx, req)
}

func (s *timedServer) UpgradeResourceIdentity(ctx context.Context, req *tfprotov6.UpgradeResourceIdentityRequest) (*tfprotov6.UpgradeResourceIdentityResponse, error) {
	defer s.t.record("UpgradeResourceIdentity", req.TypeName, time.Now())
	return s.protocolServer.UpgradeResourceIdentity(ctx, req)
}

func (s *timedServer) ReadResource(ctx context.Context, req *tfprotov6.ReadResourceRequest) (*tfprotov6.ReadResourceResponse, error) {
	defer s.t.record("ReadResource", req.TypeName, time.Now())
	return s.protocolServer.ReadResource(ctx, req)
}

func (s *timedServer) PlanResourceChange(ctx context.Context, req *tfprotov6.PlanResourceChangeRequest) (*tfprotov6.PlanResourceChangeResponse, error) {
	defer s.t.record("PlanResourceChange", req.TypeName, time.Now())
	return s.protocolServer.PlanResourceChange(ctx, req)
}

func (s *timedServer) ApplyResourceChange(ctx context.Context, req *tfprotov6.ApplyResourceChangeRequest) (*tfprotov6.ApplyResourceChangeResponse, error) {
	defer s.t.record("ApplyResourceChange", req.TypeName, time.Now())
	return s.protocolServer.ApplyResourceChange(ctx, req)
}

func (s *timedServer) ImportResourceState(ctx context.Context, req *tfprotov6.ImportResourceStateRequest) (*tfprotov6.ImportResourceStateResponse, error) {
	defer s.t.record("ImportResourceState", req.TypeName, time.Now())
	return s.protocolServer.ImportResourceState(ctx, req)
}

func (s *timedServer) ReadDataSource(ctx context.Context, req *tfprotov6.ReadDataSourceRequest) (*tfprotov6.ReadDataSourceResponse, error) {
	defer s.t.record("ReadDataSource", req.TypeName, time.Now())
	return s.protocolServer.ReadDataSource(ctx, req)
}
