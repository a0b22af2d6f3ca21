package metrics_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/metrics"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

func TestRunCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	p := orders("orders", 1000, pipeline.Observe(m), pipeline.BatchSize(64))
	m.Watch(p)
	require.NoError(t, p.Run(t.Context()))
	st := p.Stats()
	g := gather(t, reg)

	// KisFlow's names.
	assert.Equal(t, 1000.0, g.value(t, "kisflow_data_total"))
	assert.Equal(t, 1000.0, g.value(t, "flow_data_total", "flow_name", "orders"))
	assert.Equal(t, 1.0, g.value(t, "flow_schedule_cnts", "flow_name", "orders"))
	assert.Equal(t, uint64(1), g.find(t, "flow_run_duration", "flow_name", "orders").GetHistogram().GetSampleCount())
	assert.Equal(t, 0.0, g.value(t, "kisflow_flow_runs_failed_total", "flow", "orders"))

	// Rows per stage: 1000 in, 500 odd ones filtered, the 100 multiples of
	// 10 failed.
	want := map[string][5]float64{ // in, out, filtered, failed, delivered
		"ints":   {1000, 1000, 0, 0, 1000},
		"even":   {1000, 500, 500, 0, 500},
		"double": {500, 500, 0, 0, 500},
		"store":  {500, 0, 0, 100, 400},
	}
	for name, w := range want {
		l := []string{"flow", "orders", "stage", name}
		assert.Equal(t, w[0], g.value(t, "kisflow_stage_rows_in_total", l...), name)
		assert.Equal(t, w[1], g.value(t, "kisflow_stage_rows_out_total", l...), name)
		assert.Equal(t, w[2], g.value(t, "kisflow_stage_rows_filtered_total", l...), name)
		assert.Equal(t, w[3], g.value(t, "kisflow_stage_rows_failed_total", l...), name)
		assert.Equal(t, w[4], g.value(t, "kisflow_stage_rows_delivered_total", l...), name)
		assert.Equal(t, 0.0, g.value(t, "kisflow_stage_rows_abandoned_total", l...), name)
	}
	assert.Equal(t, 2.0, g.value(t, "kisflow_stage_workers", "stage", "double", "kind", "Calculate"))
	assert.Equal(t, 0.0, g.value(t, "kisflow_stage_running", "stage", "double"))

	// One call and one duration per batch, labelled with the stage kind.
	for _, n := range st.Nodes {
		if n.Kind == "Source" {
			continue
		}
		l := []string{"flow_name", "orders", "func_name", n.Name, "func_mode", string(n.Kind)}
		assert.Equal(t, float64(n.Batches), g.value(t, "func_schedule_cnts", l...), n.Name)
		assert.Equal(t, uint64(n.Batches), g.find(t, "func_run_duration", l...).GetHistogram().GetSampleCount(), n.Name)
		assert.Equal(t, float64(n.Batches), g.value(t, "kisflow_stage_batches_total", "stage", n.Name), n.Name)
		assert.Positive(t, n.Batches, n.Name)
	}

	// Flow outcomes and state.
	for outcome, v := range map[string]float64{"delivered": 400, "filtered": 500, "dropped": 0, "failed": 100} {
		assert.Equal(t, v, g.value(t, "kisflow_flow_rows_total", "flow", "orders", "outcome", outcome), outcome)
	}
	assert.Equal(t, 1.0, g.value(t, "kisflow_flow_pipelines", "flow", "orders", "state", "done"))
	assert.Equal(t, 0.0, g.value(t, "kisflow_flow_pipelines", "flow", "orders", "state", "running"))

	// Edges.
	require.Len(t, st.Edges, 3)
	for _, e := range st.Edges {
		l := []string{"flow", "orders", "edge", e.Name}
		assert.Equal(t, float64(e.Sent), g.value(t, "kisflow_edge_rows_sent_total", l...), e.Name)
		assert.Equal(t, 0.0, g.value(t, "kisflow_edge_queue_depth", l...), e.Name)
		assert.Equal(t, float64(e.Capacity), g.value(t, "kisflow_edge_queue_capacity", l...), e.Name)
		assert.Equal(t, 0.0, g.value(t, "kisflow_edge_rows_dropped_total", l...), e.Name)
	}
}

func TestUnwatchKeepsCounters(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	p1 := orders("orders", 100, pipeline.Observe(m))
	p2 := orders("orders", 200, pipeline.Observe(m))
	m.Watch(p1)
	m.Watch(p2)
	m.Watch(p1) // no effect
	require.NoError(t, p1.Run(t.Context()))
	require.NoError(t, p2.Run(t.Context()))

	check := func(done float64) {
		t.Helper()
		g := gather(t, reg)
		assert.Equal(t, 300.0, g.value(t, "kisflow_data_total"))
		assert.Equal(t, 300.0, g.value(t, "flow_data_total", "flow_name", "orders"))
		assert.Equal(t, 150.0, g.value(t, "kisflow_stage_rows_in_total", "stage", "double"))
		assert.Equal(t, 2.0, g.value(t, "flow_schedule_cnts", "flow_name", "orders"))
		assert.Equal(t, done, g.value(t, "kisflow_flow_pipelines", "flow", "orders", "state", "done"))
		assert.Equal(t, 2*done, g.value(t, "kisflow_stage_workers", "stage", "double"))
	}
	check(2)
	m.Unwatch(p1)
	check(1)
	m.Unwatch(p2)
	m.Unwatch(p2) // no effect
	check(0)
}

func TestFailedRun(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	p := pipeline.New("broken", pipeline.Observe(m))
	s := pipeline.FromSlice(p, "ints", []int{1, 2, 3})
	pipeline.To(s, stageFailing("explode"))
	m.Watch(p)
	require.Error(t, p.Run(t.Context()))
	g := gather(t, reg)
	assert.Equal(t, 1.0, g.value(t, "kisflow_flow_runs_failed_total", "flow", "broken"))
	assert.Equal(t, 1.0, g.value(t, "kisflow_flow_pipelines", "flow", "broken", "state", "failed"))
	assert.Equal(t, 1.0, g.value(t, "kisflow_stage_rows_failed_total", "stage", "explode"))
}

func TestNewTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := metrics.New(reg)
	require.NoError(t, err)
	_, err = metrics.New(reg)
	require.Error(t, err)
	var are prometheus.AlreadyRegisteredError
	assert.ErrorAs(t, err, &are)
	_, err = reg.Gather() // the failed New left nothing half registered
	require.NoError(t, err)

	_, err = metrics.New(nil)
	require.Error(t, err)
}

func TestRuntimeMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := metrics.New(reg, metrics.RuntimeMetrics())
	require.NoError(t, err)
	g := gather(t, reg)
	assert.Contains(t, g, "go_goroutines")
}

func TestBuckets(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, metrics.FuncBuckets(1, 2), metrics.FlowBuckets(10))
	require.NoError(t, err)
	m.Batch("f", "s", 10, 1500*time.Microsecond)
	m.Run("f", 5*time.Millisecond, nil)
	g := gather(t, reg)
	h := g.find(t, "func_run_duration", "func_name", "s").GetHistogram()
	require.Len(t, h.GetBucket(), 2)
	assert.Equal(t, uint64(0), h.GetBucket()[0].GetCumulativeCount())
	assert.Equal(t, uint64(1), h.GetBucket()[1].GetCumulativeCount())
	assert.InDelta(t, 1.5, h.GetSampleSum(), 1e-9)
	g.find(t, "func_schedule_cnts", "func_name", "s", "func_mode", "") // unknown kind: not watched
	require.Len(t, g.find(t, "flow_run_duration", "flow_name", "f").GetHistogram().GetBucket(), 1)

	_, err = metrics.New(prometheus.NewRegistry(), metrics.FuncBuckets())
	assert.Error(t, err)
	_, err = metrics.New(prometheus.NewRegistry(), metrics.FlowBuckets(2, 1))
	assert.Error(t, err)
}

func TestBatchDoesNotAllocate(t *testing.T) {
	m, err := metrics.New(prometheus.NewRegistry())
	require.NoError(t, err)
	flow, stage := "flow", "stage"
	m.Batch(flow, stage, 1, time.Millisecond)
	allocs := testing.AllocsPerRun(1000, func() { m.Batch(flow, stage, 256, time.Millisecond) })
	assert.Zero(t, allocs)
}

// kisflow_data_total counts the rows the sources took in: the rows they
// passed on plus input they refused as bad, not rows made inside the flow.
// Its help must say so, not "rows emitted".
func TestDataTotalCountsWhatItsHelpSays(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	require.NoError(t, err)
	p := pipeline.New("commits", pipeline.Observe(m))
	in, s := pipeline.NewInput[int](p, "input")
	twice := pipeline.Then(s, stage.FlatMap("twice", func(_ context.Context, v int, emit func(int)) error {
		emit(v)
		emit(v)
		return nil
	}))
	pipeline.Discard(twice, "end")
	m.Watch(p)
	require.NoError(t, p.Start(t.Context()))
	require.NoError(t, in.Submit(t.Context(), 1))
	in.Fail(errors.New("bad row")) // refused: taken in and failed, never passed on
	p.Stop()
	require.NoError(t, p.Wait())
	st := p.Stats()
	require.EqualValues(t, 1, st.Created, "twice made one row")
	g := gather(t, reg)
	assert.Equal(t, 2.0, g.value(t, "kisflow_data_total"))
	assert.Equal(t, 2.0, g.value(t, "flow_data_total", "flow_name", "commits"))
	for _, name := range []string{"kisflow_data_total", "flow_data_total"} {
		help := g[name].GetHelp()
		assert.NotContains(t, help, "Rows emitted", name)
		assert.Contains(t, help, "refused as bad", name)
		assert.Contains(t, help, "made inside", name)
	}
}
