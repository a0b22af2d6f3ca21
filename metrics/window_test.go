package metrics_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/metrics"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/window"
)

// TestKeyedNodeGauges: a window operator's late rows, held rows and state
// reach the stage metrics.
func TestKeyedNodeGauges(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	p := pipeline.New("win", pipeline.BatchSize(1))
	src := pipeline.FromSlice(p, "ints", []int{1000, 2000, 3000, 5, 4000})
	out := window.Fold(src, "count", func(int) int { return 0 }, window.Tumbling(time.Second),
		window.Agg[int, int]{Add: func(n, _ int) int { return n + 1 }},
		window.EventTime(func(ms int) time.Time { return time.UnixMilli(int64(ms)) }, 0))
	pipeline.Discard(out.Results(), "sink")
	m.Watch(p)
	require.NoError(t, p.Run(t.Context()))
	g := gather(t, reg)
	l := []string{"flow", "win", "stage", "count", "kind", "Keyed"}
	assert.Equal(t, 1.0, g.value(t, "kisflow_stage_rows_late_total", l...))
	assert.Equal(t, 0.0, g.value(t, "kisflow_stage_rows_held", l...))
	assert.Equal(t, 0.0, g.value(t, "kisflow_stage_state_entries", l...))
}
