package main

import (
	"encoding/json"
	"os"
	"time"
)

// jsonResult is one scenario in the -json output, which make bench-report
// (internal/benchreport) reads to draw its plots. Times are in seconds.
type jsonResult struct {
	Name            string  `json:"name"`
	Resources       int     `json:"resources"`
	Keys            int     `json:"keys"`
	Apply           float64 `json:"apply_s"`
	Plan            float64 `json:"plan_s"`
	PlanNoRefresh   float64 `json:"plan_no_refresh_s"`
	Destroy         float64 `json:"destroy_s"`
	PeakRSSMiB      float64 `json:"provider_peak_rss_mib"`
	RequestsPerRead float64 `json:"etcd_requests_per_resource_refresh"`
	ApplyChange     float64 `json:"apply_change_s,omitempty"` // apply of a 1% change (etcd_key_prefix)
	StateBytes      int64   `json:"state_bytes,omitempty"`
}

type jsonReport struct {
	CLI     string       `json:"cli"`
	Members int          `json:"members"`
	Repeat  int          `json:"repeat"`
	Results []jsonResult `json:"results"`
}

func writeJSON(path, cliVersion string, o options, results []result) error {
	rep := jsonReport{CLI: cliVersion, Members: o.members, Repeat: o.repeat}
	for _, r := range results {
		rss := r.peakRSS()
		var change float64
		if r.update != nil {
			change = seconds(r.update.wall)
		}
		rep.Results = append(rep.Results, jsonResult{
			Name:            r.name,
			Resources:       r.n,
			Keys:            r.keys,
			Apply:           seconds(r.create.wall),
			Plan:            seconds(r.plan.wall),
			PlanNoRefresh:   seconds(r.planNoRefresh.wall),
			Destroy:         seconds(r.destroy.wall),
			PeakRSSMiB:      float64(rss) / 1024,
			RequestsPerRead: (total(r.plan.requests) - total(r.planNoRefresh.requests)) / float64(r.n),
			ApplyChange:     change,
			StateBytes:      r.stateBytes,
		})
	}
	data, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

func seconds(d time.Duration) float64 { return d.Seconds() }
