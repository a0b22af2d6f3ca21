package engine_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/internal/engine"
)

func edges(n, capacity int) []*engine.Edge[int] {
	out := make([]*engine.Edge[int], n)
	for i := range out {
		out[i] = engine.NewEdge[int]("out", engine.EdgeConfig{Capacity: capacity}, 1)
	}
	return out
}

// feed sends one tracked batch of rows and closes in; acked is set when
// every row derived from it is handled.
func feed(in *engine.Edge[int], rows []int, acked *bool) {
	b := engine.PoolOf[int]().Get(len(rows))
	b.Rows = append(b.Rows, rows...)
	b.Track(engine.NewTracker(func() { *acked = true }))
	_ = in.Send(context.Background(), b)
	in.CloseWriter()
}

func drainAll(e *engine.Edge[int]) (rows []int) {
	for b := range e.C() {
		rows = append(rows, b.Rows...)
		engine.PoolOf[int]().Put(b)
	}
	return rows
}

func TestBroadcastCopiesAndTracks(t *testing.T) {
	in := engine.NewEdge[int]("in", engine.EdgeConfig{Capacity: 8}, 1)
	outs := edges(3, 4)
	var acked bool
	feed(in, []int{1, 2, 3}, &acked)
	var c engine.Counters
	require.NoError(t, engine.Broadcast(context.Background(), in, outs, &c))
	for i, o := range outs {
		assert.False(t, acked, "acked before branch %d handled its copy", i)
		assert.Equal(t, []int{1, 2, 3}, drainAll(o))
	}
	assert.True(t, acked)
	st := c.Snapshot()
	assert.EqualValues(t, 3, st.In)
	assert.EqualValues(t, 9, st.Out)
}

func TestDistribute(t *testing.T) {
	in := engine.NewEdge[int]("in", engine.EdgeConfig{Capacity: 8}, 1)
	outs := edges(2, 4)
	var acked bool
	feed(in, []int{1, 2, 3, 4, 5, 6}, &acked)
	var c engine.Counters
	require.NoError(t, engine.Distribute(context.Background(), in, outs, &c, func(v int) (int, error) { return v % 2, nil }))
	a, b := drainAll(outs[0]), drainAll(outs[1])
	assert.Len(t, append(a, b...), 6)
	assert.True(t, acked)
	branchOf := map[int]int{} // key (parity) -> branch
	for i, part := range [][]int{a, b} {
		for _, v := range part {
			if br, ok := branchOf[v%2]; ok {
				assert.Equal(t, br, i, "one key, one branch")
			}
			branchOf[v%2] = i
		}
	}

	in = engine.NewEdge[int]("in", engine.EdgeConfig{Capacity: 8}, 1)
	outs = edges(2, 4)
	acked = false
	feed(in, []int{1, 2, 3}, &acked)
	errThree := errors.New("no branch for three")
	err := engine.Distribute(context.Background(), in, outs, &c, func(v int) (int, error) {
		if v == 3 {
			return 0, errThree
		}
		return v % 2, nil
	})
	require.ErrorIs(t, err, errThree)
	assert.False(t, acked, "a failed pick acknowledges nothing")
	for _, o := range outs {
		drainAll(o)
	}
}

func TestCancelledFanoutReturns(t *testing.T) {
	in := engine.NewEdge[int]("in", engine.EdgeConfig{Capacity: 8}, 1)
	outs := edges(2, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.NoError(t, engine.Broadcast(ctx, in, outs, &engine.Counters{}), "cancellation is reported by the pipeline, not here")
	for _, o := range outs {
		_, ok := <-o.C()
		assert.False(t, ok, "outputs are closed")
	}
}
