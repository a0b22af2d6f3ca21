package metrics_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kisflow/kisflow/metrics"
	"github.com/kisflow/kisflow/pipeline"
)

// BenchmarkBatch is the observer's cost per batch, from parallel workers.
func BenchmarkBatch(b *testing.B) {
	m, err := metrics.New(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	m.Batch("flow", "stage", 1, time.Millisecond)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Batch("flow", "stage", 256, 300*time.Microsecond)
		}
	})
}

// BenchmarkScrape is the cost of one scrape of a registry watching ten
// pipelines of six nodes.
func BenchmarkScrape(b *testing.B) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg)
	if err != nil {
		b.Fatal(err)
	}
	for range 10 {
		p := orders("orders", 100, pipeline.Observe(m))
		m.Watch(p)
		if err := p.Run(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
