// Package tracing reports the traces of KisFlow pipelines and flows to
// OpenTelemetry. It lives in a module of its own, so that the core module
// imports no OpenTelemetry package: the core has a hook
// (pipeline.Tracer), and this package implements it.
//
//	tp := sdktrace.NewTracerProvider(
//		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01))),
//		sdktrace.WithBatcher(exporter),
//	)
//	defer tp.Shutdown(ctx)
//	t := tracing.New(tracing.TracerProvider(tp))
//	p := pipeline.New("orders", pipeline.Trace(t))  // a pipeline
//	reg := flow.NewRegistry(flow.Trace(t))           // or every flow of a registry
//
// # Spans
//
// An input is one unit of rows entering a pipeline: a Submit, SubmitAck
// or Emit call, a batch a slice, sequence or channel source sends, a
// committed row of a flow, the messages with the same headers that a Load
// function read together. Its span, named after the source, is a child of
// the span in the ctx it entered with (the caller's, or Run's for a
// source's batches) or, for rows loaded from messages, continues the trace
// found in their headers. It lasts while the input is being accepted, so
// its length is the backpressure the source felt.
//
// Every batch that a stage processes (every chunk, for a stage with
// several workers) gets a span named after the stage, with links to the
// spans of the inputs its rows derive from: the inputs' trace contexts
// travel with the rows through fan-out, merges and feedback loops, as
// acknowledgement does. A batch of rows from one input is also that
// input's child, so the path of one row is one trace; a batch of rows
// from several inputs starts a trace of its own and links to them, as
// OpenTelemetry's messaging conventions have it for batches. The
// attributes: kisflow.flow, kisflow.stage, kisflow.rows, kisflow.inputs,
// and kisflow.failures (rows failed or dead-lettered), set when the batch
// is done; a batch cut short by a failed or cancelled run ends with an
// error status.
//
// The stage function gets the batch span in its ctx: spans it starts are
// children of it, and pipeline.InjectTrace writes its context into the
// headers of messages it sends. Save functions of package flow (and
// stream.Save) do this for every message, and Load functions (and
// stream.Load) continue the trace, so one row's trace crosses brokers:
// from the flow that saved it to the flow that loads it.
//
// # Sampling and propagation
//
// Sampling is the provider's: any sdktrace.Sampler. For production,
// sample a ratio of traces and follow the decision of the parent:
//
//	sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01)) // 1% of traces
//
// With it, a row entering unsampled is traced nowhere downstream, and
// its batch spans cost what creating an unrecorded span costs. Trace
// context goes into message headers with a propagation.TextMapPropagator,
// W3C Trace Context ("traceparent") by default; Propagator sets another,
// such as propagation.NewCompositeTextMapPropagator(propagation.TraceContext{},
// propagation.Baggage{}).
//
// # Cost
//
// Without a tracer a pipeline pays one nil check per batch. With one,
// each input and each batch of each stage starts a span (512 rows per
// batch by default); a pipeline fed by Submit one row at a time starts
// one span per row. BenchmarkTrace measures the overhead on three tiny
// stages: with 1% of traces sampled, about 11% more CPU (7% when Run's
// ctx carries a span, so that the run is one trace), most of it one
// sampling decision per source batch.
package tracing
