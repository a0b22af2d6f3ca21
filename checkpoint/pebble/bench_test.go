package pebble_test

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"testing"
	"time"

	"github.com/kisflow/kisflow/checkpoint"
	"github.com/kisflow/kisflow/checkpoint/pebble"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
	"github.com/kisflow/kisflow/window"
)

// BenchmarkSnapshot1M: one checkpoint of a state of 1,000,000 keys, from
// the capture to the synced completion in Pebble.
func BenchmarkSnapshot1M(b *testing.B) {
	ctx := context.Background()
	s, err := pebble.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := newCounts()
	for i := range 1_000_000 {
		c.m[fmt.Sprintf("key-%07d", i)] = int64(i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	var size int
	for i := range b.N {
		id := uint64(i + 1)
		write, err := c.SnapshotState(id)
		if err != nil {
			b.Fatal(err)
		}
		var buf bytes.Buffer
		if err := write(&buf); err != nil {
			b.Fatal(err)
		}
		size = buf.Len()
		if err := s.Put(ctx, id, "count", buf.Bytes()); err != nil {
			b.Fatal(err)
		}
		if err := s.Complete(ctx, id, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)/1e6, "MB/snapshot")
}

// BenchmarkCheckpointCost: rows/s of a counting pipeline over 100,000
// keys, without checkpoints and with a checkpoint every 10 s into Pebble,
// in the same run. Run it with -benchtime of several times 10s for the
// checkpoints to happen.
func BenchmarkCheckpointCost(b *testing.B) {
	for _, c := range []struct {
		name  string
		every time.Duration
	}{{"off", 0}, {"every=10s", 10 * time.Second}, {"every=1s", time.Second}} {
		b.Run(c.name, func(b *testing.B) {
			var opts []pipeline.Option
			var store checkpoint.Store
			if c.every > 0 {
				s, err := pebble.Open(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				store = s
				opts = append(opts, pipeline.Checkpoints(c.every, store))
			}
			keys := make([]string, 100_000)
			for i := range keys {
				keys[i] = fmt.Sprintf("key-%06d", i)
			}
			counts := newCounts()
			p := pipeline.New("cost", opts...)
			var seq iter.Seq[string] = func(yield func(string) bool) {
				for i := range b.N {
					if !yield(keys[i%len(keys)]) {
						return
					}
				}
			}
			s := pipeline.FromSeq(p, "src", seq)
			s = pipeline.Then(s, stage.Map("count", func(_ context.Context, k string) (string, error) {
				counts.add(k)
				return k, nil
			}, stage.State(counts)))
			pipeline.Discard(s, "out")
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			if err := p.Run(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rows/s")
			if store != nil {
				id, _, _, _ := store.Latest(context.Background())
				b.ReportMetric(float64(id), "checkpoints")
			}
		})
	}
}

// BenchmarkWindowCheckpointCost measures a window operator (per-key
// counts in 1 s event-time tumbling windows over 10,000 keys, two
// workers) without checkpoints and with checkpoints into Pebble every
// 100 ms, in the same run: the open windows are captured at every
// barrier.
func BenchmarkWindowCheckpointCost(b *testing.B) {
	for _, c := range []struct {
		name  string
		every time.Duration
	}{{"off", 0}, {"every=100ms", 100 * time.Millisecond}} {
		b.Run(c.name, func(b *testing.B) {
			var opts []pipeline.Option
			var store checkpoint.Store
			if c.every > 0 {
				s, err := pebble.Open(b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				store = s
				opts = append(opts, pipeline.Checkpoints(c.every, store))
			}
			type ev struct {
				Key string
				Ms  int64
			}
			keys := make([]string, 10_000)
			for i := range keys {
				keys[i] = fmt.Sprintf("key-%05d", i)
			}
			p := pipeline.New("wcost", opts...)
			var seq iter.Seq[ev] = func(yield func(ev) bool) {
				for i := range b.N {
					if !yield(ev{keys[i%len(keys)], int64(i / 1000)}) {
						return
					}
				}
			}
			s := pipeline.FromSeq(p, "src", seq)
			out := window.Fold(s, "count", func(e ev) string { return e.Key }, window.Tumbling(time.Second),
				window.Agg[ev, int64]{Add: func(n int64, _ ev) int64 { return n + 1 }},
				window.EventTime(func(e ev) time.Time { return time.UnixMilli(e.Ms) }, 0), window.Workers(2))
			pipeline.Discard(out.Results(), "out")
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			if err := p.Run(context.Background()); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "rows/s")
			if store != nil {
				id, _, _, _ := store.Latest(context.Background())
				b.ReportMetric(float64(id), "checkpoints")
			}
		})
	}
}
