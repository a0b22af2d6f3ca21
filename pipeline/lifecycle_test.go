package pipeline_test

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

func TestRunDeliversEverythingInOrder(t *testing.T) {
	p := pipeline.New("flow")
	var c collector[int]
	s := pipeline.Then(pipeline.FromSlice(p, "src", seq(1000)), stage.Map("inc", inc, stage.Concurrency(4)))
	pipeline.To(s, c.sink("sink"))
	require.NoError(t, p.Run(context.Background()))
	want := make([]int, 1000)
	for i := range want {
		want[i] = i + 1
	}
	assert.Equal(t, want, c.got())
	st := p.Stats()
	assert.EqualValues(t, 1000, st.In)
	assert.EqualValues(t, 1000, st.Delivered)
	assert.Equal(t, pipeline.StateDone, st.State)
	for _, n := range st.Nodes {
		assert.Equal(t, pipeline.StateDone, n.State, n.Name)
	}
	conserved(t, st)
}

func TestStartTwiceIsAnError(t *testing.T) {
	p := pipeline.New("flow")
	pipeline.Discard(pipeline.FromSlice(p, "src", seq(3)), "sink")
	assert.ErrorIs(t, p.Wait(), pipeline.ErrNotStarted)
	require.NoError(t, p.Run(context.Background()))
	assert.ErrorIs(t, p.Run(context.Background()), pipeline.ErrStarted)
	assert.ErrorIs(t, p.Start(context.Background()), pipeline.ErrStarted)
}

func TestBuildMistakes(t *testing.T) {
	p := pipeline.New("flow")
	assert.ErrorIs(t, p.Run(context.Background()), pipeline.ErrConfig)

	p = pipeline.New("flow")
	s := pipeline.Then(pipeline.FromSlice(p, "src", seq(3)), stage.Map("inc", inc))
	err := p.Run(context.Background())
	require.ErrorIs(t, err, pipeline.ErrUnconsumed)
	assert.Contains(t, err.Error(), "output of inc")
	pipeline.Discard(s, "sink")
	require.NoError(t, p.Run(context.Background()), "a failed check leaves the pipeline startable")

	p = pipeline.New("flow")
	src := pipeline.FromSlice(p, "src", seq(3))
	pipeline.Discard(src, "a")
	assert.PanicsWithValue(t, "pipeline: flow: output of src consumed twice (use fanout.Broadcast to feed several consumers)",
		func() { pipeline.Discard(src, "b") })
	assert.Panics(t, func() { pipeline.FromSlice(p, "src", seq(1)) }, "duplicate node name")
	assert.Panics(t, func() { pipeline.Then(pipeline.Stream[int]{}, stage.Map("x", inc)) })

	p = pipeline.New("flow")
	bad := pipeline.Then(pipeline.FromSlice(p, "src", seq(3)), stage.Map("inc", inc, stage.OnError(stage.DeadLetter)))
	pipeline.Discard(bad, "sink")
	err = p.Run(context.Background())
	require.ErrorIs(t, err, pipeline.ErrNoDeadLetter)
	assert.Contains(t, err.Error(), "stage inc")
}

func TestStageFailureStopsRun(t *testing.T) {
	boom := errors.New("boom")
	p := pipeline.New("orders")
	s := pipeline.Then(pipeline.FromSeq(p, "endless", func(yield func(int) bool) {
		for i := 0; ; i++ {
			if !yield(i) {
				return
			}
		}
	}), stage.Map("check", func(_ context.Context, v int) (int, error) {
		if v == 5000 {
			return 0, boom
		}
		return v, nil
	}, stage.Concurrency(3)))
	pipeline.Discard(s, "sink")
	err := p.Run(context.Background())
	require.ErrorIs(t, err, boom)
	assert.Equal(t, "flow orders: stage check: boom", err.Error())
	assert.Len(t, p.Errors(), 1)
	assert.Equal(t, pipeline.StateFailed, p.Stats().State)
}

func TestCancelAtRandomPoints(t *testing.T) {
	for i := range 20 {
		cutAt := 1 + int64(rand.IntN(20_000)) // seen reaches it: the sink counts from 1
		ctx, cancel := context.WithCancel(context.Background())
		p := pipeline.New("flow")
		var seen atomic.Int64
		s := pipeline.FromSeq(p, "endless", func(yield func(int) bool) {
			for i := 0; ; i++ {
				if !yield(i) {
					return
				}
			}
		})
		s = pipeline.Then(s, stage.Map("inc", inc, stage.Concurrency(1+i%4), stage.Buffer(backpressure.Buffer{Capacity: 1 + i%3})))
		s = pipeline.Then(s, stage.Verify("odd", func(_ context.Context, v int) (bool, error) { return v%2 == 1, nil }))
		pipeline.To(s, stage.Sink("count", func(context.Context, int) error {
			if seen.Add(1) == cutAt {
				cancel()
			}
			return nil
		}))
		err := p.Run(ctx)
		require.ErrorIs(t, err, context.Canceled, "cut %d", cutAt)
		cancel()
	}
}

func TestSubmitLifecycle(t *testing.T) {
	p := pipeline.New("flow")
	in, s := pipeline.NewInput[int](p, "in")
	var c collector[int]
	pipeline.To(pipeline.Then(s, stage.Map("inc", inc, stage.Concurrency(2))), c.sink("sink"))
	ctx := context.Background()
	require.ErrorIs(t, in.Submit(ctx, 1), pipeline.ErrNotStarted)

	require.NoError(t, p.Start(ctx))
	var g errgroup.Group
	for w := range 4 {
		g.Go(func() error {
			for i := range 250 {
				if err := in.Submit(ctx, w*1000+i); err != nil {
					return err
				}
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
	n, err := in.SubmitBatch(ctx, []int{-1, -2, -3})
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	p.Stop()
	require.NoError(t, p.Wait())
	assert.Len(t, c.got(), 1003, "Stop drains every row submitted before it")
	assert.ErrorIs(t, in.Submit(ctx, 1), pipeline.ErrStopped)
	conserved(t, p.Stats())
}

func TestSubmitHonoursContextUnderBackpressure(t *testing.T) {
	p := pipeline.New("flow", pipeline.BatchSize(1))
	in, s := pipeline.NewInput[int](p, "in")
	release := make(chan struct{})
	pipeline.To(s, stage.Sink("stuck", func(ctx context.Context, _ int) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}, stage.Buffer(backpressure.Buffer{Capacity: 1})))
	require.NoError(t, p.Start(context.Background()))
	// The sink holds one row, the edge one, the batcher one: a fourth
	// Submit must wait for room, so it returns only through its ctx.
	for i := range 3 {
		require.NoError(t, in.Submit(context.Background(), i))
	}
	ctx, cancel := context.WithCancel(context.Background())
	errs := make(chan error, 2)
	go func() { errs <- in.Submit(ctx, 3) }()
	go func() { errs <- in.Submit(ctx, 4) }()
	cancel()
	assert.ErrorIs(t, <-errs, context.Canceled)
	assert.ErrorIs(t, <-errs, context.Canceled)
	close(release)
	p.Stop()
	require.NoError(t, p.Wait())
	conserved(t, p.Stats())
}

func TestSubmitAckAfterHandling(t *testing.T) {
	p := pipeline.New("flow")
	in, s := pipeline.NewInput[int](p, "in")
	gate := make(chan struct{})
	var handled atomic.Int64
	s = pipeline.Then(s, stage.Verify("even", func(_ context.Context, v int) (bool, error) { return v%2 == 0, nil }))
	pipeline.To(s, stage.Sink("sink", func(context.Context, int) error {
		<-gate
		handled.Add(1)
		return nil
	}))
	require.NoError(t, p.Start(context.Background()))
	acked := make(chan int64, 1)
	_, err := in.SubmitAck(context.Background(), seq(600), func() { acked <- handled.Load() })
	require.NoError(t, err)
	close(gate)
	assert.EqualValues(t, 300, <-acked, "ack comes after every derived row is handled")
	p.Stop()
	require.NoError(t, p.Wait())
}

func TestNoAckWhenRunFails(t *testing.T) {
	p := pipeline.New("flow")
	in, s := pipeline.NewInput[int](p, "in")
	pipeline.To(s, stage.Sink("sink", func(_ context.Context, v int) error {
		if v == 3 {
			return errors.New("cannot store")
		}
		return nil
	}))
	require.NoError(t, p.Start(context.Background()))
	var acked atomic.Bool
	_, err := in.SubmitAck(context.Background(), seq(10), func() { acked.Store(true) })
	require.NoError(t, err)
	p.Stop()
	require.Error(t, p.Wait())
	assert.False(t, acked.Load(), "rows lost to a failed run are not acknowledged")
}

func TestStopEndsChannelSource(t *testing.T) {
	ch := make(chan int)
	p := pipeline.New("flow")
	var c collector[int]
	pipeline.To(pipeline.FromChan(p, "ch", ch), c.sink("sink"))
	require.NoError(t, p.Start(context.Background()))
	for i := range 10 {
		ch <- i
	}
	p.Stop()
	p.Stop() // twice is fine
	require.NoError(t, p.Wait())
	assert.LessOrEqual(t, len(c.got()), 10)
	conserved(t, p.Stats())

	// A closed channel ends the source on its own.
	ch2 := make(chan int, 3)
	ch2 <- 1
	ch2 <- 2
	close(ch2)
	p = pipeline.New("flow")
	var c2 collector[int]
	pipeline.To(pipeline.FromChan(p, "ch", ch2), c2.sink("sink"))
	require.NoError(t, p.Run(context.Background()))
	assert.Equal(t, []int{1, 2}, c2.got())
}

func TestLogsLifecycleWithFlowAndStage(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(writerFunc(func(b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(b)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	p := pipeline.New("logged", pipeline.Logger(logger))
	s := pipeline.Then(pipeline.FromSlice(p, "src", seq(10)), stage.Map("boom", func(_ context.Context, v int) (int, error) {
		if v == 5 {
			panic("kaboom")
		}
		return v, nil
	}))
	pipeline.Discard(s, "sink")
	require.Error(t, p.Run(context.Background()))
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	assert.Contains(t, out, `"msg":"pipeline started","flow":"logged"`)
	assert.Contains(t, out, `"msg":"panic in stage","flow":"logged","stage":"boom","panic":"kaboom"`)
	assert.Contains(t, out, `"msg":"pipeline failed"`)
	assert.Contains(t, out, `"rows":{"in":10`)

	// Without Logger nothing is printed: the default handler discards.
	q := pipeline.New("quiet")
	pipeline.Discard(pipeline.FromSlice(q, "src", seq(3)), "sink")
	require.NoError(t, q.Run(context.Background()))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
