package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/fanout"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/row"
	"github.com/kisflow/kisflow/stage"
)

// chainRun builds a four-stage chain (Map, FlatMap, Verify, Sink) with
// faults on some rows, runs it over n rows and returns what the sink got,
// the dead letters and the stats. extra is added to every stage's options.
func chainRun(t *testing.T, n int, policy stage.ErrorPolicy, extra ...stage.Option) ([]int, []row.Failure, pipeline.Stats, error) {
	t.Helper()
	opts := func(o ...stage.Option) []stage.Option { return append(o, extra...) }
	p := pipeline.New("chain", pipeline.BatchSize(7))
	s := pipeline.Then(pipeline.FromSlice(p, "src", seq(n)), stage.Map("double", func(_ context.Context, v int) (int, error) {
		if v%17 == 5 {
			return 0, fmt.Errorf("row %d refused", v)
		}
		return 2 * v, nil
	}, opts(stage.OnError(policy))...))
	s = pipeline.Then(s, stage.FlatMap("twice", func(_ context.Context, v int, emit func(int)) error {
		emit(v)
		if v%23 == 4 {
			panic(fmt.Sprintf("row %d panics after one emit", v))
		}
		emit(v + 1)
		return nil
	}, opts(stage.OnError(policy))...))
	s = pipeline.Then(s, stage.Verify("third", func(_ context.Context, v int) (bool, error) { return v%3 != 0, nil }, opts()...))
	var c collector[int]
	pipeline.To(s, c.sink("sink", opts()...))
	var dead func() []row.Failure
	if policy == stage.DeadLetter {
		dead = pipeline.Collect(pipeline.DeadLetters(p), "dead")
	}
	err := p.Run(context.Background())
	var dl []row.Failure
	if dead != nil {
		dl = dead()
	}
	return c.got(), dl, p.Stats(), err
}

// nodeCounts is what must not change between a fused and an unfused run.
func nodeCounts(st pipeline.Stats) map[string][6]int64 {
	m := map[string][6]int64{}
	for _, n := range st.Nodes {
		m[n.Name] = [6]int64{n.In, n.Out, n.Delivered, n.Filtered, n.Failed, n.DeadLettered}
	}
	return m
}

func TestFusedChainBehavesAsUnfused(t *testing.T) {
	for _, policy := range []stage.ErrorPolicy{stage.Skip, stage.DeadLetter} {
		t.Run(policy.String(), func(t *testing.T) {
			got, dead, fused, err := chainRun(t, 500, policy)
			require.NoError(t, err)
			wantGot, wantDead, apart, err := chainRun(t, 500, policy, stage.Unfused())
			require.NoError(t, err)

			assert.Equal(t, wantGot, got, "same rows, in the same order")
			assert.Len(t, dead, len(wantDead))
			assert.Equal(t, nodeCounts(apart), nodeCounts(fused), "every stage counted alike")
			assert.Positive(t, fused.Nodes[1].Failed+fused.Nodes[1].DeadLettered, "the faults fired")
			conserved(t, fused)

			for _, e := range fused.Edges {
				chained := slices.Contains([]string{"double", "twice", "third"}, e.From[0])
				assert.Equal(t, chained, e.Fused, "edge %s", e.Name)
				if e.Fused {
					assert.Zero(t, e.Capacity, "edge %s", e.Name)
				}
			}
			for _, e := range apart.Edges {
				assert.False(t, e.Fused, "edge %s of the unfused run", e.Name)
			}
		})
	}
}

func TestFusedChainFailsWithTheFailingStage(t *testing.T) {
	_, _, st, err := chainRun(t, 500, stage.FailFlow)
	var se *stage.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "double", se.Stage, "the error names the fused stage that failed, not the chain's head")
	conserved(t, st)
	assert.Equal(t, pipeline.StateFailed, st.State)
	for _, n := range st.Nodes {
		assert.Equal(t, pipeline.StateDone, n.State, "node %s", n.Name)
	}
}

func TestFusedChainPanicNamesItsStage(t *testing.T) {
	p := pipeline.New("panics")
	s := pipeline.Then(pipeline.FromSlice(p, "src", seq(100)), stage.Map("inc", inc))
	s = pipeline.Then(s, stage.Map("boom", func(_ context.Context, v int) (int, error) {
		if v == 50 {
			panic("fifty")
		}
		return v, nil
	}))
	var c collector[int]
	pipeline.To(s, c.sink("sink"))
	err := p.Run(context.Background())
	var se *stage.Error
	var pe *stage.PanicError
	require.ErrorAs(t, err, &se)
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "boom", se.Stage)
	conserved(t, p.Stats())
}

func TestFusedChainRetriesInItsStage(t *testing.T) {
	var calls atomic.Int64
	p := pipeline.New("retries")
	s := pipeline.Then(pipeline.FromSlice(p, "src", seq(50)), stage.Map("inc", inc))
	s = pipeline.Then(s, stage.Map("flaky", func(_ context.Context, v int) (int, error) {
		if v == 10 && calls.Add(1) < 3 {
			return 0, errors.New("not yet")
		}
		return v, nil
	}, stage.Retry(3, 0)))
	var c collector[int]
	pipeline.To(s, c.sink("sink"))
	require.NoError(t, p.Run(context.Background()))
	assert.Equal(t, seq(51)[1:], c.got())
	st := p.Stats()
	assert.Equal(t, int64(2), st.Nodes[2].Retried)
	conserved(t, st)
}

func TestFusedChainCancelledMidRun(t *testing.T) {
	for _, at := range []int{1, 40, 333} {
		t.Run(fmt.Sprint(at), func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var taken atomic.Int64
			p := pipeline.New("cancel", pipeline.BatchSize(16))
			s := pipeline.Then(pipeline.FromSlice(p, "src", seq(1000)), stage.Map("inc", inc))
			s = pipeline.Then(s, stage.Verify("all", func(context.Context, int) (bool, error) { return true, nil }))
			pipeline.To(s, stage.Sink("slow", func(ctx context.Context, v int) error {
				if taken.Add(1) == int64(at) {
					cancel() // mid-batch, mid-chain
				}
				return nil
			}))
			err := p.Run(ctx)
			require.ErrorIs(t, err, context.Canceled)
			st := p.Stats()
			conserved(t, st)
			assert.Positive(t, st.Abandoned, "rows left in the chain are abandoned, not lost")
		})
	}
}

func TestFusedChainKeepsBackpressureAndAcks(t *testing.T) {
	// A slow sink at the end of a chain holds the chain's head, which holds
	// its input: SubmitAck acks only once every row of the input is through.
	p := pipeline.New("acks", pipeline.BatchSize(4))
	in, s := pipeline.NewInput[int](p, "in")
	s = pipeline.Then(s, stage.Map("inc", inc))
	release := make(chan struct{})
	pipeline.To(s, stage.Sink("gate", func(ctx context.Context, v int) error {
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}))
	require.NoError(t, p.Start(context.Background()))
	acked := make(chan struct{})
	n, err := in.SubmitAck(context.Background(), seq(10), func() { close(acked) })
	require.NoError(t, err)
	require.Equal(t, 10, n)
	select {
	case <-acked:
		t.Fatal("acked before the sink took the rows")
	default:
	}
	close(release)
	<-acked
	in.Close()
	require.NoError(t, p.Wait())
	conserved(t, p.Stats())
}

func TestStagesThatAreNotFused(t *testing.T) {
	p := pipeline.New("apart")
	s := pipeline.FromSlice(p, "src", seq(100))
	s = pipeline.Then(s, stage.Map("a", inc))
	s = pipeline.Then(s, stage.Map("b", inc, stage.Buffer(backpressure.Buffer{Capacity: 8})))
	s = pipeline.Then(s, stage.Map("c", inc, stage.Unfused()))
	s = pipeline.Then(s, stage.Map("d", inc, stage.Concurrency(2)))
	s = pipeline.Then(s, stage.Map("e", inc))
	br := fanout.Broadcast(s, "fan", 2)
	l := pipeline.Then(br[0], stage.Map("left", inc))
	r := pipeline.Then(br[1], stage.Map("right", inc))
	merged := pipeline.Then(fanout.Merge(l, r), stage.Map("after", inc))
	got := pipeline.Collect(merged, "sink")
	require.NoError(t, p.Run(context.Background()))
	assert.Len(t, got(), 200)

	fused := map[string]bool{}
	for _, e := range p.Stats().Edges {
		fused[e.Name] = e.Fused
	}
	assert.Equal(t, map[string]bool{
		"src->a":            false, // a source is not a stage
		"a->b":              false, // b asks for a buffer
		"b->c":              false, // c is Unfused
		"c->d":              false, // d has two workers
		"d->e":              false, // so has the stage before e
		"e->fan":            false, // a fan-out is not a stage
		"fan->left":         false,
		"fan->right":        false,
		"left+right->after": false, // a merge
		"after->sink":       true,
	}, fused)
}

func TestFusedChainWithFeedback(t *testing.T) {
	// A fused stage sends rows round a loop: they inherit its batch's
	// lineage, so the input is acknowledged only once they are through.
	p := pipeline.New("loop")
	in, src := pipeline.NewInput[int](p, "in")
	fb, back := pipeline.NewFeedback[int](p, "back")
	s := pipeline.Then(fanout.Merge(src, back), stage.Map("inc", inc))
	s = pipeline.Then(s, stage.FlatMap("route", func(ctx context.Context, v int, emit func(int)) error {
		if v%10 != 0 {
			return fb.Send(ctx, []int{v})
		}
		emit(v)
		return nil
	}))
	got := pipeline.Collect(s, "sink")
	require.NoError(t, p.Start(context.Background()))
	acked := make(chan struct{})
	_, err := in.SubmitAck(context.Background(), []int{0, 10, 20, 31}, func() { close(acked) })
	require.NoError(t, err)
	<-acked
	in.Close()
	require.NoError(t, p.Wait())
	assert.ElementsMatch(t, []int{10, 20, 30, 40}, got())
	conserved(t, p.Stats())
}

func TestFusedChainStopDrains(t *testing.T) {
	p := pipeline.New("stop")
	var sent atomic.Int64
	src := pipeline.FromFunc(p, "gen", func(ctx context.Context, e *pipeline.Emitter[int]) error {
		for i := 0; ; i++ {
			if _, err := e.Emit(ctx, []int{i}, nil); err != nil {
				return nil
			}
			sent.Add(1)
		}
	})
	s := pipeline.Then(src, stage.Map("inc", inc))
	var once atomic.Bool
	pipeline.To(s, stage.Sink("sink", func(_ context.Context, v int) error {
		if v > 100 && once.CompareAndSwap(false, true) {
			p.Stop()
		}
		return nil
	}))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, p.Run(ctx))
	st := p.Stats()
	conserved(t, st)
	assert.Zero(t, st.Abandoned, "a stopped chain drains")
	assert.Equal(t, st.Nodes[0].Delivered, st.Nodes[2].Delivered)
	assert.True(t, slices.ContainsFunc(st.Edges, func(e pipeline.EdgeStats) bool { return e.Fused }))
}
