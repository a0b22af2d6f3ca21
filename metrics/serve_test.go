package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/metrics"
	"github.com/kisflow/kisflow/pipeline"
)

// get fetches url without keeping the connection alive.
func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

func TestHandlerServesKisFlowNames(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	p := orders("served", 10, pipeline.Observe(m))
	m.Watch(p)
	require.NoError(t, p.Run(t.Context()))

	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler(reg))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	code, body := get(t, srv.URL+"/metrics")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `flow_data_total{flow_name="served"} 10`)
	assert.Contains(t, body, "# TYPE func_run_duration histogram")
	code, _ = get(t, srv.URL+"/")
	assert.Equal(t, http.StatusNotFound, code)
}
