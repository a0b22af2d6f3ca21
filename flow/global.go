package flow

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kisflow/kisflow/metrics"
)

// Metrics returns the metrics every flow of the registry reports to, or
// nil when there are none.
func (r *Registry) Metrics() *metrics.Metrics {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.metrics
}

// StartMetrics applies the Prometheus settings of the global configuration
// (kistype: global). With prometheus_enable, flows built from now on report
// to metrics registered on reg (a fresh registry when reg is nil). With
// prometheus_listen as well, it listens on prometheus_serve and returns a
// *metrics.Server, which the caller runs with Serve(ctx) and which stops
// when ctx ends; otherwise the server is nil and the metrics can be mounted
// on the application's own mux with MetricsHandler. Without a global
// configuration, or with prometheus_enable false, it does nothing.
func (r *Registry) StartMetrics(reg *prometheus.Registry) (*metrics.Server, error) {
	g := r.Config().Global
	if g == nil || !g.PrometheusEnable {
		return nil, nil
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := metrics.New(reg)
	if err != nil {
		return nil, fmt.Errorf("flow: metrics: %w", err)
	}
	r.mu.Lock()
	r.metrics, r.gatherer = m, reg
	r.mu.Unlock()
	if !g.PrometheusListen {
		return nil, nil
	}
	srv, err := metrics.Listen(g.PrometheusServe, reg)
	if err != nil {
		return nil, fmt.Errorf("flow: metrics: prometheus_serve %q: %w", g.PrometheusServe, err)
	}
	return srv, nil
}

// MetricsHandler serves the metrics StartMetrics set up, or answers 404
// when there are none.
func (r *Registry) MetricsHandler() http.Handler {
	r.mu.RLock()
	g := r.gatherer
	r.mu.RUnlock()
	if g == nil {
		return http.NotFoundHandler()
	}
	return metrics.Handler(g)
}
