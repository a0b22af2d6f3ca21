package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// stamped is a row that carries the time it was submitted.
type stamped struct {
	at  int64 // nanoseconds since start
	val int64
}

// latencyRun feeds rows into a three-stage pipeline (Map, Map, Sink) at
// rate rows per second (0: as fast as it takes them) and returns each row's
// latency from Submit to the sink, and the rows per second achieved.
func latencyRun(b *testing.B, rows, rate, batch int, linger time.Duration) ([]time.Duration, float64) {
	b.Helper()
	start := time.Now()
	lat := make([]time.Duration, 0, rows)
	var mu sync.Mutex
	p := pipeline.New("latency", pipeline.BatchSize(batch), pipeline.Linger(linger))
	in, s := pipeline.NewInput[stamped](p, "in")
	s = pipeline.Then(s, stage.Map("a", func(_ context.Context, r stamped) (stamped, error) { r.val++; return r, nil }))
	s = pipeline.Then(s, stage.Map("b", func(_ context.Context, r stamped) (stamped, error) { r.val *= 3; return r, nil }))
	pipeline.To(s, stage.SinkBatch("sink", func(_ context.Context, rs []stamped) error {
		now := int64(time.Since(start))
		mu.Lock()
		for _, r := range rs {
			lat = append(lat, time.Duration(now-r.at))
		}
		mu.Unlock()
		return nil
	}))
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		b.Fatal(err)
	}
	began := time.Now()
	var interval time.Duration
	if rate > 0 {
		interval = time.Second / time.Duration(rate)
	}
	for i := range rows {
		if interval > 0 {
			// Pace by the clock: submit row i at began + i*interval, in
			// bursts when the scheduler wakes late, so the rate holds.
			if d := time.Until(began.Add(time.Duration(i) * interval)); d > 50*time.Microsecond {
				time.Sleep(d)
			}
		}
		if err := in.Submit(ctx, stamped{at: int64(time.Since(start)), val: int64(i)}); err != nil {
			b.Fatal(err)
		}
	}
	took := time.Since(began)
	in.Close()
	if err := p.Wait(); err != nil {
		b.Fatal(err)
	}
	if len(lat) != rows {
		b.Fatalf("%d rows reached the sink, want %d", len(lat), rows)
	}
	return lat, float64(rows) / took.Seconds()
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// BenchmarkLatency reports the per-row latency from Submit to the sink of a
// three-stage pipeline, p50, p99 and p99.9 in microseconds, at a low rate
// (100 rows/s: the linger decides), and at 50% and 90% of the maximum
// throughput measured first, for the default batching (512 rows, 1 ms
// linger) and for a latency-minded one (64 rows, 100 µs linger).
func BenchmarkLatency(b *testing.B) {
	settings := []struct {
		name   string
		batch  int
		linger time.Duration
	}{
		{"batch=512,linger=1ms", 512, time.Millisecond},
		{"batch=64,linger=100us", 64, 100 * time.Microsecond},
	}
	for _, set := range settings {
		// The maximum throughput of this setting, measured once.
		_, maxRate := latencyRun(b, 200_000, 0, set.batch, set.linger)
		loads := []struct {
			name string
			rate int
			rows int
		}{
			{"rate=100/s", 100, 100},
			{"rate=50%", int(maxRate * 0.5), 100_000},
			{"rate=90%", int(maxRate * 0.9), 100_000},
		}
		for _, l := range loads {
			b.Run(fmt.Sprintf("%s/%s", set.name, l.name), func(b *testing.B) {
				var all []time.Duration
				var got float64
				for b.Loop() {
					lat, r := latencyRun(b, l.rows, l.rate, set.batch, set.linger)
					all = append(all, lat...)
					got = r
				}
				slices.Sort(all)
				us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
				b.ReportMetric(us(quantile(all, 0.50)), "p50-µs")
				b.ReportMetric(us(quantile(all, 0.99)), "p99-µs")
				b.ReportMetric(us(quantile(all, 0.999)), "p99.9-µs")
				b.ReportMetric(got, "rows/s")
				b.ReportMetric(maxRate, "max-rows/s")
			})
		}
	}
}
