package pipeline_test

import (
	"context"
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/row"
	"github.com/kisflow/kisflow/stage"
)

// TestSoak runs one long-lived pipeline (an Input fed by several
// submitters, stages with retries, skips, dead letters and a dropping
// edge, a sink) for KISFLOW_SOAK (a Go duration, e.g. 10m), sampling the
// number of goroutines and the heap in use after a GC every 10s. After a
// warm-up, the goroutine count must stay exactly what it was at the first
// sample and the heap within twice the first sample. Skipped unless
// KISFLOW_SOAK is set; scripts/property.sh soak runs it for 10 minutes.
func TestSoak(t *testing.T) {
	env := os.Getenv("KISFLOW_SOAK")
	if env == "" {
		t.Skip("set KISFLOW_SOAK=10m (or run scripts/property.sh soak)")
	}
	total, err := time.ParseDuration(env)
	if err != nil || total <= 0 {
		t.Fatalf("KISFLOW_SOAK=%q: want a positive Go duration", env)
	}
	every := min(10*time.Second, total/6)
	warmup := min(30*time.Second, total/5)

	p := pipeline.New("soak", pipeline.BatchSize(64))
	in, s := pipeline.NewInput[int](p, "in")
	errOdd := errors.New("injected")
	var attempts sync.Map
	s = pipeline.Then(s, stage.Map("parse", func(_ context.Context, v int) (int, error) {
		if v%97 == 0 {
			return 0, errOdd // to the dead letters
		}
		return v + 1, nil
	}, stage.Concurrency(4), stage.OnError(stage.DeadLetter)))
	s = pipeline.Then(s, stage.FlatMap("split", func(_ context.Context, v int, emit func(int)) error {
		for j := range v % 4 { // 0 to 3 rows
			emit(v + j)
		}
		return nil
	}, stage.Concurrency(2), stage.Unordered()))
	s = pipeline.Then(s, stage.Verify("keep", func(_ context.Context, v int) (bool, error) {
		if v%101 == 0 {
			// Fails once, then passes on retry.
			if _, again := attempts.LoadOrStore(v, true); !again {
				return false, errOdd
			}
			attempts.Delete(v)
		}
		return v%5 != 0, nil
	}, stage.Retry(1, time.Microsecond)))
	s = pipeline.Then(s, stage.MapBatch("enrich", func(_ context.Context, rows []int) ([]int, error) {
		out := make([]int, len(rows))
		for i, v := range rows {
			out[i] = v + 1
		}
		return out, nil
	}, stage.Buffer(backpressure.Buffer{Capacity: 4, Policy: backpressure.DropOldest})))
	var sunk atomic.Int64
	pipeline.To(s, stage.SinkBatch("store", func(_ context.Context, rows []int) error {
		sunk.Add(int64(len(rows)))
		return nil
	}, stage.Concurrency(2)))
	var dead atomic.Int64
	pipeline.To(pipeline.DeadLetters(p), stage.Sink("dlq", func(context.Context, row.Failure) error {
		dead.Add(1)
		return nil
	}))

	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var submitted, acked, calls atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 3 {
		wg.Go(func() {
			v := g * 1_000_000_000
			for {
				select {
				case <-stop:
					return
				default:
				}
				rows := make([]int, 1+v%50)
				for i := range rows {
					rows[i] = v
					v++
				}
				calls.Add(1)
				n, err := in.SubmitAck(ctx, rows, func() { acked.Add(1) })
				submitted.Add(int64(n))
				if err != nil {
					t.Errorf("SubmitAck: %v", err)
					return
				}
			}
		})
	}

	sample := func() (int, uint64) {
		g := runtime.NumGoroutine()
		for range 3 { // the lowest of a few looks: a goroutine may be on its way out
			time.Sleep(10 * time.Millisecond)
			g = min(g, runtime.NumGoroutine())
		}
		runtime.GC()
		runtime.GC() // and the pools' victim caches
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return g, ms.HeapInuse
	}

	began := time.Now()
	time.Sleep(warmup)
	baseG, baseHeap := sample()
	t.Logf("after %v warm-up: %d goroutines, heap in use %d KiB, %d rows in", warmup, baseG, baseHeap>>10, submitted.Load())
	tick := time.NewTicker(every)
	defer tick.Stop()
	for time.Since(began) < total {
		<-tick.C
		g, heap := sample()
		t.Logf("%v: %d goroutines, heap in use %d KiB, %d rows in, %d delivered, %d dead letters",
			time.Since(began).Round(time.Second), g, heap>>10, submitted.Load(), sunk.Load(), dead.Load())
		if g != baseG {
			t.Errorf("goroutines: %d, was %d after warm-up", g, baseG)
		}
		if heap > 2*baseHeap {
			t.Errorf("heap in use %d KiB, more than twice the %d KiB after warm-up", heap>>10, baseHeap>>10)
		}
		if t.Failed() {
			break
		}
	}
	close(stop)
	wg.Wait()
	p.Stop()
	if err := p.Wait(); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	st := p.Stats()
	conserved(t, st)
	if st.Abandoned != 0 {
		t.Errorf("a stopped run abandoned %d rows", st.Abandoned)
	}
	if acked.Load() != calls.Load() {
		t.Errorf("%d of %d SubmitAck calls acknowledged after a clean stop", acked.Load(), calls.Load())
	}
	t.Logf("done: %d rows in, %d delivered, %d filtered, %d dropped, %d dead letters", st.In, st.Delivered, st.Filtered, st.Dropped, st.DeadLettered)
}
