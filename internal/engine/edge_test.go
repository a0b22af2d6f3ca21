package engine_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/internal/engine"
)

func batch(rows ...int) *engine.Batch[int] {
	b := engine.PoolOf[int]().Get(len(rows))
	b.Rows = append(b.Rows, rows...)
	return b
}

// fill sends batches of one row each until the edge is full.
func fill(t *testing.T, e *engine.Edge[int], n int) {
	t.Helper()
	for i := range n {
		require.NoError(t, e.Send(context.Background(), batch(i)))
	}
}

func drain(e *engine.Edge[int]) []int {
	var got []int
	for {
		select {
		case b, ok := <-e.C():
			if !ok {
				return got
			}
			got = append(got, b.Rows...)
		default:
			return got
		}
	}
}

func TestBlockWaitsForRoom(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := engine.NewEdge[int]("a->b", engine.EdgeConfig{Capacity: 2}, 1)
		fill(t, e, 2)
		sent := make(chan error)
		go func() { sent <- e.Send(context.Background(), batch(9)) }()
		synctest.Wait()
		select {
		case <-sent:
			t.Fatal("send on a full blocking edge returned before a receive")
		default:
		}
		time.Sleep(time.Second) // fake time: accounts as blocked
		e.Took(<-e.C())
		require.NoError(t, <-sent)
		st := e.Stats()
		assert.EqualValues(t, 3, st.Sent)
		assert.Zero(t, st.Dropped)
		assert.GreaterOrEqual(t, st.Blocked, time.Second)
		assert.Equal(t, 2, st.Depth)
	})
}

func TestBlockHonoursContext(t *testing.T) {
	e := engine.NewEdge[int]("a->b", engine.EdgeConfig{Capacity: 1}, 1)
	fill(t, e, 1)
	cause := errors.New("shutting down")
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(cause)
	err := e.Send(ctx, batch(1))
	assert.ErrorIs(t, err, cause)
	assert.EqualValues(t, 1, e.Stats().Sent, "a send that failed puts nothing on the edge")
}

func TestDropNewest(t *testing.T) {
	e := engine.NewEdge[int]("a->b", engine.EdgeConfig{Capacity: 2, Policy: backpressure.DropNewest}, 1)
	fill(t, e, 2)
	acked := false
	b := batch(7, 8, 9)
	b.Track(engine.NewTracker(func() { acked = true }))
	require.NoError(t, e.Send(context.Background(), b))
	st := e.Stats()
	assert.EqualValues(t, 3, st.Dropped)
	assert.EqualValues(t, 5, st.Sent)
	assert.True(t, acked, "dropped rows count as handled")
	assert.Equal(t, []int{0, 1}, drain(e))
}

func TestDropOldest(t *testing.T) {
	e := engine.NewEdge[int]("a->b", engine.EdgeConfig{Capacity: 2, Policy: backpressure.DropOldest}, 1)
	fill(t, e, 2)
	require.NoError(t, e.Send(context.Background(), batch(5, 6)))
	st := e.Stats()
	assert.EqualValues(t, 1, st.Dropped)
	assert.Equal(t, []int{1, 5, 6}, drain(e))
}

func TestFailPolicy(t *testing.T) {
	e := engine.NewEdge[int]("a->b", engine.EdgeConfig{Capacity: 1, Policy: backpressure.Fail}, 1)
	fill(t, e, 1)
	err := e.Send(context.Background(), batch(1))
	require.ErrorIs(t, err, backpressure.ErrOverflow)
	assert.Contains(t, err.Error(), "a->b")
}

func TestEdgeClosesAfterLastWriter(t *testing.T) {
	e := engine.NewEdge[int]("a+b->c", engine.EdgeConfig{Capacity: 8}, 2)
	e.CloseWriter()
	select {
	case <-e.C():
		t.Fatal("edge closed while a writer is left")
	default:
	}
	e.CloseWriter()
	_, ok := <-e.C()
	assert.False(t, ok)
	assert.Panics(t, e.CloseWriter)
	assert.Equal(t, 8, e.Stats().Capacity, "8 batches of one row")
}

func TestPolicyNames(t *testing.T) {
	for p, want := range map[backpressure.Policy]string{
		backpressure.Block: "block", backpressure.DropNewest: "drop-newest",
		backpressure.DropOldest: "drop-oldest", backpressure.Fail: "fail",
	} {
		assert.Equal(t, want, p.String())
	}
}
