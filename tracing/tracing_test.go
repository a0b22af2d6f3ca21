package tracing_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/fanout"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
	"github.com/kisflow/kisflow/tracing"
)

func inc(_ context.Context, v int) (int, error) { return v + 1, nil }

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// Batches of rows from several inputs start a trace of their own and
// link to every input; a batch of one input's rows is also its child.
func TestBatchSpansLinkTheirInputs(t *testing.T) {
	rec, tp := recorder(t, sdktrace.AlwaysSample())
	p := pipeline.New("flow", pipeline.Trace(tracing.New(tracing.TracerProvider(tp), tracing.MaxLinks(2))))
	src := pipeline.FromFunc(p, "src", func(ctx context.Context, emit *pipeline.Emitter[int]) error {
		h := func(tp string) map[string]string { return map[string]string{"traceparent": tp} }
		a := h("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
		b := h("00-0af7651916cd43dd8448eb211c80319d-b7ad6b7169203332-01")
		c := h("00-0af7651916cd43dd8448eb211c80319e-b7ad6b7169203333-01")
		if _, err := emit.EmitHeaders(ctx, []int{1, 2, 3}, []map[string]string{a, b, c}, nil); err != nil {
			return err
		}
		_, err := emit.EmitHeaders(ctx, []int{4}, []map[string]string{a}, nil)
		return err
	})
	pipeline.Discard(pipeline.Then(src, stage.Map("inc", inc)), "end")
	require.NoError(t, p.Run(context.Background()))
	allEnded(t, rec)

	var inputs, batches []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		switch s.Name() {
		case "src":
			inputs = append(inputs, s)
		case "inc":
			batches = append(batches, s)
		}
	}
	require.Len(t, inputs, 4, "one input per message headers")
	require.Len(t, batches, 2)
	for _, in := range inputs {
		assert.True(t, in.Parent().IsRemote(), "an input continues the trace of its headers")
		assert.Equal(t, in.Parent().TraceID(), in.SpanContext().TraceID())
	}
	many, one := batches[0], batches[1]
	assert.False(t, many.Parent().IsValid(), "rows of several inputs: a trace of its own")
	require.Len(t, many.Links(), 2, "MaxLinks")
	assert.Equal(t, inputs[0].SpanContext(), many.Links()[0].SpanContext)
	assert.Equal(t, inputs[1].SpanContext(), many.Links()[1].SpanContext)
	n, _ := attr(many, "kisflow.inputs")
	assert.EqualValues(t, 3, n, "every input is counted")
	require.Len(t, one.Links(), 1)
	assert.Equal(t, inputs[3].SpanContext(), one.Links()[0].SpanContext)
	assert.Equal(t, inputs[3].SpanContext().SpanID(), one.Parent().SpanID(), "rows of one input: its child")
	assert.Equal(t, inputs[3].SpanContext().TraceID(), one.SpanContext().TraceID())
}

// Cancelling a run with rows in every stage, a source blocked under
// backpressure and a stage with several workers leaves no span unended;
// the spans cut short say why.
func TestCancelledRunEndsEverySpan(t *testing.T) {
	rec, tp := recorder(t, sdktrace.AlwaysSample())
	p := pipeline.New("flow", pipeline.Trace(tracing.New(tracing.TracerProvider(tp))), pipeline.BatchSize(4))
	in, s := pipeline.NewInput[int](p, "in")
	var entered atomic.Int32
	started := make(chan struct{})
	branches := fanout.Broadcast(pipeline.Then(s, stage.Map("inc", inc)), "copy", 2)
	block := stage.Map("block", func(ctx context.Context, v int) (int, error) {
		if entered.Add(1) == 1 {
			close(started)
		}
		<-ctx.Done()
		return v, ctx.Err()
	}, stage.Concurrency(3), stage.Buffer(backpressure.Buffer{Capacity: 8}))
	pipeline.Discard(fanout.Merge(pipeline.Then(branches[0], block), branches[1]), "end")
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, p.Start(ctx))
	submitted := make(chan error, 1)
	go func() {
		for i := 0; ; i++ {
			if _, err := in.SubmitAck(ctx, []int{i, i + 1, i + 2}, nil); err != nil {
				submitted <- err
				return
			}
		}
	}()
	<-started
	cancel()
	require.ErrorIs(t, p.Wait(), context.Canceled)
	require.Error(t, <-submitted)
	allEnded(t, rec)
	var cut int
	for _, s := range rec.Ended() {
		if s.Name() == "block" {
			assert.Equal(t, codes.Error, s.Status().Code)
			cut++
		}
	}
	assert.Positive(t, cut)
}

// The sampler decides: with ParentBased(TraceIDRatioBased(0)), only the
// inputs whose parent was sampled are traced, and everything derived
// from them.
func TestSamplingFollowsTheParent(t *testing.T) {
	rec, tp := recorder(t, sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0)))
	tr := tracing.New(tracing.TracerProvider(tp))
	p := pipeline.New("flow", pipeline.Trace(tr))
	in, s := pipeline.NewInput[int](p, "in")
	pipeline.Discard(pipeline.Then(s, stage.Map("inc", inc)), "end")
	require.NoError(t, p.Start(context.Background()))
	sampled := tr.Extract(context.Background(), map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"})
	unsampled := tr.Extract(context.Background(), map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319d-b7ad6b7169203331-00"})
	done := make(chan struct{}, 3)
	ack := func() { done <- struct{}{} }
	for _, ctx := range []context.Context{sampled, unsampled, context.Background()} {
		_, err := in.SubmitAck(ctx, []int{1}, ack)
		require.NoError(t, err)
		<-done // one input per batch
	}
	in.Close()
	require.NoError(t, p.Wait())
	var names []string
	for _, s := range rec.Ended() {
		assert.Equal(t, trace.TraceID{0x0a, 0xf7, 0x65, 0x19, 0x16, 0xcd, 0x43, 0xdd, 0x84, 0x48, 0xeb, 0x21, 0x1c, 0x80, 0x31, 0x9c}, s.SpanContext().TraceID())
		names = append(names, s.Name())
	}
	assert.ElementsMatch(t, []string{"in", "inc", "end"}, names, "the sampled input and its batches, nothing else")
}

func TestPropagation(t *testing.T) {
	_, tp := recorder(t, sdktrace.AlwaysSample())
	ctx, span := tp.Tracer("test").Start(context.Background(), "request")
	defer span.End()

	h := map[string]string{}
	tracing.New().Inject(ctx, h)
	require.Contains(t, h, "traceparent", "W3C Trace Context by default")
	got := trace.SpanContextFromContext(tracing.New().Extract(context.Background(), h))
	assert.Equal(t, span.SpanContext().TraceID(), got.TraceID())
	assert.True(t, got.IsRemote())

	m, err := baggage.NewMember("tenant", "acme")
	require.NoError(t, err)
	bag, err := baggage.New(m)
	require.NoError(t, err)
	tr := tracing.New(tracing.Propagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})))
	h = map[string]string{}
	tr.Inject(baggage.ContextWithBaggage(ctx, bag), h)
	assert.Equal(t, "tenant=acme", h["baggage"])
	assert.Equal(t, "acme", baggage.FromContext(tr.Extract(context.Background(), h)).Member("tenant").Value())
}

func TestMaxLinksPanics(t *testing.T) {
	assert.PanicsWithValue(t, "tracing: MaxLinks must be at least 1", func() { tracing.MaxLinks(0) })
}

// A function's failing rows show in the failures attribute of its batch
// span; a batch that fails the run ends with the error.
func TestFailures(t *testing.T) {
	bad := errors.New("odd row")
	odd := func(_ context.Context, v int) (int, error) {
		if v%2 == 1 {
			return 0, bad
		}
		return v, nil
	}
	for _, policy := range []stage.ErrorPolicy{stage.Skip, stage.FailFlow} {
		rec, tp := recorder(t, sdktrace.AlwaysSample())
		p := pipeline.New("flow", pipeline.Trace(tracing.New(tracing.TracerProvider(tp))), pipeline.BatchSize(10))
		pipeline.Discard(pipeline.Then(pipeline.FromSlice(p, "src", seq(100)), stage.Map("odd", odd, stage.OnError(policy))), "end")
		err := p.Run(context.Background())
		allEnded(t, rec)
		failures := int64(0)
		for _, s := range rec.Ended() {
			if s.Name() != "odd" {
				continue
			}
			n, ok := attr(s, "kisflow.failures")
			require.True(t, ok)
			failures += n
			if policy == stage.FailFlow && n > 0 {
				assert.Equal(t, codes.Error, s.Status().Code)
				assert.Contains(t, s.Status().Description, "odd row")
			}
		}
		if policy == stage.Skip {
			require.NoError(t, err)
			assert.EqualValues(t, 50, failures)
		} else {
			require.ErrorIs(t, err, bad)
			assert.EqualValues(t, 1, failures)
		}
	}
}

// An input of an unsampled trace and a batch of rows from one unsampled
// input get no span of their own, and the function's ctx carries the
// trace context, unsampled; with EverySpan the sampler decides, as it
// does for a sampler that samples the children of unsampled parents.
func TestUnsampledInputs(t *testing.T) {
	childrenToo := sdktrace.ParentBased(sdktrace.NeverSample(),
		sdktrace.WithLocalParentNotSampled(sdktrace.AlwaysSample()),
		sdktrace.WithRemoteParentNotSampled(sdktrace.AlwaysSample()))
	for _, every := range []bool{false, true} {
		for _, remote := range []bool{false, true} {
			rec, tp := recorder(t, childrenToo)
			opts := []tracing.Option{tracing.TracerProvider(tp)}
			if every {
				opts = append(opts, tracing.EverySpan())
			}
			tr := tracing.New(opts...)
			p := pipeline.New("flow", pipeline.Trace(tr))
			var sent []map[string]string
			pipeline.To(pipeline.FromSlice(p, "src", seq(3)), stage.SinkBatch("save", func(ctx context.Context, _ []int) error {
				sent = append(sent, pipeline.InjectTrace(ctx, nil))
				return nil
			}))
			ctx := context.Background()
			if remote {
				// The run continues an unsampled trace: the source's
				// batches are its children.
				ctx = tr.Extract(ctx, map[string]string{"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"})
			}
			require.NoError(t, p.Run(ctx))
			require.Len(t, sent, 1)
			var names []string
			for _, s := range rec.Ended() {
				names = append(names, s.Name())
			}
			switch {
			case every && remote:
				assert.ElementsMatch(t, []string{"src", "save"}, names, "EverySpan: the sampler samples the children of the unsampled trace")
				assert.Regexp(t, `^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$`, sent[0]["traceparent"])
			case every:
				assert.Equal(t, []string{"save"}, names, "EverySpan: the sampler samples the child of the unsampled input")
				assert.Regexp(t, `^00-[0-9a-f]{32}-[0-9a-f]{16}-01$`, sent[0]["traceparent"])
			case remote:
				assert.Empty(t, names)
				assert.Equal(t, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", sent[0]["traceparent"],
					"the unsampled trace context goes on as it came")
			default:
				assert.Empty(t, names)
				assert.Regexp(t, `^00-[0-9a-f]{32}-[0-9a-f]{16}-00$`, sent[0]["traceparent"], "the input's context, unsampled, goes on")
			}
		}
	}
}
