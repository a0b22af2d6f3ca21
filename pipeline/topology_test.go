package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/fanout"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/row"
	"github.com/kisflow/kisflow/stage"
)

func TestBroadcastEveryBranchGetsEveryRow(t *testing.T) {
	p := pipeline.New("flow")
	branches := fanout.Broadcast(pipeline.FromSlice(p, "src", seq(2000)), "fan", 3)
	cs := make([]collector[int], 3)
	for i, b := range branches {
		pipeline.To(b, cs[i].sink(fmt.Sprint("sink", i)))
	}
	require.NoError(t, p.Run(context.Background()))
	for i := range cs {
		assert.Equal(t, seq(2000), cs[i].got(), "branch %d in order", i)
	}
}

func TestPartitionKeepsKeysInOrder(t *testing.T) {
	type ev struct{ key, n int }
	rows := make([]ev, 5000)
	for i := range rows {
		rows[i] = ev{key: i % 17, n: i}
	}
	p := pipeline.New("flow")
	parts := fanout.Partition(pipeline.FromSlice(p, "src", rows), "part", 4, func(e ev) int { return e.key })
	cs := make([]collector[ev], 4)
	for i, s := range parts {
		s = pipeline.Then(s, stage.Map(fmt.Sprint("work", i), func(_ context.Context, e ev) (ev, error) { return e, nil }, stage.Concurrency(3)))
		pipeline.To(s, cs[i].sink(fmt.Sprint("sink", i)))
	}
	require.NoError(t, p.Run(context.Background()))
	total := 0
	owner := map[int]int{}
	for i := range cs {
		last := map[int]int{}
		for _, e := range cs[i].got() {
			total++
			if o, ok := owner[e.key]; ok {
				assert.Equal(t, o, i, "key %d split over branches", e.key)
			}
			owner[e.key] = i
			if prev, ok := last[e.key]; ok {
				assert.Greater(t, e.n, prev, "key %d out of order", e.key)
			}
			last[e.key] = e.n
		}
	}
	assert.Equal(t, 5000, total)
}

func TestBalancePrefersTheFreeBranch(t *testing.T) {
	p := pipeline.New("flow", pipeline.BatchSize(10))
	branches := fanout.Balance(pipeline.FromSlice(p, "src", seq(1000)), "balance", 2, backpressure.Buffer{Capacity: 1})
	release := make(chan struct{})
	var slow, fast atomic.Int64
	var once sync.Once
	pipeline.To(branches[0], stage.Sink("slow", func(context.Context, int) error {
		once.Do(func() { <-release }) // stuck on its first row until the fast branch is done
		slow.Add(1)
		return nil
	}))
	pipeline.To(branches[1], stage.Sink("fast", func(context.Context, int) error {
		if fast.Add(1) == 900 {
			close(release)
		}
		return nil
	}))
	err := p.Run(context.Background())
	require.NoError(t, err)
	assert.EqualValues(t, 1000, slow.Load()+fast.Load(), "each row exactly once")
	assert.GreaterOrEqual(t, fast.Load(), int64(900), "the free branch took the work")
	conserved(t, p.Stats())
}

func TestRouteByName(t *testing.T) {
	p := pipeline.New("flow")
	routes := fanout.Route(pipeline.FromSlice(p, "src", seq(300)), "route", func(v int) string {
		if v%3 == 0 {
			return "fizz"
		}
		return "other"
	}, "fizz", "other")
	var fizz, other collector[int]
	pipeline.To(routes["fizz"], fizz.sink("fizz"))
	pipeline.To(routes["other"], other.sink("other"))
	require.NoError(t, p.Run(context.Background()))
	assert.Len(t, fizz.got(), 100)
	assert.Len(t, other.got(), 200)

	p = pipeline.New("flow")
	routes = fanout.Route(pipeline.FromSlice(p, "src", seq(10)), "route", func(v int) string { return "nowhere" }, "a")
	pipeline.Discard(routes["a"], "sink")
	err := p.Run(context.Background())
	require.ErrorIs(t, err, fanout.ErrNoRoute)
	assert.Contains(t, err.Error(), "flow flow: stage route")
}

func TestMergeJoinsStreams(t *testing.T) {
	p := pipeline.New("flow")
	a := pipeline.FromSlice(p, "a", seq(500))
	b := pipeline.Then(pipeline.FromSlice(p, "b", seq(500)), stage.Map("neg", func(_ context.Context, v int) (int, error) { return -v - 1, nil }))
	var c collector[int]
	pipeline.To(fanout.Merge(a, b), c.sink("sink"))
	require.NoError(t, p.Run(context.Background()))
	got := c.got()
	assert.Len(t, got, 1000)
	var pos []int
	for _, v := range got {
		if v >= 0 {
			pos = append(pos, v)
		}
	}
	assert.Equal(t, seq(500), pos, "each input keeps its order")
	st := p.Stats()
	require.Len(t, st.Edges, 2, "b->neg, and one merged edge a+neg->sink")
	assert.Equal(t, []string{"a", "neg"}, st.Edges[1].From)
}

func TestDeadLetters(t *testing.T) {
	p := pipeline.New("flow")
	bad := errors.New("odd row")
	s := pipeline.Then(pipeline.FromSlice(p, "src", seq(100)), stage.Map("check", func(_ context.Context, v int) (int, error) {
		if v%2 == 1 {
			return 0, bad
		}
		return v, nil
	}, stage.OnError(stage.DeadLetter), stage.Concurrency(2)))
	var good collector[int]
	var dead collector[row.Failure]
	pipeline.To(s, good.sink("sink"))
	pipeline.To(pipeline.DeadLetters(p), dead.sink("dlq"))
	require.NoError(t, p.Run(context.Background()))
	assert.Len(t, good.got(), 50)
	require.Len(t, dead.got(), 50)
	for _, f := range dead.got() {
		assert.Equal(t, "check", f.Stage)
		assert.Equal(t, "flow", f.Flow)
		assert.ErrorIs(t, f.Err, bad)
		assert.Equal(t, 1, f.Row.(int)%2)
	}
	st := p.Stats()
	assert.EqualValues(t, 50, st.DeadLettered)
	assert.Zero(t, st.Failed, "dead-lettered rows are not counted failed as well")
	assert.EqualValues(t, 50, st.Delivered, "dead letters are not counted delivered")
	conserved(t, st)
}

func TestOverflowPoliciesWithFullBuffers(t *testing.T) {
	for _, policy := range []backpressure.Policy{backpressure.Block, backpressure.DropNewest, backpressure.DropOldest} {
		t.Run(policy.String(), func(t *testing.T) {
			p := pipeline.New("flow", pipeline.BatchSize(1))
			in, s := pipeline.NewInput[int](p, "in")
			release := make(chan struct{})
			var got collector[int]
			var first sync.Once
			pipeline.To(s, stage.Sink("slow", func(ctx context.Context, v int) error {
				first.Do(func() { <-release })
				got.mu.Lock()
				got.rows = append(got.rows, v)
				got.mu.Unlock()
				return nil
			}, stage.Buffer(backpressure.Buffer{Capacity: 2, Policy: policy})))
			require.NoError(t, p.Start(context.Background()))
			ctx := context.Background()
			if policy == backpressure.Block {
				// The sink is stuck until the submitter has been pushed
				// back: the fourth row cannot be placed (sink 1, edge 2,
				// batcher 1 hold the first rows) so Submit must block.
				ctx4, cancel := context.WithCancel(ctx)
				for i := range 4 {
					require.NoError(t, in.Submit(ctx, i))
				}
				go cancel()
				require.ErrorIs(t, in.Submit(ctx4, 4), context.Canceled, "a full blocking edge pushes back")
				close(release)
				for i := 4; i < 50; i++ {
					require.NoError(t, in.Submit(ctx, i))
				}
			} else {
				for i := range 50 {
					require.NoError(t, in.Submit(ctx, i), "dropping edges never block the submitter")
				}
				close(release)
			}
			<-release
			p.Stop()
			require.NoError(t, p.Wait())
			st := p.Stats()
			conserved(t, st)
			assert.EqualValues(t, 50, st.In)
			if policy == backpressure.Block {
				assert.Zero(t, st.Dropped)
				assert.Equal(t, seq(50), got.got())
			} else {
				assert.Positive(t, st.Dropped, "a full edge dropped rows")
				assert.EqualValues(t, 50-st.Dropped, len(got.got()))
				assert.True(t, slices.IsSorted(got.got()))
			}
		})
	}
}

func TestFailPolicyFailsTheRun(t *testing.T) {
	p := pipeline.New("flow", pipeline.BatchSize(1))
	release := make(chan struct{})
	s := pipeline.Then(pipeline.FromSlice(p, "src", seq(100)), stage.Map("inc", inc))
	pipeline.To(s, stage.Sink("stuck", func(ctx context.Context, _ int) error {
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}, stage.Buffer(backpressure.Buffer{Capacity: 1, Policy: backpressure.Fail})))
	err := p.Run(context.Background())
	close(release)
	require.ErrorIs(t, err, backpressure.ErrOverflow)
	assert.Contains(t, err.Error(), "flow flow: stage inc: edge inc->stuck")
}

// TestConservationRandomTopologies builds random graphs of one-to-one
// nodes with injected errors and checks the accounting rule on each.
func TestConservationRandomTopologies(t *testing.T) {
	for seed := range 30 {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 7))
			p := pipeline.New("flow", pipeline.BatchSize(1+rng.IntN(64)))
			n := 200 + rng.IntN(2000)
			opts := func() []stage.Option {
				o := []stage.Option{stage.Concurrency(1 + rng.IntN(4)), stage.OnError(stage.Skip)}
				if rng.IntN(2) == 0 {
					o = append(o, stage.Unordered())
				}
				if rng.IntN(3) == 0 {
					o = append(o, stage.Buffer(backpressure.Buffer{Capacity: 1, Policy: backpressure.Policy(rng.IntN(3))}))
				}
				return o
			}
			mod := 2 + rng.IntN(9)
			var s pipeline.Stream[int]
			if rng.IntN(2) == 0 {
				s = pipeline.FromSlice(p, "src", seq(n))
			} else {
				a := pipeline.FromSlice(p, "srcA", seq(n/2))
				b := pipeline.FromSlice(p, "srcB", seq(n-n/2))
				s = fanout.Merge(a, b)
			}
			for i := range 1 + rng.IntN(4) {
				name := fmt.Sprint("st", i)
				switch rng.IntN(3) {
				case 0:
					s = pipeline.Then(s, stage.Verify(name, func(_ context.Context, v int) (bool, error) { return v%mod != 0, nil }, opts()...))
				case 1:
					s = pipeline.Then(s, stage.Map(name, func(_ context.Context, v int) (int, error) {
						if v%(mod+1) == 1 {
							return 0, errors.New("injected")
						}
						return v + 1, nil
					}, opts()...))
				case 2:
					s = pipeline.Then(s, stage.Map(name, func(_ context.Context, v int) (int, error) {
						if v%(mod+3) == 2 {
							panic("injected panic")
						}
						return v, nil
					}, opts()...))
				}
			}
			var sinks []pipeline.Stream[int]
			switch rng.IntN(4) {
			case 0:
				sinks = fanout.Partition(s, "part", 2+rng.IntN(3), func(v int) int { return v })
			case 1:
				sinks = fanout.Balance(s, "balance", 2+rng.IntN(3), backpressure.Buffer{})
			case 2:
				r := fanout.Route(s, "route", func(v int) string { return []string{"x", "y"}[v%2] }, "x", "y")
				sinks = []pipeline.Stream[int]{r["x"], r["y"]}
			default:
				sinks = []pipeline.Stream[int]{s}
			}
			for i, b := range sinks {
				pipeline.To(b, stage.Sink(fmt.Sprint("sink", i), func(_ context.Context, v int) error {
					if v%(mod+5) == 3 {
						return errors.New("sink failure")
					}
					return nil
				}, stage.OnError(stage.Skip)))
			}
			require.NoError(t, p.Run(context.Background()))
			st := p.Stats()
			assert.EqualValues(t, n, st.In)
			conserved(t, st)
		})
	}
}
