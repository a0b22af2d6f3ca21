package bench

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kisflow/kisflow/metrics"
	"github.com/kisflow/kisflow/stage"
)

const w1Rows = 100_000

// w1Want is the expected count and checksum of W1's output.
func w1Want(recs []Rec) (n, sum int64) {
	ctx := context.Background()
	for _, r := range recs {
		r, _ = sumFields(ctx, r)
		r, _ = multiply(ctx, r)
		if ok, _ := keepEven(ctx, r); ok {
			n++
			sum += r.Sum
		}
	}
	return n, sum
}

// BenchmarkW1 runs three trivial stages on 100,000 small rows per op.
func BenchmarkW1(b *testing.B) {
	recs := makeRecs(w1Rows)
	wantN, wantSum := w1Want(recs)
	ctx := context.Background()
	run := func(b *testing.B, once func() (int64, int64)) {
		runVerified(b, w1Rows, wantN, wantSum, once)
	}
	b.Run("impl=seq", func(b *testing.B) {
		run(b, func() (n, sum int64) {
			for _, r := range recs {
				r, _ = sumFields(ctx, r)
				r, _ = multiply(ctx, r)
				if ok, _ := keepEven(ctx, r); ok {
					n++
					sum += r.Sum
				}
			}
			return n, sum
		})
	})
	// The floor of any library that takes its stages as functions: the
	// same loop calling the three functions through function values, as a
	// pipeline must, so the compiler cannot inline them.
	b.Run("impl=funcs", func(b *testing.B) {
		f1, f2, f3 := funcValues()
		run(b, func() (n, sum int64) {
			for _, r := range recs {
				r, err := f1(ctx, r)
				if err != nil {
					continue
				}
				if r, err = f2(ctx, r); err != nil {
					continue
				}
				if ok, err := f3(ctx, r); err == nil && ok {
					n++
					sum += r.Sum
				}
			}
			return n, sum
		})
	})
	b.Run("impl=chan", func(b *testing.B) {
		run(b, func() (int64, int64) {
			c := chanStage(chanSource(recs), 1, mapped(sumFields))
			c = chanStage(c, 1, mapped(multiply))
			return chanCollect(chanStage(c, 1, kept(keepEven)))
		})
	})
	b.Run("impl=kisflow", func(b *testing.B) {
		run(b, func() (int64, int64) {
			p, result := w1Build(recs)
			if err := p.Run(ctx); err != nil {
				b.Fatal(err)
			}
			return result()
		})
	})
	// The same with every stage Unfused: four goroutines spread over the
	// cores instead of one fused chain.
	b.Run("impl=kisflow-unfused", func(b *testing.B) {
		run(b, func() (int64, int64) {
			p, result := w1BuildStages(recs, []stage.Option{stage.Unfused()})
			if err := p.Run(ctx); err != nil {
				b.Fatal(err)
			}
			return result()
		})
	})
	// The same with Prometheus metrics on: the pipeline reports every batch
	// to a metrics.Metrics and is watched while it runs.
	b.Run("impl=kisflow-metrics", func(b *testing.B) {
		reg := prometheus.NewRegistry()
		m, err := metrics.New(reg)
		if err != nil {
			b.Fatal(err)
		}
		var ops int64
		run(b, w1Metrics(b, ctx, recs, m, &ops))
		checkW1Metrics(b, reg, ops)
	})
}

// funcValues returns W1's functions as values the compiler cannot see
// through (it would inline them if they were constants).
//
//go:noinline
func funcValues() (func(context.Context, Rec) (Rec, error), func(context.Context, Rec) (Rec, error), func(context.Context, Rec) (bool, error)) {
	fs := []any{sumFields, multiply, keepEven}
	return fs[0].(func(context.Context, Rec) (Rec, error)), fs[1].(func(context.Context, Rec) (Rec, error)), fs[2].(func(context.Context, Rec) (bool, error))
}
