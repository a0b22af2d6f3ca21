package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler returns the handler that serves the metrics of g in Prometheus'
// text format. Mount it on the application's own mux, at "/metrics" for
// KisFlow's route: what KisFlow's global configuration asks for with
// prometheus_listen and prometheus_serve is an http.Server on that
// address with this handler.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
