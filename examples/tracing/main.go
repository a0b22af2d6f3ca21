// Command tracing traces two KisFlow flows joined through a Save/Load
// connector with OpenTelemetry, and prints the spans to stdout as JSON
// (one object per span, with stdouttrace):
//
//	go run ./examples/tracing            (from this module: go run .)
//
// A "request" span commits one row to the flow "orders", whose Save
// function writes it to the in-memory topic "paid"; the flow "billing"
// loads it. Every span printed has the request's TraceID: the committed
// row (span "input"), the Save function ("Pay") and its writer
// ("Pay.save"), the loaded message ("Bill.load", whose parent is
// "Pay.save": the trace context went through the message's headers) and
// the functions of the loading flow ("Bill", "Print").
//
// The README of module github.com/kisflow/kisflow/tracing shows how to
// send the spans to an OTLP collector instead.
package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/kisflow/kisflow/config"
	"github.com/kisflow/kisflow/flow"
	"github.com/kisflow/kisflow/tracing"
)

// Order is the row of both flows.
type Order struct {
	ID     int `json:"id"`
	Amount int `json:"amount"`
}

func run(ctx context.Context, out io.Writer) error {
	exp, err := stdouttrace.New(stdouttrace.WithWriter(out), stdouttrace.WithPrettyPrint())
	if err != nil {
		return err
	}
	tp := sdktrace.NewTracerProvider(
		// Sample every trace here; in production, a ratio:
		// sdktrace.ParentBased(sdktrace.TraceIDRatioBased(0.01)).
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithBatcher(exp),
	)
	defer tp.Shutdown(ctx) // flushes the spans

	reg := flow.NewRegistry(flow.Trace(tracing.New(tracing.TracerProvider(tp))))
	defer reg.Close(ctx)
	if err := reg.AddConfig(
		&config.Conn{Name: "paid", Type: "memory", Key: "paid"},
		&config.Func{Name: "Pay", Mode: config.ModeSave, Option: config.FuncOption{Conn: "paid"}},
		&config.Func{Name: "Bill", Mode: config.ModeLoad, Option: config.FuncOption{Conn: "paid"}},
		&config.Func{Name: "Print", Mode: config.ModeExpand},
	); err != nil {
		return err
	}
	if err := flow.Register(reg, "Pay", func(_ context.Context, h *flow.Handle[Order, Order], rows []Order) error {
		h.CommitRowBatch(rows)
		return nil
	}); err != nil {
		return err
	}
	if err := flow.Register(reg, "Bill", func(_ context.Context, h *flow.Handle[Order, Order], rows []Order) error {
		h.CommitRowBatch(rows)
		return nil
	}); err != nil {
		return err
	}
	if err := flow.Register(reg, "Print", func(ctx context.Context, _ *flow.Handle[Order, Order], rows []Order) error {
		for _, o := range rows {
			fmt.Fprintf(os.Stderr, "billed order %d: %d\n", o.ID, o.Amount)
		}
		return nil
	}); err != nil {
		return err
	}
	orders := reg.Define("orders")
	if err := orders.Link(reg.Config().Funcs["Pay"], nil); err != nil {
		return err
	}
	billing := reg.Define("billing")
	for _, fn := range []string{"Bill", "Print"} {
		if err := billing.Link(reg.Config().Funcs[fn], nil); err != nil {
			return err
		}
	}

	billed := make(chan error, 1)
	go func() { billed <- billing.Run(ctx) }() // ends when "orders" closed the topic and it drained
	if err := orders.Start(ctx); err != nil {
		return err
	}
	// The request that commits the row to the running flow: its trace is
	// the one every span joins. (Rows committed before Run or Start are
	// held, and enter with the trace of Run's ctx.)
	reqCtx, req := tp.Tracer("example").Start(ctx, "request")
	err = orders.CommitRow(reqCtx, Order{ID: 1, Amount: 42})
	req.End()
	orders.Stop()
	if werr := orders.Wait(); err == nil {
		err = werr
	}
	if berr := <-billed; err == nil {
		err = berr
	}
	return err
}

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "err:", err)
		os.Exit(1)
	}
}
