package stage_test

import (
	"context"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/internal/leaktest"
	"github.com/kisflow/kisflow/row"
	"github.com/kisflow/kisflow/stage"
)

// The examples import pipeline, which imports ants: its default pool's
// goroutines are not ours.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

// result is what one run of a stage produced.
type result[Out any] struct {
	out   []Out
	stats stage.Stats
	dead  []stage.Failure
	err   error
	acked bool
}

// runStage runs st over rows sent in batches of batchSize and collects what
// comes out. Every goroutine has exited when it returns.
func runStage[In, Out any](t *testing.T, st *stage.Stage[In, Out], rows []In, batchSize int) result[Out] {
	t.Helper()
	return runStageCtx(context.Background(), t, st, rows, batchSize)
}

// runStageCtx is runStage under a parent context.
func runStageCtx[In, Out any](parent context.Context, t *testing.T, st *stage.Stage[In, Out], rows []In, batchSize int) result[Out] {
	t.Helper()
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		res  result[Out]
		errs []error
	)
	env := &stage.Env{
		Flow:     "test",
		Counters: &stage.Counters{},
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
		DeadLetter: func(_ context.Context, f stage.Failure) error {
			mu.Lock()
			res.dead = append(res.dead, f)
			mu.Unlock()
			return nil
		},
	}
	in := backpressure.NewEdge[In]("in", backpressure.Config{Capacity: 2}, 1)
	var out *backpressure.Edge[Out]
	if st.Kind() != stage.KindExpand {
		out = backpressure.NewEdge[Out]("out", backpressure.Config{Capacity: 2}, 1)
	}
	st.Start(ctx, env, in, out)

	tracker := row.NewTracker(func() { res.acked = true })
	var feed sync.WaitGroup
	feed.Add(1)
	go func() {
		defer feed.Done()
		defer in.CloseWriter()
		defer tracker.Release()
		pool := row.PoolOf[In]()
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
		pool := row.PoolOf[Out]()
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
	opts []stage.Option
}{
	{"n=1", []stage.Option{stage.Concurrency(1)}},
	{"n=2/ordered", []stage.Option{stage.Concurrency(2)}},
	{"n=8/ordered", []stage.Option{stage.Concurrency(8)}},
	{"n=2/unordered", []stage.Option{stage.Concurrency(2), stage.Unordered()}},
	{"n=8/unordered", []stage.Option{stage.Concurrency(8), stage.Unordered()}},
}

func ints(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func with(opts []stage.Option, more ...stage.Option) []stage.Option {
	return append(append([]stage.Option(nil), opts...), more...)
}
