package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot/plotter"
)

const (
	ratiosSVG = "ratios.svg"
	timeSVG   = "provider-time.svg"
)

// render draws the plots from the raw outputs and returns the guide's text.
// pageDir is where the page lives (its rendered copy in docs/guides is as
// deep), for the relative links to the plots.
func render(all []step, raw, assets, pageDir string, m machine) (string, error) {
	rel, err := filepath.Rel(pageDir, assets)
	if err != nil {
		return "", err
	}
	rel = filepath.ToSlash(rel)
	var w bytes.Buffer
	fmt.Fprint(&w, `---
page_title: "Performance"
subcategory: ""
description: |-
  Measured speed of the recipes against etcd's own primitives, and of the provider against N resources.
---

# Performance

Every figure on this page is measured by `+"`make bench-report`"+`, which runs the benchmarks below and
draws this page (internal/benchreport). Where a figure compares us with something else, both ran in the
same process or the same run, on the same cluster, so load on the machine hits both alike.
`)
	fmt.Fprintf(&w, "\nMeasured on %s: %s, %d cores, %s, %s. The machine is shared: the 1-minute load average "+
		"before → after each step is in the tables' notes. Raw outputs: `%s/`.\n",
		orUnknown(m.Date), orUnknown(m.CPU), m.Cores, orUnknown(m.Kernel), orUnknown(m.Go), filepath.ToSlash(raw))

	byName := map[string]step{}
	for _, s := range all {
		byName[s.Name] = s
	}

	// Recipes and snapshot: one speed-up per comparison.
	var lines []benchLine
	for _, name := range []string{"recipes", "snapshot"} {
		l, err := parseBenchFile(filepath.Join(raw, byName[name].Raw))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		lines = append(lines, l...)
	}
	var bars []bar
	fmt.Fprint(&w, "\n## Against etcd's own tools\n\n")
	table := &bytes.Buffer{}
	fmt.Fprintln(table, "| figure | reference | speed-up | from | reproduce |")
	fmt.Fprintln(table, "|---|---|--:|---|---|")
	for _, c := range comparisons {
		v, detail, ok := c.speedUp(lines)
		if !ok {
			fmt.Fprintf(table, "| %s | %s | not run | | `%s` |\n", c.Label, c.Reference, c.Command)
			continue
		}
		bars = append(bars, bar{Label: c.Label, Value: v})
		fmt.Fprintf(table, "| %s | %s | %.2f× | %s | `%s` |\n", c.Label, c.Reference, v, detail, c.Command)
	}
	if len(bars) > 0 {
		if err := ratioPlot(bars, filepath.Join(assets, ratiosSVG)); err != nil {
			return "", err
		}
		fmt.Fprintf(&w, "![Speed-up of each primitive against its reference](%s/%s)\n\n", rel, ratiosSVG)
	}
	w.Write(table.Bytes())
	fmt.Fprintf(&w, "\nA speed-up above 1 means ours is faster: reference time / our time, or our throughput / "+
		"the reference's. Load average: recipes %s, snapshot %s.\n", orUnknown(m.Loads["recipes"]), orUnknown(m.Loads["snapshot"]))
	if len(lines) > 0 {
		fmt.Fprint(&w, "\nEvery metric the benchmarks reported:\n\n| benchmark | metrics |\n|---|---|\n")
		for _, l := range lines {
			fmt.Fprintf(&w, "| %s | %s |\n", l.Name, metricsText(l.Metrics))
		}
	}

	// The provider against N.
	fmt.Fprint(&w, "\n## The provider: time against the number of resources\n\n")
	rep, err := readCLIReport(filepath.Join(raw, "cli.json"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(&w, "Not run. Reproduce: `%s`.\n", byName["cli"].Command)
	case err != nil:
		return "", err
	default:
		names := []string{"apply (create)", "plan (refresh)", "plan -refresh=false", "destroy"}
		lines := make([]series, len(names))
		for i, n := range names {
			lines[i].Name = n
		}
		fmt.Fprintln(&w, "| scenario | apply | plan | plan -refresh=false | destroy | provider peak RSS | etcd requests / resource / refresh |")
		fmt.Fprintln(&w, "|---|--:|--:|--:|--:|--:|--:|")
		for _, r := range rep.Results {
			fmt.Fprintf(&w, "| %s | %.2f s | %.2f s | %.2f s | %.2f s | %.0f MiB | %.2f |\n",
				r.Name, r.Apply, r.Plan, r.PlanNoRefresh, r.Destroy, r.PeakRSSMiB, r.Requests)
			if !strings.Contains(r.Name, "etcd_key_prefix") {
				for i, v := range []float64{r.Apply, r.Plan, r.PlanNoRefresh, r.Destroy} {
					lines[i].Points = append(lines[i].Points, plotter.XY{X: float64(r.Resources), Y: v})
				}
			}
		}
		for i := range lines {
			sort.Slice(lines[i].Points, func(a, b int) bool { return lines[i].Points[a].X < lines[i].Points[b].X })
		}
		if len(lines[0].Points) > 0 {
			if err := timePlot(fmt.Sprintf("N × etcd_key, %s, %d-member cluster", rep.CLI, rep.Members), lines, filepath.Join(assets, timeSVG)); err != nil {
				return "", err
			}
			fmt.Fprintf(&w, "\n![Command time against the number of etcd_key resources](%s/%s)\n", rel, timeSVG)
		}
		fmt.Fprintf(&w, "\n%s against a %d-member in-process cluster; plans are the median of %d runs. "+
			"Load average: %s. Reproduce: `%s`.\n", rep.CLI, rep.Members, rep.Repeat, orUnknown(m.Loads["cli"]), byName["cli"].Command)
	}

	// Bootstrap.
	fmt.Fprint(&w, "\n## etcd_cluster bootstrap\n\n")
	boot, err := parseBenchFile(filepath.Join(raw, byName["bootstrap"].Raw))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if l, ok := find(boot, "BenchmarkBootstrap"); ok {
		fmt.Fprintf(&w, "3 nodes with TLS over SSH, from nothing on the hosts to every member healthy: **%.2f s** "+
			"(mean of %d). Load average: %s. Reproduce: `%s`.\n", l.Metrics["s/bootstrap"], l.N, orUnknown(m.Loads["bootstrap"]), byName["bootstrap"].Command)
	} else {
		fmt.Fprintf(&w, "Not run. Reproduce: `%s`.\n", byName["bootstrap"].Command)
	}

	fmt.Fprint(&w, "\n## Reproduce\n\n`make bench-report` runs every step below, then `make docs` renders this page. Each step alone:\n\n")
	for _, s := range all {
		fmt.Fprintf(&w, "- %s: `%s`", s.What, s.Command)
		if e := m.Elapsed[s.Name]; e != "" {
			fmt.Fprintf(&w, " (took %s)", e)
		}
		fmt.Fprintln(&w)
	}
	return w.String(), nil
}

func metricsText(ms map[string]float64) string {
	units := make([]string, 0, len(ms))
	for u := range ms {
		units = append(units, u)
	}
	sort.Strings(units)
	parts := make([]string, 0, len(units))
	for _, u := range units {
		parts = append(parts, fmt.Sprintf("%.4g %s", ms[u], u))
	}
	return strings.Join(parts, ", ")
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
