package memory

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/kisflow/kisflow/connectors"
)

// BenchmarkMemory measures write, read and ack throughput through one key:
// one writer goroutine, one reader acknowledging every delivery.
func BenchmarkMemory(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchmarkMemory(b, batch) })
	}
}

func benchmarkMemory(b *testing.B, batch int) {
	ctx := context.Background()
	m := New(connectors.Config{Name: "bench", Params: map[string]string{"capacity": "1024"}})
	defer m.Close(ctx)
	r, err := m.Reader(ctx, "k", connectors.ReadOptions{Group: "g"})
	if err != nil {
		b.Fatal(err)
	}
	w, err := m.Writer(ctx, "k")
	if err != nil {
		b.Fatal(err)
	}
	msgs := make([]connectors.Message, batch)
	for i := range msgs {
		msgs[i].Data = []byte(`{"id":1}`)
	}

	b.ReportAllocs()
	b.ResetTimer()
	written := make(chan error, 1)
	go func() {
		for sent := 0; sent < b.N; {
			n := min(batch, b.N-sent)
			if err := w.Write(ctx, msgs[:n]); err != nil {
				written <- err
				return
			}
			sent += n
		}
		written <- w.Close()
	}()
	got := 0
	for {
		ds, err := r.Read(ctx, batch)
		if errors.Is(err, connectors.ErrEnded) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		for _, d := range ds {
			if err := d.Ack(); err != nil {
				b.Fatal(err)
			}
		}
		got += len(ds)
	}
	if err := <-written; err != nil {
		b.Fatal(err)
	}
	if got != b.N {
		b.Fatalf("read %d messages, wrote %d", got, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
