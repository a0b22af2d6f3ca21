package bench

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kisflow/kisflow/metrics"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// w1Build builds W1 over recs with opts. The returned function gives the
// count and checksum of the output once the run is over.
func w1Build(recs []Rec, opts ...pipeline.Option) (*pipeline.Pipeline, func() (int64, int64)) {
	return w1BuildStages(recs, nil, opts...)
}

// w1BuildStages is w1Build with st added to every stage's options.
func w1BuildStages(recs []Rec, st []stage.Option, opts ...pipeline.Option) (*pipeline.Pipeline, func() (int64, int64)) {
	var n, sum int64
	p := pipeline.New("W1", opts...)
	s := pipeline.FromSlice(p, "recs", recs)
	s = pipeline.Then(s, stage.Map("sum", sumFields, st...))
	s = pipeline.Then(s, stage.Map("multiply", multiply, st...))
	s = pipeline.Then(s, stage.Verify("even", keepEven, st...))
	pipeline.To(s, stage.Sink("collect", func(_ context.Context, r Rec) error {
		n++
		sum += r.Sum
		return nil
	}, st...))
	return p, func() (int64, int64) { return n, sum }
}

// w1Metrics returns one op of W1 with metrics on, for the run function of
// BenchmarkW1 (the body of a sub-benchmark impl=kisflow-metrics): m is the
// pipeline's observer and watches it during the run, as in a process with
// metrics enabled; ops counts the runs.
func w1Metrics(b *testing.B, ctx context.Context, recs []Rec, m *metrics.Metrics, ops *int64) func() (int64, int64) {
	return func() (int64, int64) {
		p, result := w1Build(recs, pipeline.Observe(m))
		m.Watch(p)
		if err := p.Run(ctx); err != nil {
			b.Fatal(err)
		}
		m.Unwatch(p)
		*ops++
		return result()
	}
}

// checkW1Metrics checks that reg counted ops runs of W1.
func checkW1Metrics(b *testing.B, reg prometheus.Gatherer, ops int64) {
	b.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()] += m.GetCounter().GetValue()
		}
	}
	if got["kisflow_data_total"] != float64(ops*w1Rows) || got["flow_schedule_cnts"] != float64(ops) {
		b.Fatalf("metrics counted %v rows in %v runs, want %d in %d",
			got["kisflow_data_total"], got["flow_schedule_cnts"], ops*w1Rows, ops)
	}
}
