package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// gathered indexes gathered metric families by name.
type gathered map[string]*dto.MetricFamily

func gather(t *testing.T, g prometheus.Gatherer) gathered {
	t.Helper()
	mfs, err := g.Gather()
	require.NoError(t, err)
	out := gathered{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// find returns the metric of family name whose labels include want, and
// fails when there is not exactly one.
func (g gathered) find(t *testing.T, name string, want ...string) *dto.Metric {
	t.Helper()
	mf, ok := g[name]
	require.True(t, ok, "no family %s", name)
	var hits []*dto.Metric
	for _, m := range mf.GetMetric() {
		if hasLabels(m, want) {
			hits = append(hits, m)
		}
	}
	require.Len(t, hits, 1, "%s%v in:\n%s", name, want, g.dump(name))
	return hits[0]
}

// value returns the value of a counter or gauge.
func (g gathered) value(t *testing.T, name string, want ...string) float64 {
	t.Helper()
	m := g.find(t, name, want...)
	switch {
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	t.Fatalf("%s%v is not a counter or gauge", name, want)
	return 0
}

func (g gathered) dump(name string) string {
	var lines []string
	for _, m := range g[name].GetMetric() {
		lines = append(lines, fmt.Sprint(m.GetLabel()))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// hasLabels reports whether m has every name=value pair of kv.
func hasLabels(m *dto.Metric, kv []string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if have[kv[i]] != kv[i+1] {
			return false
		}
	}
	return true
}

var errTen = errors.New("multiple of 10")

// orders builds a pipeline named name over n ints: a Verify keeping even
// ones, a Map with two workers, and an Expand that fails every multiple of
// 10 under the Skip policy.
func orders(name string, n int, opts ...pipeline.Option) *pipeline.Pipeline {
	rows := make([]int, n)
	for i := range rows {
		rows[i] = i
	}
	p := pipeline.New(name, opts...)
	s := pipeline.FromSlice(p, "ints", rows)
	s = pipeline.Then(s, stage.Verify("even", func(_ context.Context, v int) (bool, error) { return v%2 == 0, nil }))
	s = pipeline.Then(s, stage.Map("double", func(_ context.Context, v int) (int, error) { return 2 * v, nil }, stage.Concurrency(2)))
	pipeline.To(s, stage.Sink("store", func(_ context.Context, v int) error {
		if v%20 == 0 { // v is twice a multiple of 10
			return errTen
		}
		return nil
	}, stage.OnError(stage.Skip)))
	return p
}

// stageFailing is a sink that fails the flow on its first row.
func stageFailing(name string) *stage.Stage[int, struct{}] {
	return stage.Sink(name, func(context.Context, int) error { return errTen })
}
