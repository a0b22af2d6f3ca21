package pipeline

import (
	"context"
	"maps"

	"github.com/kisflow/kisflow/internal/engine"
)

// Tracer receives the spans of a pipeline's runs (see Trace). Module
// github.com/kisflow/kisflow/tracing implements it with OpenTelemetry.
// Its methods are called from the pipeline's goroutines and from
// submitting callers: they must be safe for concurrent use, and should be
// cheap for the inputs a sampler drops.
//
// An input is one unit of rows entering the pipeline: a Submit,
// SubmitBatch or SubmitAck call, an Emit call (a run of messages with the
// same headers for EmitHeaders), or a batch that a slice, sequence or
// channel source sends. Its span continues the trace of the ctx it is
// started with: the caller's, the run's for a source batch, or the one
// Extract found in the headers of the messages the rows came from. The
// value StartInput returns travels with every row derived from the input,
// through fan-out, merges and feedback loops, as acknowledgement does; a
// stage's span for a batch gets the values of the inputs its rows derive
// from (links, in OpenTelemetry's words).
type Tracer interface {
	// StartInput starts the span of an input of rows rows entering flow
	// through source, and returns the trace context that rows derived
	// from it carry (nil: none) and the function that ends the span,
	// called once when the input was taken, with the error that refused
	// part of it (nil when it was wholly accepted).
	StartInput(ctx context.Context, flow, source string, rows int) (trace any, end func(err error))
	// StartBatch starts the span of stage of flow processing a batch of
	// rows rows derived from the inputs whose trace contexts are links
	// (the slice is valid only during the call). It returns a ctx derived
	// from ctx and carrying the span, which the stage's function gets,
	// and the function that ends the span, called once with the number
	// of rows that failed or were dead-lettered and, when the batch was
	// not completed (the run failed or is ending), the error.
	StartBatch(ctx context.Context, flow, stage string, rows int, links []any) (context.Context, func(failed int, err error))
	// Inject writes the trace context of ctx into headers.
	Inject(ctx context.Context, headers map[string]string)
	// Extract returns ctx carrying the trace context found in headers,
	// or ctx itself when there is none.
	Extract(ctx context.Context, headers map[string]string) context.Context
}

// Trace makes the pipeline report spans to t: one per input, and one per
// batch that each stage processes (per chunk for a stage with several
// workers). Stage functions get the batch's span in their ctx, so spans
// they start are its children, and InjectTrace writes its trace context
// into the headers of messages they send. Without Trace (or with a nil
// t) a pipeline traces nothing and pays one nil check per batch. With
// it, each input costs a span and one allocation, and Submit, which is
// then an input of its own, costs as much per row.
func Trace(t Tracer) Option {
	return func(c *config) { c.tracer = t }
}

// tracerKey is the context key under which a traced pipeline's run
// context carries its Tracer, for InjectTrace.
type tracerKey struct{}

// InjectTrace writes into headers the trace context of ctx, as the Tracer
// of the pipeline that gave ctx to a stage function sees it: the span of
// the batch being processed. It returns headers, or a new map when
// headers is nil and there is a trace context to write. Without a Tracer,
// or outside a pipeline's functions, it returns headers unchanged.
//
// A stage that sends rows to a broker calls it for the headers of the
// messages it writes, so that the flow reading them continues the trace
// (see Emitter.EmitHeaders); the Save adapter of package connectors/stream
// does.
func InjectTrace(ctx context.Context, headers map[string]string) map[string]string {
	t, _ := ctx.Value(tracerKey{}).(Tracer)
	if t == nil {
		return headers
	}
	if headers != nil {
		t.Inject(ctx, headers)
		return headers
	}
	h := make(map[string]string, 2)
	t.Inject(ctx, h)
	if len(h) == 0 {
		return nil
	}
	return h
}

// traced returns ctx carrying the pipeline's tracer, for InjectTrace.
func (p *Pipeline) traced(ctx context.Context) context.Context {
	if p.cfg.tracer == nil {
		return ctx
	}
	return context.WithValue(ctx, tracerKey{}, p.cfg.tracer)
}

// startInput starts the span of an input of rows rows entering through
// source, when the pipeline traces: it returns the tracker that carries
// the input's trace context (t itself, or a new tracker without done when
// t is nil) and the function that ends the span. Without a tracer, or
// for no rows, it returns t and nil.
func (p *Pipeline) startInput(ctx context.Context, source string, rows int, t *engine.Tracker) (*engine.Tracker, func(error)) {
	tr := p.cfg.tracer
	if tr == nil || rows == 0 {
		return t, nil
	}
	if t == nil {
		t = engine.NewTracker(nil)
	}
	ref, end := tr.StartInput(ctx, p.name, source, rows)
	t.Trace = ref
	return t, end
}

// headerRuns splits rows, whose message headers are headers, into runs of
// consecutive rows with equal headers: it returns the end index of each
// run.
func headerRuns(headers []map[string]string, rows int, dst []int) []int {
	for i := 1; i < rows; i++ {
		if !maps.Equal(headerAt(headers, i-1), headerAt(headers, i)) {
			dst = append(dst, i)
		}
	}
	if rows > 0 {
		dst = append(dst, rows)
	}
	return dst
}

func headerAt(headers []map[string]string, i int) map[string]string {
	if i < len(headers) {
		return headers[i]
	}
	return nil
}
