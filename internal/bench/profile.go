package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/terraform-etcd/terraform-provider-etcd/internal/provider"
)

// envProfile names a directory: instead of running the real provider
// binary, the wrapper serves the provider itself and writes one CPU profile
// per provider process there (bench -cpuprofile DIR). For finding where the
// provider spends its time; the timings and RSS of a profiled run are not
// the real binary's.
const envProfile = "ETCD_BENCH_CPUPROFILE_DIR"

func serveProfiled(dir string) int {
	f, err := os.CreateTemp(dir, "provider-*.pprof")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench profile:", err)
		return 1
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, "bench profile:", err)
		return 1
	}
	defer pprof.StopCPUProfile()
	stop := make(chan struct{})
	go func() { // heap profile at the largest live heap seen
		var peak uint64
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak+peak/10 {
				peak = ms.HeapAlloc
				if h, err := os.Create(f.Name() + ".peakheap"); err == nil {
					_ = pprof.Lookup("heap").WriteTo(h, 0)
					h.Close()
				}
			}
		}
	}()
	defer close(stop)
	err = provider.Serve("bench", false)
	if h, herr := os.Create(f.Name() + ".heap"); herr == nil {
		_ = pprof.Lookup("allocs").WriteTo(h, 0)
		h.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench profile:", err)
		return 1
	}
	return 0
}
