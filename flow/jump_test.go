package flow_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/memory"
	"github.com/kisflow/kisflow/flow"
	"github.com/kisflow/kisflow/stage"
)

// Item 20: rows that jump go through the target function's own stage:
// counted there, under its retries and error policy, never by more
// goroutines than it has workers, and the accounting rule holds.
func TestJumpGoesThroughTheTargetsStage(t *testing.T) {
	reg := flow.NewRegistry()
	var inside, most, calls atomic.Int32
	var failedOnce atomic.Bool
	require.NoError(t, flow.Register(reg, "raise", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		calls.Add(1)
		n := inside.Add(1)
		defer inside.Add(-1)
		for most.Load() < n && !most.CompareAndSwap(most.Load(), n) {
		}
		for _, v := range rows {
			if v >= 100 && failedOnce.CompareAndSwap(false, true) {
				return errors.New("flaky once") // a jumped chunk: retried by raise's own policy
			}
		}
		for _, v := range rows {
			h.CommitRow(v + 1)
		}
		return nil
	}))
	require.NoError(t, flow.Register(reg, "check", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		var low, ok []int
		for _, v := range rows {
			if v%100 < 3 {
				low = append(low, v+100) // marks a row that jumped
			} else {
				ok = append(ok, v)
			}
		}
		if len(low) > 0 {
			// Jump the low rows back; pass the others on: the chunk is
			// split by committing the low ones and jumping.
			h.CommitRowBatch(low)
			if len(ok) > 0 {
				return errors.New("test splits chunks by value, not expected here")
			}
			return h.Next(flow.JumpFunc("raise"))
		}
		h.CommitRowBatch(ok)
		return nil
	}))
	var delivered atomic.Int64
	require.NoError(t, flow.Register(reg, "sink", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		delivered.Add(int64(len(rows)))
		return nil
	}))
	f := reg.Define("f")
	require.NoError(t, f.Link(&config.Func{Name: "raise", Mode: config.ModeCalculate, Option: config.FuncOption{RetryTimes: 1}}, nil))
	require.NoError(t, f.Link(&config.Func{Name: "check", Mode: config.ModeCalculate}, nil))
	require.NoError(t, f.Link(&config.Func{Name: "sink", Mode: config.ModeExpand}, nil))
	for range 50 {
		require.NoError(t, f.CommitRow(context.Background(), 0)) // 0 -> 1: low, jumps as 101 -> 102: low, jumps as 202 -> 203: passes
	}
	require.NoError(t, f.Run(context.Background()))
	assert.EqualValues(t, 50, delivered.Load())
	assert.EqualValues(t, 1, most.Load(), "raise has one worker: never two calls at once")
	st := f.Pipeline().Stats()
	raise := nodeStats(t, st, "raise")
	assert.EqualValues(t, 150, raise.In, "raise counts the rows that jumped back to it")
	assert.EqualValues(t, 1, raise.Retried, "raise's retry applied to a jumped chunk")
	assert.EqualValues(t, 100, nodeStats(t, st, "raise.jumps").In)
	assert.EqualValues(t, 50, st.Delivered)
	assert.Equal(t, st.In, st.Delivered+st.Filtered+st.Failed+st.Dropped+st.DeadLettered+st.Abandoned)
}

// Item 21: KisFlow's flowName5 (funcName1, funcName2, then jumpFunc, which
// commits nothing and jumps back to funcName1) loops: the target runs
// again on what jumpFunc got, as KisFlow runs it again on the data it
// had. The loop ends in ErrJumpLoop naming the functions.
func TestKisFlowJumpLoopEndsInErrJumpLoop(t *testing.T) {
	// funcName2 saves to ConnName1, a redis connector: the in-memory topic
	// stands in for it here.
	conns := connectors.NewRegistry()
	conns.MustRegister("redis", func(cfg connectors.Config) (connectors.Connector, error) { return memory.New(cfg), nil })
	reg := flow.NewRegistry(flow.Connectors(conns))
	defer reg.Close(context.Background())
	type Order struct {
		OrderID int `json:"order_id"`
		UserID  int `json:"user_id"`
	}
	var calls atomic.Int32
	pass := func(_ context.Context, h *flow.Handle[Order, Order], rows []Order) error {
		if h.FuncName() == "funcName1" {
			calls.Add(1)
		}
		h.CommitRowBatch(rows)
		return nil
	}
	for _, n := range []string{"funcName1", "funcName2", "funcName3", "abortFunc", "dataReuseFunc", "noResultFunc"} {
		require.NoError(t, flow.Register(reg, n, pass))
	}
	require.NoError(t, flow.Register(reg, "jumpFunc", func(_ context.Context, h *flow.Handle[Order, Order], _ []Order) error {
		return h.Next(flow.JumpFunc("funcName1"))
	}))
	var out lines
	studentFuncs(t, reg, &out)
	require.NoError(t, reg.LoadDir("../config/testdata/kisflow/load_conf"))
	f, err := reg.NewFlow("flowName5")
	require.NoError(t, err)
	require.NoError(t, f.CommitRow(context.Background(), `{"order_id":1,"user_id":2}`))
	err = f.Run(context.Background())
	require.ErrorIs(t, err, flow.ErrJumpLoop)
	assert.Contains(t, err.Error(), "function jumpFunc")
	assert.Contains(t, err.Error(), "from jumpFunc to funcName1")
	assert.EqualValues(t, 16+1, calls.Load(), "funcName1 ran once, then once per jump")
	st := f.Pipeline().Stats()
	assert.Equal(t, st.In, st.Delivered+st.Filtered+st.Failed+st.Dropped+st.DeadLettered+st.Abandoned)
	assert.EqualValues(t, 1, st.Failed, "the looping row fails the run, counted once")
}

// A jump with Skip: the looping chunk fails alone and the rest go on.
func TestJumpLoopUnderSkip(t *testing.T) {
	reg := flow.NewRegistry()
	require.NoError(t, flow.Register(reg, "spin", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		for _, v := range rows {
			if v < 0 {
				return h.Next(flow.JumpFunc("spin")) // commits nothing: its input goes round
			}
		}
		h.CommitRowBatch(rows)
		return nil
	}, stage.OnError(stage.Skip)))
	var delivered atomic.Int64
	require.NoError(t, flow.Register(reg, "sink", func(_ context.Context, h *flow.Handle[int, int], rows []int) error {
		delivered.Add(int64(len(rows)))
		return nil
	}))
	f := reg.Define("f")
	require.NoError(t, f.Link(&config.Func{Name: "spin", Mode: config.ModeCalculate}, nil))
	require.NoError(t, f.Link(&config.Func{Name: "sink", Mode: config.ModeExpand}, nil))
	require.NoError(t, f.CommitRow(context.Background(), -1))
	require.NoError(t, f.Run(context.Background()))
	commitRows(t, f, 1, 2, 3)
	require.NoError(t, f.Run(context.Background()))
	assert.EqualValues(t, 3, delivered.Load())
	st := f.Pipeline().Stats()
	assert.Equal(t, st.In, st.Delivered+st.Filtered+st.Failed+st.Dropped+st.DeadLettered+st.Abandoned)
}
