package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// rpcStat is the provider's time in one RPC type during one command.
type rpcStat struct {
	count int
	total time.Duration
}

// rpcOrder is the order of the rows of the per-RPC table: the RPCs of the
// issue first, in the order a command sends them; any other RPC after them.
var rpcOrder = []string{
	"GetProviderSchema", "GetMetadata", "GetResourceIdentitySchemas", "ValidateProviderConfig",
	"ValidateResourceConfig", "UpgradeResourceState", "UpgradeResourceIdentity", "ConfigureProvider",
	"ReadResource", "PlanResourceChange", "ApplyResourceChange",
}

// readRPCs sums the lines "<pid> <rpc> <type> <µs>" the provider wrote
// during one command; no file means no RPC was timed.
func readRPCs(file string) (map[string]rpcStat, error) {
	data, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]rpcStat{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := map[string]rpcStat{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 {
			continue
		}
		us, err := strconv.ParseInt(f[3], 10, 64)
		if err != nil {
			continue
		}
		s := out[f[1]]
		s.count++
		s.total += time.Duration(us) * time.Microsecond
		out[f[1]] = s
	}
	return out, sc.Err()
}

func rpcNames(results []result) []string {
	seen := map[string]bool{}
	for _, r := range results {
		for _, m := range r.commands() {
			for name := range m.rpcs {
				seen[name] = true
			}
		}
	}
	var names []string
	for _, name := range rpcOrder {
		if seen[name] {
			names = append(names, name)
			delete(seen, name)
		}
	}
	var rest []string
	for name := range seen {
		rest = append(rest, name)
	}
	sort.Strings(rest)
	return append(names, rest...)
}

func rpcCell(m measurement, name string) string {
	s, ok := m.rpcs[name]
	if !ok || s.count == 0 {
		return "–"
	}
	return fmt.Sprintf("%d × %.0f µs = %.0f ms", s.count, float64(s.total.Microseconds())/float64(s.count),
		float64(s.total.Microseconds())/1000)
}

func rpcTotal(m measurement) time.Duration {
	var t time.Duration
	for _, s := range m.rpcs {
		t += s.total
	}
	return t
}

// renderRPCs is one table per scenario: where the provider's time goes in
// each command (the plans: the median run).
func renderRPCs(results []result) string {
	var w bytes.Buffer
	names := rpcNames(results)
	if len(names) == 0 {
		return ""
	}
	fmt.Fprintln(&w)
	fmt.Fprintln(&w, "Provider time per RPC (calls × mean = total, measured inside the provider around each RPC; plans: the median run):")
	for _, r := range results {
		fmt.Fprintln(&w)
		ms := r.commands()
		if r.update != nil {
			fmt.Fprintf(&w, "| %s | create | plan (refresh) | plan -refresh=false | destroy | apply of a 1%% change |\n", r.name)
			fmt.Fprintln(&w, "|---|---:|---:|---:|---:|---:|")
		} else {
			fmt.Fprintf(&w, "| %s | create | plan (refresh) | plan -refresh=false | destroy |\n", r.name)
			fmt.Fprintln(&w, "|---|---:|---:|---:|---:|")
		}
		for _, name := range names {
			cells := make([]string, len(ms))
			for i, m := range ms {
				cells[i] = rpcCell(m, name)
			}
			fmt.Fprintf(&w, "| %s | %s |\n", name, strings.Join(cells, " | "))
		}
		cells := make([]string, len(ms))
		for i, m := range ms {
			cells[i] = fmt.Sprintf("%.0f ms of %.2f s wall", float64(rpcTotal(m).Microseconds())/1000, m.wall.Seconds())
		}
		fmt.Fprintf(&w, "| all RPCs | %s |\n", strings.Join(cells, " | "))
		for i, m := range ms {
			cells[i] = strconv.Itoa(m.procs)
		}
		fmt.Fprintf(&w, "| provider processes | %s |\n", strings.Join(cells, " | "))
	}
	return w.String()
}

// startCost is what starting a provider process costs before it serves
// anything: the wall time of `provider version` (exec, runtime start,
// package initialisers, exit) and the initialisers' own time as
// GODEBUG=inittrace=1 reports it.
type startCost struct {
	runs     int
	wall     time.Duration // median
	initTime time.Duration // median of the sum over packages
	top      []pkgInit     // the slowest initialisers of the median run
}

type pkgInit struct {
	pkg   string
	clock time.Duration
}

const startRuns = 7

func measureStart(providerBin string) (startCost, error) {
	c := startCost{runs: startRuns}
	type run struct {
		wall, init time.Duration
		pkgs       []pkgInit
	}
	var runs []run
	for range startRuns {
		cmd := exec.Command(providerBin, "version")
		cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return c, fmt.Errorf("%s version: %w", providerBin, err)
		}
		r := run{wall: time.Since(start)}
		// init <pkg> @<at> ms, <clock> ms clock, <bytes> bytes, <allocs> allocs
		for _, line := range strings.Split(stderr.String(), "\n") {
			f := strings.Fields(line)
			if len(f) < 7 || f[0] != "init" || f[6] != "clock," {
				continue
			}
			ms, err := strconv.ParseFloat(f[4], 64)
			if err != nil {
				continue
			}
			d := time.Duration(ms * float64(time.Millisecond))
			r.init += d
			r.pkgs = append(r.pkgs, pkgInit{pkg: f[1], clock: d})
		}
		runs = append(runs, r)
	}
	slices.SortFunc(runs, func(a, b run) int { return int(a.wall - b.wall) })
	mid := runs[len(runs)/2]
	c.wall = mid.wall
	inits := make([]time.Duration, len(runs))
	for i, r := range runs {
		inits[i] = r.init
	}
	slices.Sort(inits)
	c.initTime = inits[len(inits)/2]
	slices.SortFunc(mid.pkgs, func(a, b pkgInit) int { return int(b.clock - a.clock) })
	c.top = mid.pkgs[:min(8, len(mid.pkgs))]
	return c, nil
}

func renderStart(c startCost) string {
	var w bytes.Buffer
	fmt.Fprintln(&w)
	fmt.Fprintf(&w, "Provider process start (`terraform-provider-etcd version`, median of %d): %.1f ms wall, of which package initialisers %.1f ms (GODEBUG=inittrace=1). Slowest initialisers: ",
		c.runs, float64(c.wall.Microseconds())/1000, float64(c.initTime.Microseconds())/1000)
	parts := make([]string, len(c.top))
	for i, p := range c.top {
		parts[i] = fmt.Sprintf("%s %.2f ms", p.pkg, float64(p.clock.Microseconds())/1000)
	}
	fmt.Fprintln(&w, strings.Join(parts, ", ")+".")
	return w.String()
}

// commands are the scenario's measured commands in the order of the RPC
// table's columns: the apply of the changed configuration last, if any.
func (r result) commands() []measurement {
	ms := []measurement{r.create, r.plan, r.planNoRefresh, r.destroy}
	if r.update != nil {
		ms = append(ms, *r.update)
	}
	if r.settle != nil {
		ms = append(ms, *r.settle)
	}
	return ms
}
