package main

import "fmt"

// comparison is one bar of the ratio plot: a figure of ours against a
// reference measured in the same run. Every ratio is turned into a speed-up
// (above 1: ours is faster), whatever the benchmark reports.
type comparison struct {
	Label     string // what is compared, for the plot and the table
	Reference string // what it is compared with
	Command   string // make target that reproduces it

	// Either two sub-benchmarks with the same time metric (ours and the
	// reference, lower is better)...
	Ours, Ref, TimeUnit string
	// ...or one benchmark reporting the ratio itself.
	Bench, RatioUnit string
	// RatioIsTime: the reported ratio is ours/reference time (lower is
	// better); otherwise it is a throughput ratio (higher is better).
	RatioIsTime bool
}

// comparisons lists the figures the performance page plots. A benchmark
// that did not run (skipped, renamed) shows as "not run" in the table and
// is left out of the plot.
var comparisons = []comparison{
	{Label: "Mutex hand-off, 4 sessions", Reference: "concurrency.Mutex", Command: "make bench-recipes",
		Ours: "BenchmarkMutexContended/recipes", Ref: "BenchmarkMutexContended/etcd", TimeUnit: "ms/grant"},
	{Label: "Mutex lock+unlock, uncontended", Reference: "concurrency.Mutex", Command: "make bench-recipes",
		Bench: "BenchmarkMutexUncontendedInterleaved", RatioUnit: "x-etcd", RatioIsTime: true},
	{Label: "Election failover (resign)", Reference: "concurrency.Election", Command: "make bench-recipes",
		Ours: "BenchmarkElectionFailover/recipes", Ref: "BenchmarkElectionFailover/etcd", TimeUnit: "p50-ms"},
	{Label: "Election failover (crash)", Reference: "concurrency.Election", Command: "make bench-recipes",
		Ours: "BenchmarkElectionCrashFailover/recipes", Ref: "BenchmarkElectionCrashFailover/etcd", TimeUnit: "p50-ms"},
	{Label: "Queue, at-most-once", Reference: "recipe.Queue", Command: "make bench-recipes",
		Bench: "BenchmarkQueue/recipes-at-most-once", RatioUnit: "x-etcd-recipe"},
	{Label: "Queue, claim + ack", Reference: "recipe.Queue", Command: "make bench-recipes",
		Bench: "BenchmarkQueue/recipes-claim-ack", RatioUnit: "x-etcd-recipe"},
	{Label: "Cache read", Reference: "linearizable Get", Command: "make bench-recipes",
		Bench: "BenchmarkCacheRead/cache", RatioUnit: "x-linearizable-get"},
	{Label: "Cache cold sync", Reference: "one Range", Command: "make bench-recipes",
		Bench: "BenchmarkCacheColdSync/range-vs-cache", RatioUnit: "x-range", RatioIsTime: true},
	{Label: "Counter Add, 8 clients", Reference: "Get + CAS loop", Command: "make bench-recipes",
		Bench: "BenchmarkCounterAdd/recipes", RatioUnit: "x-naive"},
	{Label: "snapshot save", Reference: "etcdctl snapshot save", Command: "make bench-snapshot",
		Bench: "BenchmarkSnapshotSave", RatioUnit: "x-etcdctl"},
}

// speedUp is the comparison's figure in lines: above 1, ours is faster.
// ok is false when the benchmarks it needs did not run.
func (c comparison) speedUp(lines []benchLine) (v float64, detail string, ok bool) {
	if c.Bench != "" {
		l, found := find(lines, c.Bench)
		r, has := l.Metrics[c.RatioUnit]
		if !found || !has || r <= 0 {
			return 0, "", false
		}
		if c.RatioIsTime {
			return 1 / r, fmt.Sprintf("%s %s = %.3g (time, ours / reference)", c.Bench, c.RatioUnit, r), true
		}
		return r, fmt.Sprintf("%s %s = %.3g (throughput, ours / reference)", c.Bench, c.RatioUnit, r), true
	}
	o, okO := find(lines, c.Ours)
	ref, okR := find(lines, c.Ref)
	ov, ref1 := o.Metrics[c.TimeUnit], ref.Metrics[c.TimeUnit]
	if !okO || !okR || ov <= 0 || ref1 <= 0 {
		return 0, "", false
	}
	return ref1 / ov, fmt.Sprintf("%s: ours %.3g, reference %.3g", c.TimeUnit, ov, ref1), true
}
