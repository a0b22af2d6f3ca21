package flow

import (
	"github.com/kisflow/kisflow/metrics"
)

// Metrics returns the metrics every flow of the registry reports to (see
// WithMetrics), or nil when there are none.
func (r *Registry) Metrics() *metrics.Metrics {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.metrics
}
