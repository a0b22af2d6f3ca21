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

	"github.com/kisflow/kisflow/config"
)

func TestGlobalConfigStartsMetrics(t *testing.T) {
	reg, _, _ := yamlQuickStart(t)
	srv, err := reg.StartMetrics(nil)
	require.NoError(t, err)
	assert.Nil(t, srv, "no global configuration: nothing to start")
	assert.Nil(t, reg.Metrics())

	require.NoError(t, reg.AddConfig(&config.Global{PrometheusEnable: true, PrometheusListen: true, PrometheusServe: "127.0.0.1:0"}))
	srv, err = reg.StartMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	require.NotNil(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()

	f, err := reg.NewFlow("CalStuAvgScore")
	require.NoError(t, err)
	require.NoError(t, f.CommitRow(row101))
	require.NoError(t, f.Run(context.Background()))

	resp, err := http.Get("http://" + srv.Addr() + "/metrics")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	assert.Contains(t, text, `flow_schedule_cnts{flow_name="CalStuAvgScore"} 1`)
	assert.True(t, strings.Contains(text, "func_run_duration"), "KisFlow's metric names are served")
	cancel()
	require.NoError(t, <-done)
}
