package main

import (
	"encoding/xml"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sampleBench = `goos: linux
goarch: amd64
BenchmarkMutexContended/etcd-2         	     200	   5000000 ns/op	         8.000 ms/grant	         7.500 p50-ms
BenchmarkMutexContended/recipes-2      	     200	   2500000 ns/op	         2.000 ms/grant	         1.900 p50-ms
    bench_test.go:89: MutexContended: etcd 8 ms, recipes 2 ms
BenchmarkMutexUncontendedInterleaved-2 	     200	    900000 ns/op	         0.8000 x-etcd	         1.000 etcd-p50-ms	         0.8000 recipes-p50-ms
BenchmarkQueue/recipes-at-most-once-2  	    5000	    100000 ns/op	      1500 items/s	         6.000 x-etcd-recipe
BenchmarkQueue/recipes-at-most-once-2  	    5000	    100000 ns/op	      1400 items/s	         5.500 x-etcd-recipe
BenchmarkBroken-2 	 abc	 1 ns/op
PASS
ok  	github.com/terraform-etcd/terraform-provider-etcd/recipes	12.3s
`

func TestParseBench(t *testing.T) {
	lines, err := parseBench(strings.NewReader(sampleBench))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 4 {
		t.Fatalf("got %d result lines, want 4: %+v", len(lines), lines)
	}
	l, ok := find(lines, "BenchmarkMutexContended/recipes")
	if !ok || l.N != 200 || l.Metrics["ms/grant"] != 2 {
		t.Errorf("recipes line = %+v, %v", l, ok)
	}
	// -count: the last run wins.
	if q, _ := find(lines, "BenchmarkQueue/recipes-at-most-once"); q.Metrics["x-etcd-recipe"] != 5.5 {
		t.Errorf("queue line = %+v, want the last run's 5.5", q)
	}
}

func TestSpeedUps(t *testing.T) {
	lines, err := parseBench(strings.NewReader(sampleBench))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"Mutex hand-off, 4 sessions":     4,    // 8 ms / 2 ms
		"Mutex lock+unlock, uncontended": 1.25, // 1 / 0.8 (a time ratio)
		"Queue, at-most-once":            5.5,  // a throughput ratio
	}
	seen := 0
	for _, c := range comparisons {
		v, _, ok := c.speedUp(lines)
		w, expected := want[c.Label]
		if ok != expected {
			t.Errorf("%s: ran = %v, want %v", c.Label, ok, expected)
			continue
		}
		if ok {
			seen++
			if math.Abs(v-w) > 1e-9 {
				t.Errorf("%s: speed-up %v, want %v", c.Label, v, w)
			}
		}
	}
	if seen != len(want) {
		t.Errorf("%d comparisons computed, want %d", seen, len(want))
	}
}

func TestRenderWritesPageAndPlots(t *testing.T) {
	dir := t.TempDir()
	assets := filepath.Join(dir, "assets", "performance")
	raw := filepath.Join(assets, "raw")
	pageDir := filepath.Join(dir, "templates", "guides")
	for _, d := range []string{raw, pageDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(raw, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("recipes.txt", sampleBench)
	write("cli.json", `{"cli":"OpenTofu v1.12.6","members":3,"repeat":3,"results":[
{"name":"100 × etcd_key","resources":100,"keys":100,"apply_s":1.5,"plan_s":1.2,"plan_no_refresh_s":1.0,"destroy_s":1.4,"provider_peak_rss_mib":80,"etcd_requests_per_resource_refresh":1},
{"name":"1000 × etcd_key","resources":1000,"keys":1000,"apply_s":6,"plan_s":4,"plan_no_refresh_s":3,"destroy_s":5,"provider_peak_rss_mib":120,"etcd_requests_per_resource_refresh":0.01},
{"name":"1 × etcd_key_prefix, 1000 keys","resources":1,"keys":1000,"apply_s":1,"plan_s":1,"plan_no_refresh_s":1,"destroy_s":1,"provider_peak_rss_mib":60,"etcd_requests_per_resource_refresh":2}]}`)
	write("bootstrap.txt", "BenchmarkBootstrap-2 \t 3 \t 1 ns/op \t 3.600 s/bootstrap\n")
	m := machine{Date: "2026-12-06", CPU: "test CPU", Cores: 2, Loads: map[string]string{"cli": "2.00 → 3.00"}, Elapsed: map[string]string{}}

	text, err := render(steps("100,1000", filepath.Join(raw, "cli.json")), raw, assets, pageDir, m)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`page_title: "Performance"`,
		"](../../assets/performance/ratios.svg)",
		"](../../assets/performance/provider-time.svg)",
		"| Mutex hand-off, 4 sessions | concurrency.Mutex | 4.00× |",
		"| Election failover (resign) | concurrency.Election | not run |",
		"| 1000 × etcd_key | 6.00 s | 4.00 s | 3.00 s | 5.00 s | 120 MiB | 0.01 |",
		"**3.60 s**",
		"Load average: 2.00 → 3.00",
		"Measured on 2026-12-06: test CPU, 2 cores",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("page lacks %q:\n%s", want, text)
		}
	}
	for _, name := range []string{ratiosSVG, timeSVG} {
		data, err := os.ReadFile(filepath.Join(assets, name))
		if err != nil {
			t.Fatal(err)
		}
		var root struct {
			XMLName xml.Name
		}
		if err := xml.Unmarshal(data, &root); err != nil || root.XMLName.Local != "svg" {
			t.Errorf("%s is not an SVG document: root %q, %v", name, root.XMLName.Local, err)
		}
	}
}
