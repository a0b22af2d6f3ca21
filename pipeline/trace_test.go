package pipeline_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/fanout"
	"github.com/kisflow/kisflow/internal/tracetest"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// inputIDs returns the ids of the input spans among spans.
func inputIDs(spans []tracetest.Span) []int {
	var ids []int
	for _, s := range spans {
		if s.Input {
			ids = append(ids, s.ID)
		}
	}
	return ids
}

// rowsOf adds up the rows of spans.
func rowsOf(spans []tracetest.Span) int {
	n := 0
	for _, s := range spans {
		n += s.Rows
	}
	return n
}

func TestTraceSourceBatchesAndStages(t *testing.T) {
	for _, workers := range []int{1, 3} {
		tr := &tracetest.Tracer{}
		p := pipeline.New("flow", pipeline.Trace(tr), pipeline.BatchSize(100))
		s := pipeline.Then(pipeline.FromSlice(p, "src", seq(1000)), stage.Map("inc", inc, stage.Concurrency(workers)))
		s = pipeline.Then(s, stage.Verify("even", func(_ context.Context, v int) (bool, error) { return v%2 == 0, nil }))
		var c collector[int]
		pipeline.To(s, c.sink("sink"))
		require.NoError(t, p.Run(tracetest.With(context.Background(), 7)))
		require.Len(t, c.got(), 500)

		inputs := tr.Named("src")
		require.Len(t, inputs, 10, "one input per source batch")
		for _, in := range inputs {
			assert.True(t, in.Input)
			assert.Equal(t, "flow", in.Flow)
			assert.Equal(t, 100, in.Rows)
			assert.Equal(t, 7, in.Parent, "a source batch continues the trace of the run's ctx")
			assert.NoError(t, in.Err)
		}
		ids := inputIDs(inputs)
		for stageName, rows := range map[string]int{"inc": 1000, "even": 1000, "sink": 500} {
			spans := tr.Named(stageName)
			require.NotEmpty(t, spans, stageName)
			assert.Equal(t, rows, rowsOf(spans), "stage %s: the rows of its batch spans", stageName)
			for _, s := range spans {
				assert.False(t, s.Input)
				require.Len(t, s.Links, 1, "stage %s: rows of one source batch link to its input", stageName)
				assert.Contains(t, ids, s.Links[0])
				assert.Zero(t, s.Failed)
				assert.NoError(t, s.Err)
			}
		}
		assert.Empty(t, tr.Unended(), "workers %d", workers)
	}
}

func TestTraceSubmitContinuesTheCallersTrace(t *testing.T) {
	tr := &tracetest.Tracer{}
	p := pipeline.New("flow", pipeline.Trace(tr))
	in, s := pipeline.NewInput[int](p, "in")
	var c collector[int]
	pipeline.To(pipeline.Then(s, stage.Map("inc", inc)), c.sink("sink"))
	require.NoError(t, p.Start(context.Background()))
	ctx := context.Background()
	acked := make(chan struct{})
	_, err := in.SubmitAck(tracetest.With(ctx, 1), []int{1, 2, 3}, func() { close(acked) })
	require.NoError(t, err)
	require.NoError(t, in.Submit(tracetest.With(ctx, 2), 4))
	require.NoError(t, in.Submit(ctx, 5))
	ok, err := in.TrySubmit(6)
	require.NoError(t, err)
	in.Close()
	require.NoError(t, p.Wait())
	<-acked
	want := []int{2, 3, 4, 5, 6}
	if ok { // TrySubmit may find the batcher busy flushing
		want = append(want, 7)
	}
	assert.ElementsMatch(t, want, c.got())

	inputs := tr.Named("in")
	require.Len(t, inputs, 3, "SubmitAck and each Submit are inputs; TrySubmit starts none")
	assert.Equal(t, []int{1, 2, 0}, []int{inputs[0].Parent, inputs[1].Parent, inputs[2].Parent})
	assert.Equal(t, []int{3, 1, 1}, []int{inputs[0].Rows, inputs[1].Rows, inputs[2].Rows})
	var linked []int
	rows := 0
	for _, s := range tr.Named("inc") {
		linked = append(linked, s.Links...)
		rows += s.Rows
	}
	assert.Equal(t, len(want), rows)
	slices.Sort(linked)
	assert.Equal(t, inputIDs(inputs), slices.Compact(linked), "every input is linked, once per batch holding its rows")
	assert.Empty(t, tr.Unended())
}

func TestTraceFollowsRowsThroughFanOutAndFeedback(t *testing.T) {
	tr := &tracetest.Tracer{}
	p := pipeline.New("flow", pipeline.Trace(tr))
	in, s := pipeline.NewInput[int](p, "in")
	fb, back := pipeline.NewFeedback[int](p, "again")
	loop := pipeline.Then(fanout.Merge(s, back), stage.Map("loop", func(ctx context.Context, v int) (int, error) {
		if pipeline.Hops(ctx) == 0 {
			return v, fb.Send(ctx, []int{v + 100}) // once round the loop
		}
		return v, nil
	}))
	branches := fanout.Broadcast(loop, "copy", 2)
	left := pipeline.Then(branches[0], stage.Map("left", inc))
	right := pipeline.Then(branches[1], stage.Map("right", inc))
	var c collector[int]
	pipeline.To(fanout.Merge(left, right), c.sink("sink"))
	require.NoError(t, p.Start(context.Background()))
	_, err := in.SubmitAck(context.Background(), []int{1}, nil)
	require.NoError(t, err)
	in.Close()
	require.NoError(t, p.Wait())
	assert.ElementsMatch(t, []int{2, 2, 102, 102}, c.got())

	inputs := tr.Named("in")
	require.Len(t, inputs, 1)
	for name, batches := range map[string]int{"loop": 2, "left": 2, "right": 2, "sink": 4} {
		spans := tr.Named(name)
		require.Len(t, spans, batches, "stage %s: the row and its feedback copy, on each branch", name)
		for _, s := range spans {
			assert.Equal(t, []int{inputs[0].ID}, s.Links, "stage %s: every row derives from the one input", name)
		}
	}
	assert.Empty(t, tr.Unended())
}

func TestTraceEmitHeadersOneInputPerRunOfHeaders(t *testing.T) {
	tr := &tracetest.Tracer{}
	p := pipeline.New("flow", pipeline.Trace(tr), pipeline.BatchSize(2))
	h1, h2 := map[string]string{"trace": "1"}, map[string]string{"trace": "2"}
	src := pipeline.FromFunc(p, "src", func(ctx context.Context, emit *pipeline.Emitter[int]) error {
		// Runs: [0,1] from h1, [2] from h2, [3] without headers; then one
		// run of five rows over three batches.
		if _, err := emit.EmitHeaders(tracetest.With(ctx, 9), []int{0, 1, 2, 3},
			[]map[string]string{h1, {"trace": "1"}, h2, nil}, nil); err != nil {
			return err
		}
		_, err := emit.EmitHeaders(ctx, []int{4, 5, 6, 7, 8}, []map[string]string{h2}, nil) // shorter: the rest have none
		return err
	})
	var c collector[int]
	pipeline.To(src, c.sink("sink"))
	require.NoError(t, p.Run(context.Background()))
	require.Len(t, c.got(), 9)

	inputs := tr.Named("src")
	require.Len(t, inputs, 5)
	type in struct{ parent, rows int }
	var got []in
	for _, s := range inputs {
		got = append(got, in{s.Parent, s.Rows})
	}
	assert.Equal(t, []in{{1, 2}, {2, 1}, {9, 1}, {2, 1}, {0, 4}}, got,
		"an input continues the trace of its headers, or of ctx without any")
	id := inputIDs(inputs)
	var links [][]int
	for _, s := range tr.Named("sink") {
		links = append(links, s.Links)
	}
	assert.Equal(t, [][]int{{id[0]}, {id[1], id[2]}, {id[3], id[4]}, {id[4]}, {id[4]}}, links,
		"a batch links to the inputs of its rows, no more")
	assert.Empty(t, tr.Unended())
}

func TestTraceFailuresAndErrors(t *testing.T) {
	bad := errors.New("bad row")
	odd := func(_ context.Context, v int) (int, error) {
		if v%2 == 1 {
			return 0, bad
		}
		return v, nil
	}
	t.Run("skip", func(t *testing.T) {
		tr := &tracetest.Tracer{}
		p := pipeline.New("flow", pipeline.Trace(tr), pipeline.BatchSize(10))
		pipeline.Discard(pipeline.Then(pipeline.FromSlice(p, "src", seq(100)), stage.Map("odd", odd, stage.OnError(stage.Skip))), "end")
		require.NoError(t, p.Run(context.Background()))
		failed := 0
		for _, s := range tr.Named("odd") {
			assert.NoError(t, s.Err)
			failed += s.Failed
		}
		assert.Equal(t, 50, failed)
		assert.Empty(t, tr.Unended())
	})
	t.Run("fail", func(t *testing.T) {
		tr := &tracetest.Tracer{}
		p := pipeline.New("flow", pipeline.Trace(tr), pipeline.BatchSize(10))
		pipeline.Discard(pipeline.Then(pipeline.FromSlice(p, "src", seq(100)), stage.Map("odd", odd)), "end")
		require.ErrorIs(t, p.Run(context.Background()), bad)
		spans := tr.Named("odd")
		require.NotEmpty(t, spans)
		assert.ErrorIs(t, spans[0].Err, bad, "the batch that failed the run ends with its error")
		assert.Equal(t, 1, spans[0].Failed)
		assert.Empty(t, tr.Unended())
	})
}

func TestTraceCancelledRunEndsEverySpan(t *testing.T) {
	for _, workers := range []int{1, 4} {
		tr := &tracetest.Tracer{}
		p := pipeline.New("flow", pipeline.Trace(tr), pipeline.BatchSize(4))
		in, s := pipeline.NewInput[int](p, "in")
		var entered atomic.Int32
		started := make(chan struct{})
		block := stage.Map("block", func(ctx context.Context, v int) (int, error) {
			if entered.Add(1) == 1 {
				close(started)
			}
			<-ctx.Done()
			return v, ctx.Err()
		}, stage.Concurrency(workers), stage.Buffer(backpressure.Buffer{Capacity: 4}))
		pipeline.Discard(pipeline.Then(s, block), "end")
		ctx, cancel := context.WithCancel(context.Background())
		require.NoError(t, p.Start(ctx))
		// Keep submitting until the edge is full and a Submit blocks; then
		// cancel.
		done := make(chan error, 1)
		go func() {
			for i := 0; ; i++ {
				if _, err := in.SubmitAck(ctx, []int{i, i}, func() { t.Error("abandoned input acknowledged") }); err != nil {
					done <- err
					return
				}
			}
		}()
		<-started
		cancel()
		require.ErrorIs(t, p.Wait(), context.Canceled)
		require.Error(t, <-done)
		assert.Empty(t, tr.Unended(), "workers %d: every span ended", workers)
		var ended bool
		for _, s := range tr.Named("block") {
			ended = ended || s.Err != nil
		}
		assert.True(t, ended, "a batch cut short ends with the run's error")
	}
}

func TestInjectTrace(t *testing.T) {
	ctx := context.Background()
	assert.Nil(t, pipeline.InjectTrace(ctx, nil), "outside a pipeline: nothing")
	mine := map[string]string{"a": "b"}
	assert.Equal(t, map[string]string{"a": "b"}, pipeline.InjectTrace(ctx, mine))

	run := func(opts ...pipeline.Option) []map[string]string {
		p := pipeline.New("flow", opts...)
		var got []map[string]string
		pipeline.To(pipeline.FromSlice(p, "src", seq(3)), stage.SinkBatch("save", func(ctx context.Context, _ []int) error {
			got = append(got, pipeline.InjectTrace(ctx, nil), pipeline.InjectTrace(ctx, map[string]string{"a": "b"}))
			return nil
		}))
		require.NoError(t, p.Run(ctx))
		return got
	}
	assert.Equal(t, []map[string]string{nil, {"a": "b"}}, run(), "untraced: headers unchanged")
	tr := &tracetest.Tracer{}
	got := run(pipeline.Trace(tr))
	span := tr.Named("save")
	require.Len(t, span, 1)
	id := strconv.Itoa(span[0].ID)
	assert.Equal(t, []map[string]string{{"trace": id}, {"a": "b", "trace": id}}, got, "the batch span's context")
}
