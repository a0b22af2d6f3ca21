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
