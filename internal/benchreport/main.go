// Command benchreport runs the project's benchmarks and writes the
// performance guide (templates/guides/performance.md.tmpl, rendered into
// docs/guides/performance.md by make docs) with SVG plots drawn by
// gonum/plot into assets/performance/. `make bench-report` runs it.
//
// Each benchmark's raw output is kept beside the plots (raw/), so the page
// can be drawn again without measuring again (-render-only), and anyone can
// check a figure against the output it came from.
//
//	go run ./internal/benchreport                       # measure everything, write the page
//	go run ./internal/benchreport -steps recipes,cli    # measure some, keep the rest's raw output
//	go run ./internal/benchreport -render-only          # redraw from raw/
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

// A step is one benchmark run whose output the page uses.
type step struct {
	Name    string
	Command string // shell command, run from the module root
	Raw     string // file in the raw directory that keeps its output
	What    string
}

func steps(sizes, jsonPath string) []step {
	return []step{
		{Name: "recipes", Command: "make bench-recipes", Raw: "recipes.txt",
			What: "recipes against etcd's concurrency and recipe packages"},
		{Name: "snapshot", Command: "make bench-snapshot", Raw: "snapshot.txt",
			What: "`snapshot save` against Debian's etcdctl"},
		{Name: "cli", Command: fmt.Sprintf("make bench BENCH_ARGS='-n %s -prefix-keys 1000 -repeat 3 -json %s'", sizes, jsonPath), Raw: "cli.txt",
			What: "the provider driven by OpenTofu"},
		{Name: "bootstrap", Command: "go test ./internal/cluster -run '^$' -bench BenchmarkBootstrap -benchtime 3x", Raw: "bootstrap.txt",
			What: "etcd_cluster bootstrap of 3 TLS nodes over SSH"},
	}
}

// machine describes where and when the figures were measured.
type machine struct {
	Date    string            `json:"date"`
	CPU     string            `json:"cpu"`
	Cores   int               `json:"cores"`
	Kernel  string            `json:"kernel"`
	Go      string            `json:"go"`
	Loads   map[string]string `json:"load_average"` // per step: before → after
	Elapsed map[string]string `json:"elapsed"`      // per step
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		only       = flag.String("steps", "recipes,snapshot,cli,bootstrap", "which benchmarks to run, comma-separated; the others' earlier raw output is used")
		sizes      = flag.String("sizes", "100,1000,10000", "numbers of etcd_key resources for the CLI benchmark")
		assets     = flag.String("assets", "assets/performance", "directory for the SVG plots and raw/ outputs")
		page       = flag.String("page", "templates/guides/performance.md.tmpl", "the guide template to write")
		renderOnly = flag.Bool("render-only", false, "run nothing: redraw the plots and the page from raw/")
	)
	flag.Parse()
	raw := filepath.Join(*assets, "raw")
	if err := os.MkdirAll(raw, 0o755); err != nil {
		return err
	}
	absJSON, err := filepath.Abs(filepath.Join(raw, "cli.json"))
	if err != nil {
		return err
	}
	all := steps(*sizes, absJSON)
	m := readMachine(raw)
	if !*renderOnly {
		m = measureMachine(m)
		for _, s := range all {
			if !slices.Contains(strings.Split(*only, ","), s.Name) {
				continue
			}
			if err := runStep(s, raw, &m); err != nil {
				return err
			}
		}
		data, err := json.MarshalIndent(m, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(raw, "machine.json"), append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	// The page shows the commands with the JSON path relative to the root.
	all = steps(*sizes, filepath.Join(raw, "cli.json"))
	text, err := render(all, raw, *assets, filepath.Dir(*page), m)
	if err != nil {
		return err
	}
	if err := os.WriteFile(*page, []byte(text), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "benchreport: wrote %s and the plots in %s; run make docs to render docs/guides/performance.md\n", *page, *assets)
	return nil
}

// runStep runs one benchmark, teeing its output into the raw file.
func runStep(s step, raw string, m *machine) error {
	fmt.Fprintf(os.Stderr, "benchreport: %s: %s\n", s.Name, s.Command)
	var out bytes.Buffer
	cmd := exec.Command("bash", "-c", s.Command)
	cmd.Stdout = io.MultiWriter(&out, os.Stderr)
	cmd.Stderr = os.Stderr
	before := loadAverage()
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s (%s): %w", s.Name, s.Command, err)
	}
	m.Elapsed[s.Name] = time.Since(start).Round(time.Second).String()
	m.Loads[s.Name] = before + " → " + loadAverage()
	return os.WriteFile(filepath.Join(raw, s.Raw), out.Bytes(), 0o644)
}

func readMachine(raw string) machine {
	m := machine{Loads: map[string]string{}, Elapsed: map[string]string{}}
	if data, err := os.ReadFile(filepath.Join(raw, "machine.json")); err == nil {
		_ = json.Unmarshal(data, &m)
	}
	if m.Loads == nil {
		m.Loads = map[string]string{}
	}
	if m.Elapsed == nil {
		m.Elapsed = map[string]string{}
	}
	return m
}

func measureMachine(m machine) machine {
	m.Date = time.Now().UTC().Format("2006-01-02")
	m.Cores = runtime.NumCPU()
	m.Go = runtime.Version()
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	return m
}

// loadAverage is the 1-minute load average, as /proc/loadavg gives it.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(data))[0]
}
