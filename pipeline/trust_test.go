package pipeline_test

import (
	"context"
	"errors"
	"iter"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/fanout"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/row"
	"github.com/kisflow/kisflow/stage"
)

// Regression tests for the accounting and acknowledgement promises, one
// per defect found by adversarial tests of the first release.

// gatedSink is a sink that holds every row until open is closed.
func gatedSink(name string, open <-chan struct{}, got *atomic.Int64, opts ...stage.Option) *stage.Stage[int, struct{}] {
	return stage.Sink(name, func(ctx context.Context, _ int) error {
		select {
		case <-open:
		case <-ctx.Done():
			return ctx.Err()
		}
		got.Add(1)
		return nil
	}, opts...)
}

// 1. SubmitAck never acknowledges rows it did not accept.
func TestSubmitAckDoesNotAckRefusedRows(t *testing.T) {
	p := pipeline.New("flow")
	in, s := pipeline.NewInput[int](p, "in")
	pipeline.Discard(s, "sink")
	require.NoError(t, p.Start(context.Background()))

	var acks atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, err := in.SubmitAck(ctx, seq(10), func() { acks.Add(1) })
	require.ErrorIs(t, err, context.Canceled)
	assert.Zero(t, n)

	in.Close()
	n, err = in.SubmitAck(context.Background(), seq(10), func() { acks.Add(1) })
	require.ErrorIs(t, err, pipeline.ErrStopped)
	assert.Zero(t, n)

	require.NoError(t, p.Wait())
	assert.Zero(t, acks.Load(), "ack fired for rows never accepted")
	conserved(t, p.Stats())
}

// 2, 16. A SubmitAck that fails part-way reports how many rows it
// accepted; those are delivered, and the ack never fires (nor panics).
func TestSubmitAckPartlyAccepted(t *testing.T) {
	p := pipeline.New("flow", pipeline.BatchSize(2))
	in, s := pipeline.NewInput[int](p, "in")
	open := make(chan struct{})
	var got atomic.Int64
	pipeline.To(s, gatedSink("sink", open, &got, stage.Buffer(backpressure.Buffer{Capacity: 1})))
	require.NoError(t, p.Start(context.Background()))

	var acks atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		n   int
		err error
	}
	done := make(chan result, 1)
	go func() {
		n, err := in.SubmitAck(ctx, seq(100), func() { acks.Add(1) })
		done <- result{n, err}
	}()
	// The sink holds a row, the edge a batch, the batcher a batch: the
	// submission blocks part-way until its ctx ends.
	require.Eventually(t, func() bool { return p.Stats().Nodes[0].In >= 4 }, 5*time.Second, time.Millisecond)
	cancel()
	r := <-done
	require.ErrorIs(t, r.err, context.Canceled)
	assert.Greater(t, r.n, 0)
	assert.Less(t, r.n, 100)

	close(open)
	p.Stop()
	require.NoError(t, p.Wait())
	st := p.Stats()
	assert.EqualValues(t, r.n, st.In, "the accepted rows, and only they, entered")
	assert.EqualValues(t, r.n, got.Load(), "every accepted row is delivered")
	assert.Zero(t, acks.Load(), "a submission not wholly accepted is never acknowledged")
	conserved(t, st)
}

// 4. A graceful Stop delivers the rows a source already took.
func TestStopDeliversWhatSourcesTook(t *testing.T) {
	t.Run("FromSeq", func(t *testing.T) {
		p := pipeline.New("flow")
		var yielded atomic.Int64
		var got atomic.Int64
		open := make(chan struct{})
		close(open)
		src := pipeline.FromSeq(p, "seq", iter.Seq[int](func(yield func(int) bool) {
			for i := 0; ; i++ {
				if i == 5 {
					p.Stop()
				}
				yielded.Add(1)
				if !yield(i) {
					return
				}
			}
		}))
		pipeline.To(src, gatedSink("sink", open, &got))
		require.NoError(t, p.Run(context.Background()))
		assert.EqualValues(t, yielded.Load(), got.Load(), "every value pulled from the seq is delivered")
		assert.GreaterOrEqual(t, got.Load(), int64(5))
		conserved(t, p.Stats())
	})
	t.Run("FromChan", func(t *testing.T) {
		for range 20 {
			ch := make(chan int, 10)
			for i := range 10 {
				ch <- i
			}
			p := pipeline.New("flow")
			var c collector[int]
			pipeline.To(pipeline.FromChan(p, "ch", ch), c.sink("sink"))
			require.NoError(t, p.Start(context.Background()))
			p.Stop()
			require.NoError(t, p.Wait())
			assert.Equal(t, 10, len(c.got())+len(ch), "a value taken from the channel is delivered")
			conserved(t, p.Stats())
		}
	})
	t.Run("FromSlice after Stop", func(t *testing.T) {
		p := pipeline.New("flow")
		pipeline.Discard(pipeline.FromSlice(p, "src", seq(10)), "sink")
		p.Stop()
		require.NoError(t, p.Run(context.Background()))
		st := p.Stats()
		assert.Zero(t, st.In, "a source stopped before it starts takes nothing")
		conserved(t, st)
	})
}

// 6. Every ending accounts for every row: cancelled, failed, shut down.
func TestEveryEndingBalances(t *testing.T) {
	endless := func(yield func(int) bool) {
		for i := 0; ; i++ {
			if !yield(i) {
				return
			}
		}
	}
	build := func(p *pipeline.Pipeline, fn func(context.Context, int) (int, error)) {
		s := pipeline.FromSeq(p, "src", endless)
		s = pipeline.Then(s, stage.Map("work", fn, stage.Concurrency(3)))
		s = pipeline.Then(s, stage.Verify("odd", func(_ context.Context, v int) (bool, error) { return v%2 == 1, nil }, stage.Buffer(backpressure.Buffer{Capacity: 2})))
		pipeline.To(s, stage.Sink("sink", func(ctx context.Context, _ int) error {
			select {
			case <-time.After(10 * time.Microsecond):
			case <-ctx.Done():
			}
			return nil
		}))
	}
	t.Run("ctx timeout", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
		defer cancel()
		p := pipeline.New("flow")
		build(p, inc)
		err := p.Run(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), "pipeline flow")
		st := p.Stats()
		assert.Positive(t, st.Abandoned)
		conserved(t, st)
	})
	t.Run("FailFlow", func(t *testing.T) {
		p := pipeline.New("flow")
		build(p, func(_ context.Context, v int) (int, error) {
			if v == 4000 {
				return 0, errBad
			}
			return v, nil
		})
		require.ErrorIs(t, p.Run(context.Background()), errBad)
		st := p.Stats()
		assert.EqualValues(t, 1, st.Failed)
		conserved(t, st)
	})
	t.Run("Shutdown expires", func(t *testing.T) {
		p := pipeline.New("flow")
		in, s := pipeline.NewInput[int](p, "in")
		open := make(chan struct{})
		var got atomic.Int64
		pipeline.To(pipeline.Then(s, stage.Map("inc", inc)), gatedSink("sink", open, &got))
		require.NoError(t, p.Start(context.Background()))
		n, err := in.SubmitBatch(context.Background(), seq(2000))
		require.NoError(t, err)
		require.Equal(t, 2000, n)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		err = p.Shutdown(ctx)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorIs(t, p.Wait(), context.DeadlineExceeded)
		st := p.Stats()
		assert.EqualValues(t, 2000, st.In)
		assert.EqualValues(t, 2000, st.Abandoned, "nothing was delivered: the sink never opened")
		conserved(t, st)
		assert.ErrorIs(t, in.Submit(context.Background(), 1), pipeline.ErrStopped)
	})
	t.Run("Shutdown drains", func(t *testing.T) {
		p := pipeline.New("flow")
		in, s := pipeline.NewInput[int](p, "in")
		var c collector[int]
		pipeline.To(pipeline.Then(s, stage.Map("inc", inc, stage.Concurrency(2))), c.sink("sink"))
		require.NoError(t, p.Start(context.Background()))
		_, err := in.SubmitBatch(context.Background(), seq(3000))
		require.NoError(t, err)
		require.NoError(t, p.Shutdown(context.Background()))
		assert.Len(t, c.got(), 3000)
		conserved(t, p.Stats())
	})
	t.Run("Shutdown before Start", func(t *testing.T) {
		p := pipeline.New("flow")
		pipeline.Discard(pipeline.FromSlice(p, "src", seq(10)), "sink")
		require.NoError(t, p.Shutdown(context.Background()))
		require.NoError(t, p.Run(context.Background()))
		conserved(t, p.Stats())
	})
}

// 7. A stage on the dead-letter branch cannot dead-letter its own rows:
// Start says so instead of hanging.
func TestDeadLetterBranchCannotDeadLetter(t *testing.T) {
	p := pipeline.New("flow")
	s := pipeline.Then(pipeline.FromSlice(p, "src", seq(10)), stage.Map("m", inc, stage.OnError(stage.DeadLetter)))
	pipeline.Discard(s, "sink")
	dl := pipeline.Then(pipeline.DeadLetters(p), stage.Map("dl", func(_ context.Context, f row.Failure) (row.Failure, error) { return f, nil }, stage.OnError(stage.DeadLetter)))
	pipeline.Discard(dl, "dlq")
	err := p.Run(context.Background())
	require.ErrorIs(t, err, pipeline.ErrConfig)
	assert.Contains(t, err.Error(), "stage dl")
}

// 8. Merging the branches of a Balance delivers every row.
func TestMergeOfBalanceBranches(t *testing.T) {
	for _, n := range []int{1, 2, 3} {
		p := pipeline.New("flow", pipeline.BatchSize(7))
		var c collector[int]
		pipeline.To(fanout.Merge(fanout.Balance(pipeline.FromSlice(p, "src", seq(1000)), "balance", n, backpressure.Buffer{})...), c.sink("sink"))
		require.NoError(t, p.Run(context.Background()))
		assert.ElementsMatch(t, seq(1000), c.got())
		conserved(t, p.Stats())
	}
}

// 9. Emit with a ctx that is not the run's returns once the run fails.
func TestEmitReturnsAfterRunFails(t *testing.T) {
	p := pipeline.New("flow", pipeline.BatchSize(4))
	emitErr := make(chan error, 1)
	s := pipeline.FromFunc(p, "src", func(_ context.Context, e *pipeline.Emitter[int]) error {
		for i := 0; ; i++ {
			if _, err := e.Emit(context.Background(), []int{i}, nil); err != nil {
				emitErr <- err
				return err
			}
		}
	})
	pipeline.To(s, stage.Sink("sink", func(_ context.Context, v int) error {
		if v == 100 {
			return errBad
		}
		return nil
	}))
	require.ErrorIs(t, p.Run(context.Background()), errBad)
	require.ErrorIs(t, <-emitErr, pipeline.ErrStopped)
	conserved(t, p.Stats())
}

// 10. Wait racing a Start that fails its checks returns.
func TestWaitRacingFailingStart(t *testing.T) {
	for range 50 {
		p := pipeline.New("flow")
		pipeline.Then(pipeline.FromSlice(p, "src", seq(3)), stage.Map("unconsumed", inc))
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.ErrorIs(t, p.Wait(), pipeline.ErrNotStarted)
		}()
		require.ErrorIs(t, p.Start(context.Background()), pipeline.ErrUnconsumed)
		wg.Wait()
	}
}

type panickyObserver struct{ inBatch, inRun bool }

func (o panickyObserver) Batch(string, string, int, time.Duration) {
	if o.inBatch {
		panic("batch observer")
	}
}

func (o panickyObserver) Run(string, time.Duration, error) {
	if o.inRun {
		panic("run observer")
	}
}

// 11, 17. User callbacks outside stage functions run under recover; the
// error is one line and the stack is kept.
func TestCallbackPanicsBecomeErrors(t *testing.T) {
	check := func(t *testing.T, err error, where, value string) {
		t.Helper()
		var pe *stage.PanicError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, value, pe.Value)
		assert.NotEmpty(t, pe.Stack)
		assert.NotContains(t, err.Error(), "\n")
		assert.Contains(t, err.Error(), where)
	}
	t.Run("Observer.Run", func(t *testing.T) {
		p := pipeline.New("flow", pipeline.Observe(panickyObserver{inRun: true}))
		pipeline.Discard(pipeline.FromSlice(p, "src", seq(10)), "sink")
		require.NoError(t, p.Start(context.Background()))
		<-p.Done()
		check(t, p.Wait(), "observer", "run observer")
	})
	t.Run("Observer.Batch", func(t *testing.T) {
		p := pipeline.New("flow", pipeline.Observe(panickyObserver{inBatch: true}))
		pipeline.Discard(pipeline.Then(pipeline.FromSlice(p, "src", seq(10)), stage.Map("m", inc)), "sink")
		check(t, p.Run(context.Background()), "stage m", "batch observer")
		conserved(t, p.Stats())
	})
	t.Run("Partition key", func(t *testing.T) {
		p := pipeline.New("flow")
		parts := fanout.Partition(pipeline.FromSlice(p, "src", seq(10)), "byKey", 2, func(v int) int {
			if v == 7 {
				panic("key")
			}
			return v
		})
		pipeline.Discard(parts[0], "a")
		pipeline.Discard(parts[1], "b")
		check(t, p.Run(context.Background()), "stage byKey", "key")
		conserved(t, p.Stats())
	})
	t.Run("Route", func(t *testing.T) {
		p := pipeline.New("flow")
		routes := fanout.Route(pipeline.FromSlice(p, "src", seq(10)), "router", func(v int) string {
			if v == 3 {
				panic("route")
			}
			return "a"
		}, "a")
		pipeline.Discard(routes["a"], "a")
		check(t, p.Run(context.Background()), "stage router", "route")
		conserved(t, p.Stats())
	})
	t.Run("FromSeq", func(t *testing.T) {
		p := pipeline.New("flow")
		pipeline.Discard(pipeline.FromSeq(p, "src", func(yield func(int) bool) {
			yield(1)
			panic("seq")
		}), "sink")
		check(t, p.Run(context.Background()), "stage src", "seq")
		conserved(t, p.Stats())
	})
}

// 12. Sizes, capacities and policies out of range are refused by Start.
func TestConfigValidatedAtStart(t *testing.T) {
	p := pipeline.New("flow", pipeline.BatchSize(1<<50))
	pipeline.Discard(pipeline.FromSlice(p, "src", seq(3)), "sink")
	err := p.Run(context.Background())
	require.ErrorIs(t, err, pipeline.ErrConfig)
	assert.Contains(t, err.Error(), "batch size")

	p = pipeline.New("flow")
	pipeline.To(pipeline.FromSlice(p, "src", seq(3)), stage.Sink("huge", func(context.Context, int) error { return nil },
		stage.Buffer(backpressure.Buffer{Capacity: 1 << 40})))
	err = p.Run(context.Background())
	require.ErrorIs(t, err, pipeline.ErrConfig)
	assert.Contains(t, err.Error(), "stage huge")

	p = pipeline.New("flow")
	pipeline.To(pipeline.FromSlice(p, "src", seq(3)), stage.Sink("odd", func(context.Context, int) error { return nil },
		stage.Buffer(backpressure.Buffer{Policy: backpressure.Policy(42)})))
	err = p.Run(context.Background())
	require.ErrorIs(t, err, pipeline.ErrConfig)
	assert.Contains(t, err.Error(), "policy")
}

// 13. An input whose edge overflows under the Fail policy fails the run.
func TestInputOverflowFailsRun(t *testing.T) {
	p := pipeline.New("flow", pipeline.BatchSize(1))
	in, s := pipeline.NewInput[int](p, "in")
	open := make(chan struct{})
	var got atomic.Int64
	pipeline.To(s, gatedSink("sink", open, &got, stage.Buffer(backpressure.Buffer{Capacity: 1, Policy: backpressure.Fail})))
	require.NoError(t, p.Start(context.Background()))
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = in.Submit(context.Background(), i)
	}
	require.ErrorIs(t, err, backpressure.ErrOverflow)
	close(open)
	require.ErrorIs(t, p.Wait(), backpressure.ErrOverflow)
	conserved(t, p.Stats())
}

// 14. Dead letters merged back into the main stream leave the main rows
// counted.
func TestDeadLettersMergedBack(t *testing.T) {
	p := pipeline.New("flow")
	s := pipeline.Then(pipeline.FromSlice(p, "src", seq(100)), stage.Map("check", func(_ context.Context, v int) (int, error) {
		if v%10 == 0 {
			return 0, errBad
		}
		return v, nil
	}, stage.OnError(stage.DeadLetter)))
	fixed := pipeline.Then(pipeline.DeadLetters(p), stage.Map("fix", func(_ context.Context, f row.Failure) (int, error) {
		return -f.Row.(int), nil
	}))
	var c collector[int]
	pipeline.To(fanout.Merge(s, fixed), c.sink("sink"))
	require.NoError(t, p.Run(context.Background()))
	assert.Len(t, c.got(), 100)
	st := p.Stats()
	assert.EqualValues(t, 100, st.Delivered, "90 main rows and 10 fixed ones reached the sink")
	assert.EqualValues(t, 10, st.DeadLettered)
	assert.EqualValues(t, 10, st.Created, "the fixed rows re-entered the main graph")
	conserved(t, st)
}

// 15. A Stats snapshot taken mid-run never shows more delivered than in.
func TestStatsMidRunConsistent(t *testing.T) {
	p := pipeline.New("flow", pipeline.BatchSize(8))
	s := pipeline.Then(pipeline.FromSlice(p, "src", seq(200_000)), stage.Map("inc", inc, stage.Concurrency(2)))
	pipeline.Discard(s, "sink")
	require.NoError(t, p.Start(context.Background()))
	for {
		st := p.Stats()
		outcomes := st.Delivered + st.Filtered + st.Failed + st.Dropped + st.DeadLettered + st.Abandoned
		require.LessOrEqual(t, outcomes, st.In)
		for _, n := range st.Nodes {
			require.LessOrEqual(t, n.Delivered+n.Filtered+n.Failed, n.In, n.Name)
		}
		select {
		case <-p.Done():
			require.NoError(t, p.Wait())
			conserved(t, p.Stats())
			return
		default:
		}
	}
}

// Expansion and broadcast keep the totals balanced through Created.
func TestCreatedRowsBalanceTotals(t *testing.T) {
	p := pipeline.New("flow")
	s := pipeline.Then(pipeline.FromSlice(p, "src", seq(100)), stage.FlatMap("twice", func(_ context.Context, v int, emit func(int)) error {
		emit(v)
		emit(v)
		return nil
	}))
	b := fanout.Broadcast(s, "fan", 3)
	agg := pipeline.Then(b[2], stage.MapBatch("sum", func(_ context.Context, rows []int) ([]int, error) {
		total := 0
		for _, v := range rows {
			total += v
		}
		return []int{total}, nil
	}))
	pipeline.Discard(fanout.Merge(b[0], b[1], agg), "sink")
	require.NoError(t, p.Run(context.Background()))
	st := p.Stats()
	assert.Less(t, st.Created, st.In)
	assert.EqualValues(t, 100, st.In-st.Created, "the source's rows")
	conserved(t, st)
}

func TestAbandonedRowsAreNeverAcked(t *testing.T) {
	p := pipeline.New("flow", pipeline.BatchSize(4))
	in, s := pipeline.NewInput[int](p, "in")
	open := make(chan struct{})
	var got atomic.Int64
	pipeline.To(s, gatedSink("sink", open, &got))
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, p.Start(ctx))
	var acks atomic.Int32
	for range 3 {
		_, err := in.SubmitAck(context.Background(), seq(4), func() { acks.Add(1) })
		require.NoError(t, err)
	}
	cancel()
	require.ErrorIs(t, p.Wait(), context.Canceled)
	close(open)
	st := p.Stats()
	assert.EqualValues(t, 12, st.In)
	assert.EqualValues(t, 12, st.Abandoned+st.Delivered)
	assert.Zero(t, acks.Load()-int32(st.Delivered/4), "only submissions wholly delivered are acked")
	conserved(t, st)
	assert.False(t, strings.Contains(p.Wait().Error(), "\n"))
}

var errBad = errors.New("bad row")
