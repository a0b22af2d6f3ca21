package bench

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/kisflow/kisflow/metrics"
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
	b.Run("impl=chan", func(b *testing.B) {
		run(b, func() (n, sum int64) {
			c1 := make(chan Rec, chanBuf)
			c2 := make(chan Rec, chanBuf)
			c3 := make(chan Rec, chanBuf)
			c4 := make(chan Rec, chanBuf)
			go func() {
				defer close(c1)
				for _, r := range recs {
					c1 <- r
				}
			}()
			go func() {
				defer close(c2)
				for r := range c1 {
					r, _ = sumFields(ctx, r)
					c2 <- r
				}
			}()
			go func() {
				defer close(c3)
				for r := range c2 {
					r, _ = multiply(ctx, r)
					c3 <- r
				}
			}()
			go func() {
				defer close(c4)
				for r := range c3 {
					if ok, _ := keepEven(ctx, r); ok {
						c4 <- r
					}
				}
			}()
			for r := range c4 {
				n++
				sum += r.Sum
			}
			return n, sum
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
