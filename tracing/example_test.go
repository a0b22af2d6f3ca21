package tracing_test

import (
	"context"
	"fmt"
	"log"
	"slices"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
	"github.com/kisflow/kisflow/tracing"
)

// Trace a pipeline: every batch a source sends is an input with a span
// of its own, and every batch a stage processes gets a span linked to
// the inputs of its rows. Here the spans go to an in-memory exporter; in
// production, to an exporter such as otlptracegrpc, with a sampler such
// as sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01)).
func ExampleNew() {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	defer tp.Shutdown(context.Background())

	p := pipeline.New("orders", pipeline.Trace(tracing.New(tracing.TracerProvider(tp))))
	amounts := pipeline.FromSlice(p, "amounts", []int{10, 20, 30})
	taxed := pipeline.Then(amounts, stage.Map("tax", func(ctx context.Context, v int) (int, error) {
		// ctx carries the batch's span: spans started from it are its
		// children, and pipeline.InjectTrace writes its context into the
		// headers of messages sent on.
		return v * 120 / 100, nil
	}))
	pipeline.Discard(taxed, "done")
	if err := p.Run(context.Background()); err != nil {
		log.Fatal(err)
	}

	var lines []string
	for _, s := range exp.GetSpans() {
		lines = append(lines, fmt.Sprintf("%s: %d link(s), one trace: %v", s.Name, len(s.Links), s.SpanContext.TraceID() == exp.GetSpans()[0].SpanContext.TraceID()))
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// amounts: 0 link(s), one trace: true
	// done: 1 link(s), one trace: true
	// tax: 1 link(s), one trace: true
}
