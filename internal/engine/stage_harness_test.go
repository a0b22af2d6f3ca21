package engine_test

import (
	"context"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/kisflow/kisflow/internal/engine"
	"github.com/kisflow/kisflow/internal/leaktest"
	"github.com/kisflow/kisflow/row"
)

// The examples import pipeline, which imports ants: its default pool's
// goroutines are not ours.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

// result is what one run of a stage produced.
type result[Out any] struct {
	out   []Out
	stats engine.Stats
	dead  []row.Failure
	err   error
	acked bool
}

// runStage runs st over rows sent in batches of batchSize and collects what
// comes out. Every goroutine has exited when it returns.
func runStage[In, Out any](t *testing.T, st *engine.Stage[In, Out], rows []In, batchSize int) result[Out] {
	t.Helper()
	return runStageCtx(context.Background(), t, st, rows, batchSize)
}

// runStageCtx is runStage under a parent context.
func runStageCtx[In, Out any](parent context.Context, t *testing.T, st *engine.Stage[In, Out], rows []In, batchSize int) result[Out] {
	t.Helper()
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		res  result[Out]
		errs []error
	)
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
					cancel(err)
				}
			}()
		},
		DeadLetter: func(_ context.Context, f row.Failure) error {
			mu.Lock()
			res.dead = append(res.dead, f)
			mu.Unlock()
			return nil
		},
	}
	in := engine.NewEdge[In]("in", engine.EdgeConfig{Capacity: 2}, 1)
	var out *engine.Edge[Out]
	if st.Kind() != engine.KindSink {
		out = engine.NewEdge[Out]("out", engine.EdgeConfig{Capacity: 2}, 1)
	}
	engine.Start(ctx, st, env, in, out)

	tracker := engine.NewTracker(func() { res.acked = true })
	var feed sync.WaitGroup
	feed.Add(1)
	go func() {
		defer feed.Done()
		defer in.CloseWriter()
		defer tracker.Release()
		pool := engine.PoolOf[In]()
		for lo := 0; lo < len(rows); lo += batchSize {
			b := pool.Get(batchSize)
			b.Rows = append(b.Rows, rows[lo:min(lo+batchSize, len(rows))]...)
			tracker.Retain(1)
			b.Track(tracker)
			if in.Send(ctx, b) != nil {
				return
			}
		}
	}()
	if out != nil {
		pool := engine.PoolOf[Out]()
	collect:
		for {
			select {
			case b, ok := <-out.C():
				if !ok {
					break collect
				}
				res.out = append(res.out, b.Rows...)
				pool.Put(b)
			case <-ctx.Done():
				break collect
			}
		}
	}
	feed.Wait()
	wg.Wait()
	if len(errs) > 0 {
		res.err = errs[0]
	}
	res.stats = env.Counters.Snapshot()
	return res
}

// concurrencies and orderings every behaviour runs across.
var shapes = []struct {
	name string
	opts []engine.Option
}{
	{"n=1", []engine.Option{engine.Concurrency(1)}},
	{"n=2/ordered", []engine.Option{engine.Concurrency(2)}},
	{"n=8/ordered", []engine.Option{engine.Concurrency(8)}},
	{"n=2/unordered", []engine.Option{engine.Concurrency(2), engine.Unordered()}},
	{"n=8/unordered", []engine.Option{engine.Concurrency(8), engine.Unordered()}},
}

func ints(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func with(opts []engine.Option, more ...engine.Option) []engine.Option {
	return append(append([]engine.Option(nil), opts...), more...)
}
