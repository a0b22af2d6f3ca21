package engine_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/internal/engine"
)

func double(_ context.Context, v int) (int, error) {
	if v%7 == 0 {
		runtime.Gosched() // vary timing so unordered output really reorders
	}
	return 2 * v, nil
}

func TestMapKeepsOrderWhenOrdered(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			st := engine.Map("double", double, sh.opts...)
			res := runStage(t, st, ints(1000), 64)
			require.NoError(t, res.err)
			want := make([]int, 1000)
			for i := range want {
				want[i] = 2 * i
			}
			if st.Ordered() {
				assert.Equal(t, want, res.out)
			} else {
				assert.ElementsMatch(t, want, res.out)
			}
			assert.EqualValues(t, 1000, res.stats.In)
			assert.EqualValues(t, 1000, res.stats.Out)
			assert.True(t, res.acked, "every row handled: the tracker completes")
		})
	}
}

func TestVerifyFilters(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			st := engine.Verify("even", func(_ context.Context, v int) (bool, error) { return v%2 == 0, nil }, sh.opts...)
			res := runStage(t, st, ints(501), 50)
			require.NoError(t, res.err)
			assert.Len(t, res.out, 251)
			assert.EqualValues(t, 250, res.stats.Filtered)
			assert.Equal(t, res.stats.In, res.stats.Out+res.stats.Filtered+res.stats.Failed)
			assert.True(t, res.acked)
		})
	}
}

func TestFlatMapAndMapBatch(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			fm := engine.FlatMap("repeat", func(_ context.Context, v int, emit func(string)) error {
				for range v % 3 {
					emit(fmt.Sprint(v))
				}
				return nil
			}, sh.opts...)
			res := runStage(t, fm, ints(30), 7)
			require.NoError(t, res.err)
			assert.Len(t, res.out, 30) // 0+1+2 per three rows
			assert.EqualValues(t, 30, res.stats.Out)

			mb := engine.MapBatch("sum", func(_ context.Context, rows []int) ([]int, error) {
				return []int{len(rows)}, nil
			}, sh.opts...)
			res2 := runStage(t, mb, ints(100), 10)
			require.NoError(t, res2.err)
			total := 0
			for _, n := range res2.out {
				total += n
			}
			assert.Equal(t, 100, total, "every row reaches the batch function once")
		})
	}
}

func TestExpandConsumesEveryRow(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			var sum atomic.Int64
			st := engine.Sink("sink", func(_ context.Context, v int) error {
				sum.Add(int64(v))
				return nil
			}, sh.opts...)
			res := runStage(t, st, ints(100), 9)
			require.NoError(t, res.err)
			assert.EqualValues(t, 4950, sum.Load())
			assert.EqualValues(t, 100, res.stats.Delivered)
			assert.Zero(t, res.stats.Out, "a sink sends nothing on")
			assert.True(t, res.acked)
		})
	}
}

var errBad = errors.New("bad row")

func failOn13(_ context.Context, v int) (int, error) {
	if v%13 == 0 {
		return 0, fmt.Errorf("row %d: %w", v, errBad)
	}
	return v, nil
}

func TestFailFlowNamesStage(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			res := runStage(t, engine.Map("check", failOn13, sh.opts...), ints(100), 10)
			var se *engine.Error
			require.ErrorAs(t, res.err, &se)
			assert.Equal(t, "check", se.Stage)
			assert.Equal(t, "test", se.Flow)
			assert.ErrorIs(t, res.err, errBad)
			assert.Contains(t, res.err.Error(), "flow test: stage check:")
			assert.False(t, res.acked, "a failed run acknowledges nothing")
		})
	}
}

func TestSkipAndDeadLetter(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			res := runStage(t, engine.Map("check", failOn13, with(sh.opts, engine.OnError(engine.Skip))...), ints(100), 10)
			require.NoError(t, res.err)
			assert.Len(t, res.out, 92)
			assert.EqualValues(t, 8, res.stats.Failed)
			assert.Equal(t, res.stats.In, res.stats.Out+res.stats.Failed)
			assert.Contains(t, res.stats.LastError, "bad row")
			assert.True(t, res.acked, "skipped rows count as handled")

			res = runStage(t, engine.Map("check", failOn13, with(sh.opts, engine.OnError(engine.DeadLetter))...), ints(100), 10)
			require.NoError(t, res.err)
			require.Len(t, res.dead, 8)
			var rows []int
			for _, f := range res.dead {
				assert.Equal(t, "check", f.Stage)
				assert.ErrorIs(t, f.Err, errBad)
				rows = append(rows, f.Row.(int))
			}
			slices.Sort(rows)
			assert.Equal(t, []int{0, 13, 26, 39, 52, 65, 78, 91}, rows)
			assert.EqualValues(t, 8, res.stats.DeadLettered)
		})
	}
}

func TestPanicBecomesError(t *testing.T) {
	boom := errors.New("boom")
	fn := func(_ context.Context, v int) (int, error) {
		if v == 42 {
			panic(boom)
		}
		if v == 43 {
			panic("plain value")
		}
		return v, nil
	}
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			res := runStage(t, engine.Map("risky", fn, sh.opts...), ints(100), 10)
			var pe *engine.PanicError
			require.ErrorAs(t, res.err, &pe)
			assert.ErrorIs(t, res.err, boom, "unwraps to the panic value")
			assert.Contains(t, string(pe.Stack), "stage_test.go")
			assert.Contains(t, res.err.Error(), "stage risky")

			res = runStage(t, engine.Map("risky", fn, with(sh.opts, engine.OnError(engine.Skip))...), ints(100), 10)
			require.NoError(t, res.err)
			assert.Len(t, res.out, 98, "rows after a panicking row are still processed")
			assert.EqualValues(t, 2, res.stats.Failed)
		})
	}
}

func TestRetryWithBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		start := time.Now()
		flaky := func(_ context.Context, v int) (int, error) {
			if v == 5 && calls.Add(1) < 3 {
				return 0, errBad
			}
			return v, nil
		}
		res := runStage(t, engine.Map("flaky", flaky, engine.Retry(4, 10*time.Millisecond)), ints(10), 4)
		require.NoError(t, res.err)
		assert.Equal(t, ints(10), res.out)
		assert.EqualValues(t, 2, res.stats.Retried)
		assert.Equal(t, 30*time.Millisecond, time.Since(start), "waits 10ms then 20ms")

		res = runStage(t, engine.Map("hopeless", failOn13, engine.Retry(3, time.Millisecond), engine.OnError(engine.Skip)), ints(14), 14)
		require.NoError(t, res.err)
		assert.EqualValues(t, 6, res.stats.Retried, "three retries for each of two rows")
		assert.EqualValues(t, 2, res.stats.Failed)
	})
}

func TestRetryRetriesWholeChunk(t *testing.T) {
	var calls atomic.Int32
	mb := engine.MapBatch("batchy", func(_ context.Context, rows []int) ([]int, error) {
		if calls.Add(1) == 1 {
			return nil, errBad
		}
		return rows, nil
	}, engine.Retry(1, 0))
	res := runStage(t, mb, ints(10), 10)
	require.NoError(t, res.err)
	assert.Equal(t, ints(10), res.out)
	assert.EqualValues(t, 1, res.stats.Retried)
}

func TestTimeoutPerRow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := func(ctx context.Context, v int) (int, error) {
			if v == 3 {
				<-ctx.Done() // honours ctx: the timeout ends the call
				return 0, ctx.Err()
			}
			return v, nil
		}
		res := runStage(t, engine.Map("slow", slow, engine.Timeout(time.Second), engine.OnError(engine.Skip)), ints(6), 6)
		require.NoError(t, res.err)
		assert.Equal(t, []int{0, 1, 2, 4, 5}, res.out)
		assert.EqualValues(t, 1, res.stats.Failed)
		assert.Contains(t, res.stats.LastError, context.DeadlineExceeded.Error())
	})
}

func TestSlowStageCancelledMidRun(t *testing.T) {
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var once atomic.Bool
			slow := func(ctx context.Context, v int) (int, error) {
				if v >= 20 && once.CompareAndSwap(false, true) {
					cancel() // cancel from outside while a row is in flight
				}
				if v >= 20 {
					<-ctx.Done()
					return 0, ctx.Err()
				}
				return v, nil
			}
			res := runStageCtx(ctx, t, engine.Map("slow", slow, sh.opts...), ints(10_000), 10)
			require.NoError(t, res.err, "a cancelled run is not a stage failure")
			assert.Less(t, res.stats.In, int64(10_000), "the run stopped early")
			assert.Zero(t, res.stats.Failed, "rows cut short by cancellation are not counted as failed")
			assert.False(t, res.acked)
		})
	}
}

func TestFailureWhileOtherRowsAreSlow(t *testing.T) {
	for _, sh := range shapes[1:] { // needs at least two workers
		t.Run(sh.name, func(t *testing.T) {
			started := make(chan struct{})
			var once atomic.Bool
			slow := func(ctx context.Context, v int) (int, error) {
				switch {
				case v == 5:
					if once.CompareAndSwap(false, true) {
						close(started)
					}
					<-ctx.Done() // stuck until the failure cancels the run
					return 0, ctx.Err()
				case v >= 6:
					<-started
					return 0, errBad
				}
				return v, nil
			}
			res := runStage(t, engine.Map("slow", slow, sh.opts...), ints(10_000), 10)
			require.ErrorIs(t, res.err, errBad)
			assert.Less(t, res.stats.In, int64(10_000))
		})
	}
}

func TestConstructionMistakesPanic(t *testing.T) {
	assert.PanicsWithValue(t, "stage: concurrency must be at least 1", func() { engine.Concurrency(0) })
	assert.PanicsWithValue(t, "stage: Map m: nil function", func() { engine.Map[int, int]("m", nil) })
	assert.PanicsWithValue(t, "stage: empty stage name", func() { engine.Map("", double) })
	assert.Panics(t, func() { engine.Retry(-1, 0) })
	assert.Panics(t, func() { engine.Timeout(0) })
}

func TestDeadLetterWithoutStreamFails(t *testing.T) {
	st := engine.Map("check", failOn13, engine.OnError(engine.DeadLetter))
	assert.Equal(t, engine.DeadLetter, st.ErrorPolicy())
	assert.Equal(t, "dead-letter", st.ErrorPolicy().String())
	assert.Equal(t, "Calculate", st.Kind().String())
	assert.Equal(t, 1, st.Goroutines())
	assert.Equal(t, 10, engine.Map("m", double, engine.Concurrency(8)).Goroutines())
	assert.Equal(t, 9, engine.Map("m", double, engine.Concurrency(8), engine.Unordered()).Goroutines())
}
