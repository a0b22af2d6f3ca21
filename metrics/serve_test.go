package metrics_test

import (
	"context"
	"io"
	"net/http"
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

func TestServe(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	p := orders("served", 10, pipeline.Observe(m))
	m.Watch(p)
	require.NoError(t, p.Run(t.Context()))

	s, err := metrics.Listen("127.0.0.1:0", reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()

	code, body := get(t, "http://"+s.Addr()+metrics.Path)
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, `flow_data_total{flow_name="served"} 10`)
	assert.Contains(t, body, "# TYPE func_run_duration histogram")
	code, _ = get(t, "http://"+s.Addr()+"/")
	assert.Equal(t, http.StatusNotFound, code)

	cancel()
	require.NoError(t, <-done)
	_, err = http.Get("http://" + s.Addr() + metrics.Path)
	assert.Error(t, err, "still serving after ctx ended")
}

func TestServeFunc(t *testing.T) {
	// The address is taken: Serve fails at once.
	s, err := metrics.Listen("127.0.0.1:0", prometheus.NewRegistry())
	require.NoError(t, err)
	defer s.Close()
	err = metrics.Serve(t.Context(), s.Addr(), prometheus.NewRegistry())
	require.Error(t, err)

	// A free address: Serve serves until ctx ends.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.NoError(t, metrics.Serve(ctx, "127.0.0.1:0", prometheus.NewRegistry()))
}

func TestServerClose(t *testing.T) {
	s, err := metrics.Listen("127.0.0.1:0", prometheus.NewRegistry())
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(t.Context()) }()
	code, _ := get(t, "http://"+s.Addr()+metrics.Path)
	assert.Equal(t, http.StatusOK, code)
	require.NoError(t, s.Close())
	require.NoError(t, <-done)

	// Closing a server that never served frees its address.
	s2, err := metrics.Listen("127.0.0.1:0", prometheus.NewRegistry())
	require.NoError(t, err)
	addr := s2.Addr()
	require.NoError(t, s2.Close())
	s3, err := metrics.Listen(addr, prometheus.NewRegistry())
	require.NoError(t, err)
	require.NoError(t, s3.Close())

	_, err = metrics.Listen("127.0.0.1:0", nil)
	assert.Error(t, err)
}
