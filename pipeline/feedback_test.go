package pipeline_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/fanout"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// A loop: rows below 10 go round again, one more each time, through a
// feedback stream merged into the stage's input. Every row leaves at 10,
// the run ends on its own, and acks wait for the rows that went round.
func TestFeedbackLoop(t *testing.T) {
	for _, sh := range []struct {
		name string
		opts []stage.Option
	}{
		{"n=1", nil},
		{"n=4", []stage.Option{stage.Concurrency(4)}},
		{"n=4/unordered", []stage.Option{stage.Concurrency(4), stage.Unordered()}},
		{"tiny edges", []stage.Option{stage.Buffer(backpressure.Buffer{Capacity: 1})}},
	} {
		t.Run(sh.name, func(t *testing.T) {
			p := pipeline.New("loop", pipeline.BatchSize(16))
			in, src := pipeline.NewInput[int](p, "in")
			fb, back := pipeline.NewFeedback[int](p, "again")
			var maxHops atomic.Int64
			step := pipeline.Then(fanout.Merge(src, back), stage.MapBatch("step", func(ctx context.Context, rows []int) ([]int, error) {
				var out, again []int
				for _, v := range rows {
					if v < 10 {
						again = append(again, v+1)
					} else {
						out = append(out, v)
					}
				}
				if h := int64(pipeline.Hops(ctx)); h > maxHops.Load() {
					maxHops.Store(h)
				}
				if len(again) > 0 {
					if err := fb.Send(ctx, again); err != nil {
						return nil, err
					}
				}
				return out, nil
			}, sh.opts...))
			var c collector[int]
			pipeline.To(step, c.sink("sink"))
			require.NoError(t, p.Start(context.Background()))
			var acks atomic.Int32
			n, err := in.SubmitAck(context.Background(), seq(100), func() {
				acks.Add(1)
				assert.Len(t, c.got(), 100, "ack after every row that went round is delivered")
			})
			require.NoError(t, err)
			require.Equal(t, 100, n)
			in.Close()
			require.NoError(t, p.Wait())
			got := c.got()
			require.Len(t, got, 100)
			for _, v := range got {
				assert.GreaterOrEqual(t, v, 10)
			}
			assert.EqualValues(t, 1, acks.Load())
			assert.EqualValues(t, 10, maxHops.Load(), "row 0 went round ten times")
			st := p.Stats()
			assert.EqualValues(t, 100, st.Delivered)
			conserved(t, st)
		})
	}
}

// Send outside a stage function is a programming error: it panics.
func TestFeedbackSendOutsideStage(t *testing.T) {
	p := pipeline.New("loop")
	fb, back := pipeline.NewFeedback[int](p, "again")
	pipeline.Discard(fanout.Merge(pipeline.FromSlice(p, "src", seq(3)), back), "sink")
	require.Panics(t, func() { _ = fb.Send(context.Background(), []int{1}) })
	require.NoError(t, p.Run(context.Background()))
	conserved(t, p.Stats())
}

// A cancelled loop abandons what is queued and acks nothing.
func TestFeedbackLoopCancelled(t *testing.T) {
	p := pipeline.New("loop")
	in, src := pipeline.NewInput[int](p, "in")
	fb, back := pipeline.NewFeedback[int](p, "again")
	ctx, cancel := context.WithCancel(context.Background())
	var rounds atomic.Int64
	step := pipeline.Then(fanout.Merge(src, back), stage.Map("forever", func(ctx context.Context, v int) (int, error) {
		if rounds.Add(1) == 5000 {
			cancel()
		}
		return v, fb.Send(ctx, []int{v})
	}))
	pipeline.Discard(step, "sink")
	require.NoError(t, p.Start(ctx))
	var acks atomic.Int32
	_, err := in.SubmitAck(context.Background(), seq(10), func() { acks.Add(1) })
	require.NoError(t, err)
	require.ErrorIs(t, p.Wait(), context.Canceled)
	assert.Zero(t, acks.Load())
	conserved(t, p.Stats())
}
