// W5: windows. 1,000,000 in-order readings per op from 10,000 keys over
// ten seconds of event time, counted and summed per key in 1-second
// tumbling windows: 100,000 results. impl=seq is a plain loop updating a
// map of per-key, per-window accumulators and emitting a window's results
// when event time passes its end. Target: at most 3x impl=seq, and no
// allocation per row in steady state (a run allocates a fixed amount for
// its graph, its window slots and maps).

package bench

import (
	"context"
	"testing"
	"time"

	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
	"github.com/kisflow/kisflow/window"
)

const (
	w5Rows = 1_000_000
	w5Keys = 10_000
	w5Size = int64(time.Second / time.Millisecond) // window size in ms
)

// Reading is W5's row: a sensor key, an event time in milliseconds and a
// value.
type Reading struct {
	Key int32
	Ms  int64
	V   int64
}

// makeReadings returns n readings in event-time order, 100 per
// millisecond, cycling over the keys.
func makeReadings(n int) []Reading {
	rs := make([]Reading, n)
	for i := range rs {
		rs[i] = Reading{Key: int32(i % w5Keys), Ms: int64(i / 100), V: int64(i % 97)}
	}
	return rs
}

// countSum is W5's accumulator.
type countSum struct{ N, Sum int64 }

// w5Seq computes W5 with a plain loop: the windows of one second are
// emitted (added to the checksum) and deleted when a reading of a later
// second comes.
func w5Seq(rs []Reading) (n, sum int64) {
	type wk struct {
		key   int32
		start int64
	}
	acc := make(map[wk]countSum)
	open := int64(-1)
	flush := func() {
		for k, a := range acc {
			n++
			sum += a.N + a.Sum
			delete(acc, k)
		}
	}
	for _, r := range rs {
		start := r.Ms - r.Ms%w5Size
		if start != open {
			flush()
			open = start
		}
		k := wk{r.Key, start}
		a := acc[k]
		acc[k] = countSum{a.N + 1, a.Sum + r.V}
	}
	flush()
	return n, sum
}

// w5Build returns W5's pipeline over rs and a function giving the count
// and checksum of its results once it ran.
func w5Build(rs []Reading) (*pipeline.Pipeline, func() (int64, int64)) {
	p := pipeline.New("W5")
	src := pipeline.FromSlice(p, "readings", rs)
	out := window.Fold(src, "countsum", func(r Reading) int32 { return r.Key }, window.Tumbling(time.Second),
		window.Agg[Reading, countSum]{Add: func(a countSum, r Reading) countSum { return countSum{a.N + 1, a.Sum + r.V} }},
		window.EventTime(func(r Reading) time.Time { return time.UnixMilli(r.Ms) }, 0))
	var n, sum int64
	pipeline.To(out.Results(), stage.SinkBatch("sink", func(_ context.Context, rs []window.Result[int32, countSum]) error {
		for _, r := range rs {
			n++
			sum += r.Value.N + r.Value.Sum
		}
		return nil
	}))
	return p, func() (int64, int64) { return n, sum }
}

// BenchmarkW5 counts and sums 1,000,000 readings per op in 1-second
// tumbling windows per key over 10,000 keys.
func BenchmarkW5(b *testing.B) {
	rs := makeReadings(w5Rows)
	wantN, wantSum := w5Seq(rs)
	run := func(b *testing.B, once func() (int64, int64)) {
		runVerified(b, w5Rows, wantN, wantSum, once)
	}
	b.Run("impl=seq", func(b *testing.B) {
		run(b, func() (int64, int64) { return w5Seq(rs) })
	})
	b.Run("impl=kisflow", func(b *testing.B) {
		ctx := context.Background()
		run(b, func() (int64, int64) {
			p, result := w5Build(rs)
			if err := p.Run(ctx); err != nil {
				b.Fatal(err)
			}
			return result()
		})
	})
}
