package engine_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/internal/engine"
)

// rowsOf returns a batch holding rows.
func rowsOf(rows ...int) *engine.Batch[int] {
	b := engine.PoolOf[int]().Get(len(rows))
	b.Rows = append(b.Rows, rows...)
	return b
}

// drainMarks reads e until it is closed, as a list of rows and "|k" marks for
// barriers.
func drainMarks(e *engine.Edge[int]) []string {
	var out []string
	for b := range e.C() {
		if k := b.Barrier(); k != 0 {
			out = append(out, fmt.Sprintf("|%d", k))
			continue
		}
		for _, v := range b.Rows {
			out = append(out, fmt.Sprint(v))
		}
	}
	return out
}

// TestEdgeAlignsBarriers: at an edge with two writers, one barrier goes
// on, after the rows each writer sent before its barrier and before the
// rows sent after it, even on a DropNewest edge (a barrier waits for room,
// it is never dropped).
func TestEdgeAlignsBarriers(t *testing.T) {
	for _, policy := range []backpressure.Policy{backpressure.Block, backpressure.DropNewest} {
		t.Run(policy.String(), func(t *testing.T) {
			ctx := context.Background()
			e := engine.NewEdge[int]("merge", engine.EdgeConfig{Capacity: 8, Policy: policy}, 2)
			var wg sync.WaitGroup
			wg.Add(2)
			go func() { // the fast writer: its barrier first
				defer wg.Done()
				defer e.CloseWriter()
				for _, b := range []*engine.Batch[int]{rowsOf(1), engine.NewBarrier[int](1), rowsOf(2)} {
					if err := e.Send(ctx, b); err != nil {
						t.Error(err)
					}
				}
			}()
			go func() {
				defer wg.Done()
				defer e.CloseWriter()
				for _, b := range []*engine.Batch[int]{rowsOf(10), rowsOf(11), engine.NewBarrier[int](1), rowsOf(12)} {
					if err := e.Send(ctx, b); err != nil {
						t.Error(err)
					}
				}
			}()
			got := drainMarks(e)
			wg.Wait()
			at := slices.Index(got, "|1")
			if at < 0 || slices.Index(got[at+1:], "|1") >= 0 {
				t.Fatalf("got %v: want exactly one barrier", got)
			}
			before, after := got[:at], got[at+1:]
			slices.Sort(before)
			slices.Sort(after)
			if !slices.Equal(before, []string{"1", "10", "11"}) || !slices.Equal(after, []string{"12", "2"}) {
				t.Fatalf("got %v: want 1, 10, 11 before the barrier and 2, 12 after", got)
			}
		})
	}
}

// TestEdgeAlignClosedWriter: a writer that closes counts as having sent
// every barrier, so the others' barrier goes on.
func TestEdgeAlignClosedWriter(t *testing.T) {
	ctx := context.Background()
	e := engine.NewEdge[int]("merge", engine.EdgeConfig{Capacity: 4}, 3)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer e.CloseWriter()
			for _, b := range []*engine.Batch[int]{rowsOf(w), engine.NewBarrier[int](7), rowsOf(100 + w)} {
				if err := e.Send(ctx, b); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	e.CloseWriter() // the third writer ends without a barrier
	got := drainMarks(e)
	wg.Wait()
	if len(got) != 5 || got[2] != "|7" {
		t.Fatalf("got %v: want two rows, barrier 7, two rows", got)
	}
}

// TestEdgeAlignCancelled: a writer waiting for the others' barrier gives
// up when its ctx ends.
func TestEdgeAlignCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	e := engine.NewEdge[int]("merge", engine.EdgeConfig{Capacity: 4}, 2)
	done := make(chan error)
	go func() { done <- e.Send(ctx, engine.NewBarrier[int](1)) }()
	cancel()
	if err := <-done; err == nil {
		t.Fatal("barrier send returned nil after cancel, with the other writer silent")
	}
}

// TestStageBarrier: a barrier passes a stage of one or several workers,
// ordered or not, after every row before it is processed (Env.Barrier
// sees their count) and before any row after it; a sink reports it too.
func TestStageBarrier(t *testing.T) {
	for _, c := range []struct {
		workers   int
		unordered bool
	}{{1, false}, {4, false}, {4, true}} {
		t.Run(fmt.Sprintf("workers=%d/unordered=%v", c.workers, c.unordered), func(t *testing.T) {
			ctx := context.Background()
			var mu sync.Mutex
			processed := 0
			opts := []engine.Option{engine.Concurrency(c.workers)}
			if c.unordered {
				opts = append(opts, engine.Unordered())
			}
			st := engine.Map("double", func(_ context.Context, v int) (int, error) {
				mu.Lock()
				processed++
				mu.Unlock()
				return 2 * v, nil
			}, opts...)
			var wg sync.WaitGroup
			var errs []error
			seen := map[uint64]int{}
			env := &engine.Env{
				Flow:     "test",
				Counters: &engine.Counters{},
				Go: func(fn func() error) {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if err := fn(); err != nil {
							mu.Lock()
							errs = append(errs, err)
							mu.Unlock()
						}
					}()
				},
				Barrier: func(k uint64) error {
					mu.Lock()
					seen[k] = processed
					mu.Unlock()
					return nil
				},
			}
			in := engine.NewEdge[int]("in", engine.EdgeConfig{Capacity: 4}, 1)
			out := engine.NewEdge[int]("out", engine.EdgeConfig{Capacity: 4}, 1)
			engine.Start(ctx, st, env, in, out)
			go func() {
				defer in.CloseWriter()
				for k := uint64(1); k <= 3; k++ {
					for i := range 5 {
						if err := in.Send(ctx, rowsOf(int(k)*100+2*i, int(k)*100+2*i+1)); err != nil {
							t.Error(err)
						}
					}
					if err := in.Send(ctx, engine.NewBarrier[int](k)); err != nil {
						t.Error(err)
					}
				}
			}()
			got := drainMarks(out)
			wg.Wait()
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			for k := uint64(1); k <= 3; k++ {
				if seen[k] != int(k)*10 {
					t.Fatalf("barrier %d passed with %d rows processed, want %d", k, seen[k], k*10)
				}
				at := slices.Index(got, fmt.Sprintf("|%d", k))
				if at != int(k)*10+int(k)-1 {
					t.Fatalf("barrier %d at %d in %v", k, at, got)
				}
				for _, v := range got[at-10 : at] {
					var n int
					fmt.Sscan(v, &n)
					if n/200 != int(k) {
						t.Fatalf("row %s before barrier %d in %v", v, k, got)
					}
				}
			}
		})
	}
}
