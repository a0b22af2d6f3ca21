package fanout_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/fanout"
	"github.com/kisflow/kisflow/row"
	"github.com/kisflow/kisflow/stage"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func edges(n, capacity int) []*backpressure.Edge[int] {
	out := make([]*backpressure.Edge[int], n)
	for i := range out {
		out[i] = backpressure.NewEdge[int]("out", backpressure.Config{Capacity: capacity}, 1)
	}
	return out
}

// feed sends one tracked batch of rows and closes in; acked is set when
// every row derived from it is handled.
func feed(in *backpressure.Edge[int], rows []int, acked *bool) {
	b := row.PoolOf[int]().Get(len(rows))
	b.Rows = append(b.Rows, rows...)
	b.Track(row.NewTracker(func() { *acked = true }))
	_ = in.Send(context.Background(), b)
	in.CloseWriter()
}

func drain(e *backpressure.Edge[int]) (rows []int) {
	for b := range e.C() {
		rows = append(rows, b.Rows...)
		row.PoolOf[int]().Put(b)
	}
	return rows
}

func TestBroadcastCopiesAndTracks(t *testing.T) {
	in := backpressure.NewEdge[int]("in", backpressure.Config{}, 1)
	outs := edges(3, 4)
	var acked bool
	feed(in, []int{1, 2, 3}, &acked)
	var c stage.Counters
	require.NoError(t, fanout.Broadcast(context.Background(), in, outs, &c))
	for i, o := range outs {
		assert.False(t, acked, "acked before branch %d handled its copy", i)
		assert.Equal(t, []int{1, 2, 3}, drain(o))
	}
	assert.True(t, acked)
	st := c.Snapshot()
	assert.EqualValues(t, 3, st.In)
	assert.EqualValues(t, 9, st.Out)
}

func TestPartitionAndRoute(t *testing.T) {
	in := backpressure.NewEdge[int]("in", backpressure.Config{}, 1)
	outs := edges(2, 4)
	var acked bool
	feed(in, []int{1, 2, 3, 4, 5, 6}, &acked)
	var c stage.Counters
	require.NoError(t, fanout.Partition(context.Background(), in, outs, func(v int) bool { return v%2 == 0 }, &c))
	a, b := drain(outs[0]), drain(outs[1])
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

	in = backpressure.NewEdge[int]("in", backpressure.Config{}, 1)
	outs = edges(2, 4)
	acked = false
	feed(in, []int{1, 2, 3}, &acked)
	err := fanout.Route(context.Background(), in, outs, map[string]int{"odd": 0, "even": 1}, func(v int) string {
		if v == 3 {
			return "three"
		}
		return map[bool]string{true: "even", false: "odd"}[v%2 == 0]
	}, &c)
	require.ErrorIs(t, err, fanout.ErrNoRoute)
	assert.Contains(t, err.Error(), `"three"`)
	assert.False(t, acked, "a failed route acknowledges nothing")
	for _, o := range outs {
		drain(o)
	}
}

func TestCancelledFanoutReturns(t *testing.T) {
	in := backpressure.NewEdge[int]("in", backpressure.Config{}, 1)
	outs := edges(2, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	assert.NoError(t, fanout.Broadcast(ctx, in, outs, &stage.Counters{}), "cancellation is reported by the pipeline, not here")
	for _, o := range outs {
		_, ok := <-o.C()
		assert.False(t, ok, "outputs are closed")
	}
}
