// Memory: a long stream must run in constant memory. 10 million W1 rows,
// made on the fly by a generator, flow through the W1 stages; the sink
// measures the live heap (HeapAlloc after a GC) once 1 million and once 10
// million source rows are through, and reports them as heap-1M-bytes and
// heap-10M-bytes, with their ratio as heap-ratio. Target: the heap does not
// grow with the stream; the benchmark fails if heap-10M-bytes exceeds
// 2 × heap-1M-bytes + 1 MiB.

package bench

import (
	"context"
	"iter"
	"runtime"
	"testing"

	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

const memRows = 10_000_000

// memMarks are the numbers of source rows after which the heap is measured.
var memMarks = [2]int64{1_000_000, memRows}

// memRecs yields n records like makeRecs(n), one at a time.
func memRecs(n int) iter.Seq[Rec] {
	return func(yield func(Rec) bool) {
		for i := range n {
			if !yield(Rec{A: int64(i), B: int64(i % 7), C: int64(i % 13)}) {
				return
			}
		}
	}
}

// liveHeap collects garbage and returns the bytes of live heap objects.
func liveHeap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMemory streams 10 million rows through W1 and measures the live
// heap after 1 and 10 million of them.
//
// One op is a whole pass of 10 million rows, two forced GCs included. The
// function runs once, and b.Loop repeats the pass only as long as the
// benchtime asks: with the default 1s, a handful of passes; with
// -benchtime=1x, as in CI, exactly one. Every pass is checked; the heap
// metrics are the largest seen over the passes.
func BenchmarkMemory(b *testing.B) {
	ctx := context.Background()
	var wantN, wantSum int64
	for r := range memRecs(memRows) {
		r, _ = sumFields(ctx, r)
		r, _ = multiply(ctx, r)
		if ok, _ := keepEven(ctx, r); ok {
			wantN++
			wantSum += r.Sum
		}
	}

	var worst [2]uint64
	worstRatio := 0.0
	b.ReportAllocs()
	for b.Loop() {
		var n, sum int64
		var heap [2]uint64
		next := 0
		p := pipeline.New("Memory")
		s := pipeline.FromSeq(p, "recs", memRecs(memRows))
		s = pipeline.Then(s, stage.Map("sum", sumFields))
		s = pipeline.Then(s, stage.Map("multiply", multiply))
		s = pipeline.Then(s, stage.Verify("even", keepEven))
		pipeline.To(s, stage.Sink("collect", func(_ context.Context, r Rec) error {
			n++
			sum += r.Sum
			// Rows arrive in source order and A is the source index: the
			// first row past a mark comes after at least mark source rows.
			if next < len(memMarks) && r.A+1 >= memMarks[next] {
				heap[next] = liveHeap()
				next++
			}
			return nil
		}))
		if err := p.Run(ctx); err != nil {
			b.Fatal(err)
		}
		if n != wantN || sum != wantSum {
			b.Fatalf("got %d rows sum %d, want %d rows sum %d", n, sum, wantN, wantSum)
		}
		if next != len(memMarks) {
			b.Fatalf("heap measured at %d of %d marks", next, len(memMarks))
		}
		if heap[1] > 2*heap[0]+1<<20 {
			b.Fatalf("live heap grew from %d bytes after 1M rows to %d after 10M, more than 2x + 1 MiB", heap[0], heap[1])
		}
		worst[0] = max(worst[0], heap[0])
		worst[1] = max(worst[1], heap[1])
		worstRatio = max(worstRatio, float64(heap[1])/float64(heap[0]))
	}
	reportRows(b, memRows)
	b.ReportMetric(float64(worst[0]), "heap-1M-bytes")
	b.ReportMetric(float64(worst[1]), "heap-10M-bytes")
	b.ReportMetric(worstRatio, "heap-ratio")
}
