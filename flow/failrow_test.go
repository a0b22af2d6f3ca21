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
	"github.com/kisflow/kisflow/stage"
)

var errBadRow = errors.New("bad row")

// failRowFlow defines a flow: "check" (mode, with opts and retries) fails
// the rows bad says are bad with FailRow and passes the rest on, then
// "count" counts what arrives.
func failRowFlow(t *testing.T, mode config.Mode, retries int, bad func(v, call int) bool, got *atomic.Int64, opts ...stage.Option) *flow.Flow {
	t.Helper()
	reg := flow.NewRegistry()
	var calls atomic.Int32
	require.NoError(t, flow.Register(reg, "check", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		call := int(calls.Add(1))
		for _, v := range rows {
			if bad(v, call) {
				h.FailRow(v, errBadRow)
				continue
			}
			h.CommitRow(v)
		}
		return nil
	}, opts...))
	require.NoError(t, flow.Register(reg, "count", func(_ context.Context, _ *flow.Handle[int, int], rows []int) error {
		got.Add(int64(len(rows)))
		return nil
	}))
	f := reg.Define("f")
	require.NoError(t, f.Link(&config.Func{Name: "check", Mode: mode, Option: config.FuncOption{RetryTimes: retries, ReturnDuration: 0}}, nil))
	require.NoError(t, f.Link(&config.Func{Name: "count", Mode: config.ModeExpand}, nil))
	return f
}

// Item 24: with Skip, one bad row in 1,000 fails alone.
func TestFailRowFailsOnlyThatRow(t *testing.T) {
	for _, mode := range []config.Mode{config.ModeCalculate, config.ModeVerify} {
		t.Run(string(mode), func(t *testing.T) {
			var got atomic.Int64
			f := failRowFlow(t, mode, 0, func(v, _ int) bool { return v%1000 == 999 }, &got, stage.OnError(stage.Skip))
			for i := range 10000 {
				require.NoError(t, f.CommitRow(context.Background(), i))
			}
			require.NoError(t, f.Run(context.Background()))
			st := f.Pipeline().Stats()
			assert.EqualValues(t, 10, st.Failed)
			assert.EqualValues(t, 9990, st.Delivered)
			assert.EqualValues(t, 0, st.Filtered, "a failed row is not filtered")
			assert.EqualValues(t, 9990, got.Load())
			assert.Equal(t, st.In, st.Delivered+st.Filtered+st.Failed+st.Dropped+st.DeadLettered+st.Abandoned)
		})
	}
}

// The rows of an Expand function at the end of the flow that it does not
// fail are delivered.
func TestFailRowInTheLastFunction(t *testing.T) {
	reg := flow.NewRegistry()
	require.NoError(t, flow.Register(reg, "sink", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		for _, v := range rows {
			if v < 0 {
				h.FailRow(v, errBadRow)
			}
		}
		return nil
	}, stage.OnError(stage.Skip)))
	f := reg.Define("f")
	require.NoError(t, f.Link(&config.Func{Name: "sink", Mode: config.ModeExpand}, nil))
	commitRows(t, f, 1, -2, 3, -4, 5)
	require.NoError(t, f.Run(context.Background()))
	st := f.Pipeline().Stats()
	assert.EqualValues(t, 2, st.Failed)
	assert.EqualValues(t, 3, st.Delivered)
}

// A failed row is retried alone when retry_times is set.
func TestFailRowRetriesTheRowAlone(t *testing.T) {
	var got atomic.Int64
	var mu sync.Mutex
	var single [][]int
	reg := flow.NewRegistry()
	var tries atomic.Int32
	require.NoError(t, flow.Register(reg, "flaky", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		if len(rows) == 1 {
			mu.Lock()
			single = append(single, append([]int(nil), rows...))
			mu.Unlock()
		}
		for _, v := range rows {
			if v == 7 && tries.Add(1) <= 2 {
				h.FailRow(v, errBadRow)
				continue
			}
			h.CommitRow(v)
		}
		return nil
	}))
	require.NoError(t, flow.Register(reg, "count", func(_ context.Context, _ *flow.Handle[int, int], rows []int) error {
		got.Add(int64(len(rows)))
		return nil
	}))
	f := reg.Define("f")
	require.NoError(t, f.Link(&config.Func{Name: "flaky", Mode: config.ModeCalculate, Option: config.FuncOption{RetryTimes: 2}}, nil))
	require.NoError(t, f.Link(&config.Func{Name: "count", Mode: config.ModeExpand}, nil))
	for i := range 10 {
		require.NoError(t, f.CommitRow(context.Background(), i))
	}
	require.NoError(t, f.Run(context.Background()))
	assert.EqualValues(t, 10, got.Load())
	assert.Equal(t, [][]int{{7}, {7}}, single, "two retries, each of the failed row alone")
	st := f.Pipeline().Stats()
	assert.EqualValues(t, 0, st.Failed)
}

// Under the default policy a failed row fails the run, with its error.
func TestFailRowDefaultPolicyFailsTheRun(t *testing.T) {
	var got atomic.Int64
	f := failRowFlow(t, config.ModeCalculate, 0, func(v, _ int) bool { return v == 3 }, &got)
	commitRows(t, f, 1, 2, 3, 4)
	err := f.Run(context.Background())
	require.ErrorIs(t, err, errBadRow)
	assert.Contains(t, err.Error(), "flow f: function check")
	st := f.Pipeline().Stats()
	assert.EqualValues(t, 1, st.Failed)
	assert.Equal(t, st.In, st.Delivered+st.Filtered+st.Failed+st.Dropped+st.DeadLettered+st.Abandoned)
}

// The chunk rule: a returned error fails every row of the chunk.
func TestReturnedErrorFailsTheChunk(t *testing.T) {
	reg := flow.NewRegistry()
	require.NoError(t, flow.Register(reg, "all", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		return errBadRow
	}, stage.OnError(stage.Skip)))
	f := reg.Define("f")
	require.NoError(t, f.Link(&config.Func{Name: "all", Mode: config.ModeExpand}, nil))
	commitRows(t, f, 1, 2, 3)
	require.NoError(t, f.Run(context.Background()))
	assert.EqualValues(t, 3, f.Pipeline().Stats().Failed)
}

// DataReuse passes on the input rows less the failed ones; a row that is
// not the call's fails the call.
func TestFailRowWithDataReuseAndForeignRows(t *testing.T) {
	reg := flow.NewRegistry()
	require.NoError(t, flow.Register(reg, "reuse", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		for _, v := range rows {
			if v == 2 {
				h.FailRow(v, errBadRow)
			}
			if v == 9 {
				h.FailRow(1000, errBadRow) // not one of the rows
			}
		}
		return h.Next(flow.DataReuse)
	}, stage.OnError(stage.Skip)))
	var got atomic.Int64
	require.NoError(t, flow.Register(reg, "count", func(_ context.Context, _ *flow.Handle[int, int], rows []int) error {
		got.Add(int64(len(rows)))
		return nil
	}))
	f := reg.Define("f")
	require.NoError(t, f.Link(&config.Func{Name: "reuse", Mode: config.ModeVerify}, nil))
	require.NoError(t, f.Link(&config.Func{Name: "count", Mode: config.ModeExpand}, nil))
	commitRows(t, f, 1, 2, 3)
	require.NoError(t, f.Run(context.Background()))
	st := f.Pipeline().Stats()
	assert.EqualValues(t, 2, got.Load())
	assert.EqualValues(t, 1, st.Failed)
	assert.EqualValues(t, 0, st.Filtered)

	commitRows(t, f, 8, 9)
	require.NoError(t, f.Run(context.Background()))
	st = f.Pipeline().Stats()
	assert.EqualValues(t, 2, st.Failed, "FailRow of a foreign row fails the whole call")
	assert.Contains(t, nodeStats(t, st, "reuse").LastError, "not one of this call's rows")
}

// Item 25: return_duration is KisFlow's retry interval, not a per-call
// timeout: the function's calls get no deadline from it, and a failing
// call is retried.
func TestReturnDurationIsTheRetryInterval(t *testing.T) {
	reg := flow.NewRegistry()
	var calls atomic.Int32
	var deadlines atomic.Int32
	require.NoError(t, flow.Register(reg, "once", func(ctx context.Context, h *flow.Handle[int, int], rows []int) error {
		if _, ok := ctx.Deadline(); ok {
			deadlines.Add(1)
		}
		if calls.Add(1) == 1 {
			return errInjected
		}
		return nil
	}))
	f := reg.Define("f")
	require.NoError(t, f.Link(&config.Func{Name: "once", Mode: config.ModeExpand, Option: config.FuncOption{RetryTimes: 1, ReturnDuration: 1}}, nil))
	require.NoError(t, f.CommitRow(context.Background(), 1))
	require.NoError(t, f.Run(context.Background()))
	assert.EqualValues(t, 2, calls.Load(), "retried once after return_duration")
	assert.Zero(t, deadlines.Load(), "no call had a deadline")
	assert.EqualValues(t, 1, f.Pipeline().Stats().Delivered)
}
