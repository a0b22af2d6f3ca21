package flow_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/flow"
	"github.com/kisflow/kisflow/pipeline"
)

// countingFlow defines flow name in reg: a Calculate function passing its
// rows on, then an Expand function that counts them in got.
func countingFlow(t *testing.T, reg *flow.Registry, name string, got *atomic.Int64) *flow.Flow {
	t.Helper()
	require.NoError(t, flow.Register(reg, name+".pass", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		h.CommitRowBatch(rows)
		return nil
	}))
	require.NoError(t, flow.Register(reg, name+".count", func(_ context.Context, _ *flow.Handle[int, int], rows []int) error {
		got.Add(int64(len(rows)))
		return nil
	}))
	f := reg.Define(name)
	require.NoError(t, f.Link(&config.Func{Name: name + ".pass", Mode: config.ModeCalculate}, nil))
	require.NoError(t, f.Link(&config.Func{Name: name + ".count", Mode: config.ModeExpand}, nil))
	return f
}

// Item 5: a Stop on a flow that is not running is a no-op; the held rows
// are the next run's.
func TestStopBeforeStartKeepsHeldRows(t *testing.T) {
	var got atomic.Int64
	f := countingFlow(t, flow.NewRegistry(), "f", &got)
	commitRows(t, f, 1, 2, 3)
	f.Stop()
	require.NoError(t, f.Shutdown(context.Background()), "nothing runs: nothing to shut down")
	require.NoError(t, f.Run(context.Background()))
	assert.EqualValues(t, 3, got.Load())
	st := f.Pipeline().Stats()
	assert.EqualValues(t, 3, st.In)
	assert.EqualValues(t, 3, st.Delivered)

	// Start after a Stop runs until the next Stop.
	commitRows(t, f, 4, 5)
	f.Stop()
	require.NoError(t, f.Start(context.Background()))
	require.NoError(t, f.CommitRow(context.Background(), 6))
	f.Stop()
	require.NoError(t, f.Wait())
	assert.EqualValues(t, 6, got.Load())
}

// Item 5: with CommitRow, Run and Stop racing, every row CommitRow accepted
// is delivered by some run.
func TestConcurrentCommitRunStopLosesNoRow(t *testing.T) {
	var got atomic.Int64
	f := countingFlow(t, flow.NewRegistry(), "f", &got)
	var accepted atomic.Int64
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				if f.CommitRow(context.Background(), g*1000+i) == nil {
					accepted.Add(1)
				}
			}
		}()
	}
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				err := f.Run(context.Background())
				if err != nil {
					assert.ErrorIs(t, err, flow.ErrRunning)
				}
				f.Stop()
			}
		}()
	}
	wg.Wait()
	require.NoError(t, f.Run(context.Background()), "the last run takes the rows still held")
	assert.Equal(t, accepted.Load(), got.Load())
	assert.Positive(t, accepted.Load())
}

// Item 18: every Wait on a started run returns that run's result.
func TestEveryWaitGetsTheRunsResult(t *testing.T) {
	reg := flow.NewRegistry()
	boom := errors.New("boom")
	require.NoError(t, flow.Register(reg, "fail", func(context.Context, *flow.Handle[int, int], []int) error { return boom }))
	f := reg.Define("f")
	require.NoError(t, f.Link(&config.Func{Name: "fail", Mode: config.ModeExpand}, nil))
	require.NoError(t, f.Start(context.Background()))
	errs := make(chan error, 3)
	var wg sync.WaitGroup
	for range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- f.Wait()
		}()
	}
	require.NoError(t, f.CommitRow(context.Background(), 1))
	wg.Wait()
	close(errs)
	for err := range errs {
		require.ErrorIs(t, err, boom)
	}
	require.ErrorIs(t, f.Wait(), boom, "a Wait after the run ended gets its result too")
}

func TestWaitBeforeAnyRun(t *testing.T) {
	var got atomic.Int64
	f := countingFlow(t, flow.NewRegistry(), "f", &got)
	require.ErrorIs(t, f.Wait(), pipeline.ErrNotStarted)
}

// Item 27: held rows are bounded.
func TestHeldRowsAreBounded(t *testing.T) {
	var got atomic.Int64
	f := countingFlow(t, flow.NewRegistry(flow.MaxHeld(3)), "f", &got)
	commitRows(t, f, 1, 2, 3)
	err := f.CommitRow(context.Background(), 4)
	require.ErrorIs(t, err, flow.ErrHeldFull)
	assert.Contains(t, err.Error(), "flow f:")
	require.NoError(t, f.Run(context.Background()))
	assert.EqualValues(t, 3, got.Load())
	assert.EqualValues(t, 3, f.Pipeline().Stats().In, "the refused row is not counted")
	require.NoError(t, f.CommitRow(context.Background(), 5), "a run took the held rows: there is room again")
	assert.Equal(t, 1<<16, flow.DefaultMaxHeld)
	assert.Panics(t, func() { flow.MaxHeld(0) })
}

// Rows held for a run whose context is already cancelled are counted in
// it if they got in (as abandoned), and otherwise held for the next run.
func TestHeldRowsOfACancelledRunAreNotLost(t *testing.T) {
	var got atomic.Int64
	f := countingFlow(t, flow.NewRegistry(), "f", &got)
	commitRows(t, f, 1, 2, 3)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := f.Run(ctx)
	require.ErrorIs(t, err, context.Canceled)
	st := f.Pipeline().Stats()
	assert.Equal(t, st.In, st.Delivered+st.Abandoned)
	require.NoError(t, f.Run(context.Background()))
	st2 := f.Pipeline().Stats()
	assert.EqualValues(t, 3, st.In+st2.In, "each row is taken by one of the two runs")
	assert.Equal(t, st.Delivered+st2.Delivered, got.Load())
	assert.Equal(t, st2.In, st2.Delivered)
}

func TestShutdownDrains(t *testing.T) {
	var got atomic.Int64
	f := countingFlow(t, flow.NewRegistry(), "f", &got)
	commitRows(t, f, 1, 2)
	require.NoError(t, f.Start(context.Background()))
	require.NoError(t, f.CommitRow(context.Background(), 3))
	require.NoError(t, f.Shutdown(context.Background()))
	assert.EqualValues(t, 3, got.Load())
	require.ErrorIs(t, f.CommitRow(context.Background(), 4), nil, "the next run takes it")
	require.NoError(t, f.Run(context.Background()))
	assert.EqualValues(t, 4, got.Load())
}

// Shutdown whose ctx ends before the run drained cancels the run and
// returns ctx's error.
func TestShutdownCancelsWhenCtxEnds(t *testing.T) {
	reg := flow.NewRegistry()
	entered := make(chan struct{})
	var once sync.Once
	require.NoError(t, flow.Register(reg, "stuck", func(ctx context.Context, _ *flow.Handle[int, int], _ []int) error {
		once.Do(func() { close(entered) })
		<-ctx.Done() // drains only when cancelled
		return ctx.Err()
	}))
	f := reg.Define("f")
	require.NoError(t, f.Link(&config.Func{Name: "stuck", Mode: config.ModeExpand}, nil))
	require.NoError(t, f.Start(context.Background()))
	require.NoError(t, f.CommitRow(context.Background(), 1))
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, f.Shutdown(ctx), context.Canceled)
	err := f.Wait()
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "shutdown")
	st := f.Pipeline().Stats()
	assert.EqualValues(t, 1, st.In)
	assert.EqualValues(t, 1, st.Abandoned, "the row in flight is abandoned")
}
