package flow_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/flow"
	"github.com/kisflow/kisflow/metrics"
)

// Metrics are passed in; the application serves them where the global
// configuration says.
func TestMetricsPassedIn(t *testing.T) {
	promReg := prometheus.NewRegistry()
	m, err := metrics.New(promReg)
	require.NoError(t, err)
	reg := flow.NewRegistry(flow.Metrics(m))
	studentFuncs(t, reg, &lines{})
	require.NoError(t, reg.LoadFS(quickStartYAML, "conf"))

	srv := httptest.NewServer(metrics.Handler(promReg))
	defer srv.Close()

	f, err := reg.NewFlow("CalStuAvgScore")
	require.NoError(t, err)
	require.NoError(t, f.CommitRow(context.Background(), row101))
	require.NoError(t, f.Run(context.Background()))

	resp, err := http.Get(srv.URL)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	assert.Contains(t, text, `flow_schedule_cnts{flow_name="CalStuAvgScore"} 1`)
	assert.True(t, strings.Contains(text, "func_run_duration"), "KisFlow's metric names are served")
}
