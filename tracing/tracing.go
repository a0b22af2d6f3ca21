package tracing

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/kisflow/kisflow/pipeline"
)

// ScopeName is the instrumentation scope of the spans: the name of the
// OpenTelemetry tracer that New gets from its provider.
const ScopeName = "github.com/kisflow/kisflow/tracing"

// DefaultMaxLinks is how many input spans a batch span links to, at most,
// by default: the SDK's default limit of links per span.
const DefaultMaxLinks = 128

// The attributes of the spans.
const (
	// AttrFlow is the name of the flow (pipeline).
	AttrFlow = attribute.Key("kisflow.flow")
	// AttrStage is the name of the stage of a batch span, or of the
	// source of an input span.
	AttrStage = attribute.Key("kisflow.stage")
	// AttrRows is the number of rows of the input or batch.
	AttrRows = attribute.Key("kisflow.rows")
	// AttrFailures is the number of rows of the batch that failed (or
	// were dead-lettered).
	AttrFailures = attribute.Key("kisflow.failures")
	// AttrInputs is the number of inputs the rows of the batch derive
	// from; the span links to at most MaxLinks of them.
	AttrInputs = attribute.Key("kisflow.inputs")
)

// Tracer reports the spans of KisFlow pipelines and flows to an
// OpenTelemetry tracer: give it to pipeline.Trace or flow.Trace. It is
// safe for concurrent use.
type Tracer struct {
	tracer    trace.Tracer
	prop      propagation.TextMapPropagator
	maxLinks  int
	everySpan bool
}

var _ pipeline.Tracer = (*Tracer)(nil)

// Option configures a Tracer.
type Option func(*Tracer)

// TracerProvider sets where spans go, and so how they are sampled and
// exported (default: otel.GetTracerProvider(), the global provider).
func TracerProvider(tp trace.TracerProvider) Option {
	return func(t *Tracer) { t.tracer = tp.Tracer(ScopeName) }
}

// Propagator sets how trace context is written into message headers and
// read from them (default: W3C Trace Context, propagation.TraceContext).
func Propagator(p propagation.TextMapPropagator) Option {
	return func(t *Tracer) { t.prop = p }
}

// MaxLinks sets how many input spans a batch span links to, at most
// (default DefaultMaxLinks); AttrInputs counts them all. It panics if n <
// 1.
func MaxLinks(n int) Option {
	if n < 1 {
		panic("tracing: MaxLinks must be at least 1")
	}
	return func(t *Tracer) { t.maxLinks = n }
}

// EverySpan makes the Tracer ask the sampler about every span. By
// default a span whose parent was not sampled is not started: an input
// whose ctx carries an unsampled span (the caller's, or one found in
// message headers) takes that span as its own, and a batch of rows from
// one unsampled input has the input's span in its ctx, so what the
// function starts and the trace context it sends on stay unsampled.
// Every sampler of the OpenTelemetry SDK (AlwaysSample, NeverSample,
// TraceIDRatioBased, ParentBased with its defaults) leaves those spans
// unsampled anyway; EverySpan is for a sampler that may not.
func EverySpan() Option {
	return func(t *Tracer) { t.everySpan = true }
}

// New returns a Tracer.
func New(opts ...Option) *Tracer {
	t := &Tracer{maxLinks: DefaultMaxLinks}
	for _, o := range opts {
		o(t)
	}
	if t.tracer == nil {
		t.tracer = otel.GetTracerProvider().Tracer(ScopeName)
	}
	if t.prop == nil {
		t.prop = propagation.TraceContext{}
	}
	return t
}

// Span start options, shared: Start does not change them.
var (
	producer    = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)}
	consumer    = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
	batchChild  = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal)}
	batchRooted = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindInternal), trace.WithNewRoot()}
)

// noEnd ends a span that records nothing: there is nothing to end.
func noEnd(error) {}

// noBatchEnd is noEnd for a batch span.
func noBatchEnd(int, error) {}

// StartInput starts the span named after source of an input of rows
// rows, a child of the span in ctx: the caller's, or the one Extract
// found in the headers of the messages the rows came from (the span is
// then of kind consumer; producer otherwise). It returns the span, which
// rows derived from the input carry.
//
// Attributes are set once the sampler has decided to record the span, so
// that unsampled spans cost as little as they can: samplers see the
// span's name, kind and parent. Unless the Tracer was made with
// EverySpan, an input of an unsampled trace starts no span: the span in
// ctx stands for it.
func (t *Tracer) StartInput(ctx context.Context, flow, source string, rows int) (any, func(error)) {
	parent := trace.SpanFromContext(ctx)
	psc := parent.SpanContext()
	if !t.everySpan && psc.IsValid() && !psc.IsSampled() {
		return parent, noEnd // an unsampled trace: see EverySpan
	}
	opts := producer
	if psc.IsRemote() {
		opts = consumer
	}
	_, span := t.tracer.Start(ctx, source, opts...)
	if !span.IsRecording() {
		return span, noEnd
	}
	span.SetAttributes(AttrFlow.String(flow), AttrStage.String(source), AttrRows.Int(rows))
	return span, func(err error) { end(span, err) }
}

// StartBatch starts the span named after stage of a batch of rows rows,
// linked to the spans of the inputs its rows derive from (links, from
// StartInput). When they derive from a single input the span is also
// that input's child, so the path of a row is one trace; otherwise it
// starts a trace of its own, as OpenTelemetry's messaging conventions
// have it for batches. The span ends with the number of failed rows
// (AttrFailures) and, when the batch did not complete, the error.
//
// Links and attributes are added once the sampler has decided to record
// the span: samplers see the span's name, kind and parent. Unless the
// Tracer was made with EverySpan, a batch of rows from one unsampled
// input gets no span of its own: its ctx carries the input's.
func (t *Tracer) StartBatch(ctx context.Context, flow, stage string, rows int, links []any) (context.Context, func(int, error)) {
	opts := batchRooted
	if len(links) == 1 {
		if s, ok := links[0].(trace.Span); ok {
			ctx, opts = trace.ContextWithSpan(ctx, s), batchChild
			if !t.everySpan && !s.SpanContext().IsSampled() {
				return ctx, noBatchEnd
			}
		}
	}
	ctx, span := t.tracer.Start(ctx, stage, opts...)
	if !span.IsRecording() {
		return ctx, noBatchEnd
	}
	for _, l := range links[:min(len(links), t.maxLinks)] {
		if s, ok := l.(trace.Span); ok {
			span.AddLink(trace.Link{SpanContext: s.SpanContext()})
		}
	}
	span.SetAttributes(AttrFlow.String(flow), AttrStage.String(stage), AttrRows.Int(rows), AttrInputs.Int(len(links)))
	return ctx, func(failed int, err error) {
		span.SetAttributes(AttrFailures.Int(failed))
		end(span, err)
	}
}

// end ends span, with an error status when err is not nil.
func end(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// Inject writes the trace context of ctx into headers with the
// propagator.
func (t *Tracer) Inject(ctx context.Context, headers map[string]string) {
	t.prop.Inject(ctx, propagation.MapCarrier(headers))
}

// Extract returns ctx carrying the trace context the propagator finds in
// headers.
func (t *Tracer) Extract(ctx context.Context, headers map[string]string) context.Context {
	return t.prop.Extract(ctx, propagation.MapCarrier(headers))
}
