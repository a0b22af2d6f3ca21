package flow_test

import (
	"context"
	"io"
	"net/http"
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
	reg := flow.NewRegistry(flow.WithMetrics(m))
	assert.Same(t, m, reg.Metrics())
	studentFuncs(t, reg, &lines{})
	require.NoError(t, reg.LoadFS(quickStartYAML, "conf"))

	srv, err := metrics.Listen("127.0.0.1:0", promReg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()

	f, err := reg.NewFlow("CalStuAvgScore")
	require.NoError(t, err)
	require.NoError(t, f.CommitRow(context.Background(), row101))
	require.NoError(t, f.Run(context.Background()))

	resp, err := http.Get("http://" + srv.Addr() + metrics.Path)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	assert.Contains(t, text, `flow_schedule_cnts{flow_name="CalStuAvgScore"} 1`)
	assert.True(t, strings.Contains(text, "func_run_duration"), "KisFlow's metric names are served")
	cancel()
	require.NoError(t, <-done)
}
