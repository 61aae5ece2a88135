package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// benchLine is one result line of `go test -bench` output: the benchmark's
// name (without the -GOMAXPROCS suffix), its iterations and every metric
// it reported, by unit.
type benchLine struct {
	Name    string
	N       int
	Metrics map[string]float64
}

// procsSuffix is the "-2" that go test appends to a benchmark's name when
// GOMAXPROCS is above 1.
var procsSuffix = regexp.MustCompile(`-\d+$`)

// parseBench reads `go test -bench` output and returns its result lines, in
// order. Other lines (logs, PASS, ok) are ignored. A benchmark that ran
// more than once (-count) keeps its last result.
func parseBench(r io.Reader) ([]benchLine, error) {
	var out []benchLine
	index := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		// Name, iterations, then value-unit pairs.
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") || len(fields)%2 != 0 {
			continue
		}
		n, err := strconv.Atoi(fields[1])
		if err != nil {
			continue
		}
		l := benchLine{Name: procsSuffix.ReplaceAllString(fields[0], ""), N: n, Metrics: map[string]float64{}}
		ok := true
		for i := 2; i < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				ok = false
				break
			}
			l.Metrics[fields[i+1]] = v
		}
		if !ok {
			continue
		}
		if i, seen := index[l.Name]; seen {
			out[i] = l
			continue
		}
		index[l.Name] = len(out)
		out = append(out, l)
	}
	return out, sc.Err()
}

func parseBenchFile(path string) ([]benchLine, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseBench(f)
}

// cliReport is what `make bench BENCH_ARGS=-json=FILE` writes
// (internal/bench, json.go).
type cliReport struct {
	CLI     string `json:"cli"`
	Members int    `json:"members"`
	Repeat  int    `json:"repeat"`
	Results []struct {
		Name          string  `json:"name"`
		Resources     int     `json:"resources"`
		Keys          int     `json:"keys"`
		Apply         float64 `json:"apply_s"`
		Plan          float64 `json:"plan_s"`
		PlanNoRefresh float64 `json:"plan_no_refresh_s"`
		Destroy       float64 `json:"destroy_s"`
		PeakRSSMiB    float64 `json:"provider_peak_rss_mib"`
		Requests      float64 `json:"etcd_requests_per_resource_refresh"`
	} `json:"results"`
}

func readCLIReport(path string) (cliReport, error) {
	var rep cliReport
	data, err := os.ReadFile(path)
	if err != nil {
		return rep, err
	}
	if err := json.Unmarshal(data, &rep); err != nil {
		return rep, fmt.Errorf("%s: %w", path, err)
	}
	return rep, nil
}

// find returns the line of the benchmark with that name, if it ran.
func find(lines []benchLine, name string) (benchLine, bool) {
	for _, l := range lines {
		if l.Name == name {
			return l, true
		}
	}
	return benchLine{}, false
}
