package tracing_test

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
	"github.com/kisflow/kisflow/tracing"
)

// rec is the small row of the benchmark, as in the root module's W1.
type rec struct{ A, B, C, Sum int64 }

const benchRows = 100_000

// BenchmarkTrace runs the W1 workload of the root module's benchmarks
// (a slice source, three tiny stages, a sink, 100,000 rows) untraced
// (impl=none), traced with 1% of traces sampled (impl=sampled-1pct,
// ParentBased(TraceIDRatioBased(0.01)): each batch of the source is an
// input, the root of a trace, sampled or not), the same with Run's ctx
// carrying a span of its own (impl=sampled-1pct-run: the run is one
// trace, sampled or not as a whole) and with every trace sampled
// (impl=sampled-all), spans going to a batching processor in front of an
// exporter that drops them:
//
//	go test -run '^$' -bench Trace -count 5 ./tracing/
func BenchmarkTrace(b *testing.B) {
	recs := make([]rec, benchRows)
	var wantN, wantSum int64
	for i := range recs {
		r := rec{A: int64(i), B: int64(i % 7), C: int64(i % 13)}
		recs[i] = r
		if s := 3 * (r.A + r.B + r.C); s%2 == 0 {
			wantN++
			wantSum += s
		}
	}
	run := func(b *testing.B, start func() (context.Context, func()), opts ...pipeline.Option) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, done := start()
			var n, sum int64
			p := pipeline.New("W1", opts...)
			s := pipeline.FromSlice(p, "recs", recs)
			s = pipeline.Then(s, stage.Map("sum", func(_ context.Context, r rec) (rec, error) { r.Sum = r.A + r.B + r.C; return r, nil }))
			s = pipeline.Then(s, stage.Map("multiply", func(_ context.Context, r rec) (rec, error) { r.Sum *= 3; return r, nil }))
			s = pipeline.Then(s, stage.Verify("even", func(_ context.Context, r rec) (bool, error) { return r.Sum%2 == 0, nil }))
			pipeline.To(s, stage.Sink("collect", func(_ context.Context, r rec) error { n++; sum += r.Sum; return nil }))
			if err := p.Run(ctx); err != nil {
				b.Fatal(err)
			}
			done()
			if n != wantN || sum != wantSum {
				b.Fatalf("got %d rows sum %d, want %d rows sum %d", n, sum, wantN, wantSum)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchRows, "ns/row")
	}
	plain := func() (context.Context, func()) { return context.Background(), func() {} }
	traced := func(b *testing.B, sampler sdktrace.Sampler, runSpan bool) {
		tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(sampler), sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		defer func() { _ = tp.Shutdown(context.Background()) }()
		start := plain
		if runSpan {
			start = func() (context.Context, func()) {
				ctx, span := tp.Tracer("bench").Start(context.Background(), "run")
				return ctx, func() { span.End() }
			}
		}
		run(b, start, pipeline.Trace(tracing.New(tracing.TracerProvider(tp))))
	}
	onePct := sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))
	b.Run("impl=none", func(b *testing.B) { run(b, plain) })
	b.Run("impl=sampled-1pct", func(b *testing.B) { traced(b, onePct, false) })
	b.Run("impl=sampled-1pct-run", func(b *testing.B) { traced(b, onePct, true) })
	b.Run("impl=sampled-all", func(b *testing.B) { traced(b, sdktrace.AlwaysSample(), false) })
}
