package provider

import (
	"os"
	"runtime/debug"
)

// servingGCPercent is the garbage collector's target while serving the
// plugin protocol, unless GOGC says otherwise.
//
// The provider's live heap is small (a few MiB: one client, the schemas),
// but every RPC allocates a lot of short-lived garbage in the plugin SDK
// (logging contexts, tftypes values, msgpack buffers). With Go's default
// GOGC=100 the collector then runs every few MiB allocated and, in a plan
// that refreshes a thousand resources, took about a quarter of the
// provider's CPU time. A target of 400 lets the heap grow to five times the
// live data between collections, which cuts that work about four-fold for
// a few tens of MiB more of peak memory. The memory limit keeps a provider
// that does hold a large heap (a huge etcd_key_prefix) from growing without
// bound.
const (
	servingGCPercent  = 400
	servingSoftMemCap = 1 << 30
)

// TuneGCForServing sets the collector's target for serving the provider.
// GOGC and GOMEMLIMIT, when set, win.
func TuneGCForServing() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(servingGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(servingSoftMemCap)
	}
}
