package testserver

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// HandledRequests reads the etcd members' server-side request counters
// (grpc_server_handled_total, every status code), keyed "Service/Method",
// e.g. "Auth/Authenticate". The counters live in the process-wide
// Prometheus registry, so they add up every cluster of the process.
func HandledRequests() (map[string]float64, error) {
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, f := range families {
		if f.GetName() != "grpc_server_handled_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			var service, method string
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "grpc_service":
					service = l.GetValue()
				case "grpc_method":
					method = l.GetValue()
				}
			}
			if !strings.HasPrefix(service, "etcdserverpb.") {
				continue
			}
			out[strings.TrimPrefix(service, "etcdserverpb.")+"/"+method] += m.GetCounter().GetValue()
		}
	}
	return out, nil
}
