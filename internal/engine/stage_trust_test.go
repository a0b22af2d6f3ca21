package engine_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/internal/engine"
)

// A failed attempt's output is discarded for every stage kind, so a row
// retried after an error or a panic is emitted once.
func TestFailedAttemptOutputIsDiscarded(t *testing.T) {
	faults := map[string]func(){
		"error": nil,
		"panic": func() { panic("boom") },
	}
	for fault, do := range faults {
		for _, sh := range shapes {
			t.Run(fault+"/"+sh.name, func(t *testing.T) {
				var calls atomic.Int32
				fm := engine.FlatMap("fm", func(_ context.Context, v int, emit func(int)) error {
					emit(v)
					emit(v)
					if v == 3 && calls.Add(1) < 3 {
						if do != nil {
							do()
						}
						return errBad
					}
					return nil
				}, with(sh.opts, engine.Retry(2, 0))...)
				res := runStage(t, fm, ints(10), 4)
				require.NoError(t, res.err)
				count := map[int]int{}
				for _, v := range res.out {
					count[v]++
				}
				for v := range 10 {
					assert.Equal(t, 2, count[v], "row %d emitted twice per successful call, once", v)
				}
				assert.EqualValues(t, 10, res.stats.Delivered)
				assert.EqualValues(t, 20, res.stats.Out)
				assert.EqualValues(t, 2, res.stats.Retried)
				assert.True(t, res.acked)
			})
		}
	}

	t.Run("panic without retry, skipped", func(t *testing.T) {
		fm := engine.FlatMap("fm", func(_ context.Context, v int, emit func(int)) error {
			emit(v)
			if v%4 == 0 {
				panic(fmt.Sprint("bad ", v))
			}
			return nil
		}, engine.OnError(engine.Skip))
		res := runStage(t, fm, ints(12), 5)
		require.NoError(t, res.err)
		assert.Equal(t, []int{1, 2, 3, 5, 6, 7, 9, 10, 11}, res.out)
		assert.EqualValues(t, 3, res.stats.Failed)
		assert.EqualValues(t, 9, res.stats.Delivered)
	})
}

// The first wait before a retry is capped by MaxBackoff too.
func TestFirstRetryWaitCappedByMaxBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int32
		start := time.Now()
		flaky := func(_ context.Context, v int) (int, error) {
			if calls.Add(1) == 1 {
				return 0, errBad
			}
			return v, nil
		}
		res := runStage(t, engine.Map("flaky", flaky, engine.Retry(1, 10*time.Hour)), ints(1), 1)
		require.NoError(t, res.err)
		assert.Equal(t, engine.MaxBackoff, time.Since(start))
	})
}

// A chunk function fails single rows: they get the error policy alone.
func TestChunkFailsSingleRows(t *testing.T) {
	for _, kind := range []engine.Kind{engine.KindVerify, engine.KindCalculate, engine.KindSink} {
		for _, sh := range shapes {
			t.Run(kind.String()+"/"+sh.name, func(t *testing.T) {
				st := engine.Chunk("chunk", kind, func(_ context.Context, rows []int, fail func(int, error)) ([]int, error) {
					var out []int
					for i, v := range rows {
						switch {
						case v%10 == 7 && len(rows) > 1:
							fail(i, fmt.Errorf("row %d: %w", v, errBad)) // fails in its chunk, succeeds alone
						case kind == engine.KindVerify && v%10 == 5:
							// filtered: not returned
						default:
							out = append(out, v)
						}
					}
					return out, nil
				}, with(sh.opts, engine.Retry(1, 0), engine.OnError(engine.Skip))...)
				res := runStage(t, st, ints(100), 10)
				require.NoError(t, res.err)
				s := res.stats
				assert.EqualValues(t, 100, s.In)
				assert.Equal(t, s.In, s.Delivered+s.Filtered+s.Failed+s.DeadLettered+s.Abandoned)
				assert.EqualValues(t, 10, s.Retried, "each failed row retried alone")
				assert.Zero(t, s.Failed, "every row succeeded on its retry")
				if kind == engine.KindVerify {
					assert.EqualValues(t, 10, s.Filtered)
				}
				if kind != engine.KindSink {
					assert.Len(t, res.out, int(s.Out))
				}
				assert.True(t, res.acked)
			})
		}
	}
	t.Run("hopeless rows dead-lettered alone", func(t *testing.T) {
		st := engine.Chunk("chunk", engine.KindCalculate, func(_ context.Context, rows []int, fail func(int, error)) ([]int, error) {
			var out []int
			for i, v := range rows {
				if v == 4 {
					fail(i, errBad)
					continue
				}
				out = append(out, v)
			}
			return out, nil
		}, engine.OnError(engine.DeadLetter))
		res := runStage(t, st, ints(10), 10)
		require.NoError(t, res.err)
		assert.Equal(t, []int{0, 1, 2, 3, 5, 6, 7, 8, 9}, res.out)
		require.Len(t, res.dead, 1)
		assert.Equal(t, 4, res.dead[0].Row)
		assert.True(t, errors.Is(res.dead[0].Err, errBad))
		assert.EqualValues(t, 1, res.stats.DeadLettered)
		assert.Zero(t, res.stats.Failed)
		assert.EqualValues(t, 9, res.stats.Delivered)
	})
}

// A panic's error is one line; the stack stays in the field.
func TestPanicErrorIsOneLine(t *testing.T) {
	res := runStage(t, engine.Map("risky", func(_ context.Context, v int) (int, error) {
		if v == 2 {
			panic("boom")
		}
		return v, nil
	}), ints(5), 5)
	var pe *engine.PanicError
	require.ErrorAs(t, res.err, &pe)
	assert.Equal(t, "flow test: stage risky: panic: boom", res.err.Error())
	assert.NotContains(t, res.stats.LastError, "\n")
	assert.Contains(t, string(pe.Stack), "trust_test.go")
}

// A row failed alone and retried alone: what a failing retry returned is
// discarded too.
func TestChunkRetryOfFailedRowDiscardsItsOutput(t *testing.T) {
	st := engine.Chunk("sum", engine.KindCalculate, func(_ context.Context, rows []int, fail func(int, error)) ([]int, error) {
		sum := 0
		for i, v := range rows {
			if v == 3 {
				fail(i, errBad)
			}
			sum += v
		}
		return []int{sum}, nil // commits even for a chunk whose only row failed
	}, engine.Retry(2, 0), engine.OnError(engine.Skip))
	res := runStage(t, st, ints(5), 5)
	require.NoError(t, res.err)
	assert.Equal(t, []int{10}, res.out, "the chunk's sum only: the failing retries of row 3 emit nothing")
	assert.EqualValues(t, 1, res.stats.Failed)
	assert.EqualValues(t, 2, res.stats.Retried)
	assert.EqualValues(t, 4, res.stats.Delivered)
}
