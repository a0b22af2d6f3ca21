package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/kisflow/kisflow/fanout"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// Order is one row of the flow.
type Order struct {
	ID     int
	Amount int64 // cents; zero or less is invalid
	Tax    int64
}

// newFlow builds the example flow: Orders (an Input) → VerifyOrder →
// CalcTax (slow, 4 workers) → Fanout → SaveOrder and NotifyUser, the
// latter failing some rows, which it skips.
func newFlow(cost time.Duration, opts ...pipeline.Option) (*pipeline.Pipeline, *pipeline.Input[Order]) {
	p := pipeline.New("OrderFlow", opts...)
	in, orders := pipeline.NewInput[Order](p, "Orders")
	valid := pipeline.Then(orders, stage.Verify("VerifyOrder", func(_ context.Context, o Order) (bool, error) {
		return o.Amount > 0, nil
	}))
	taxed := pipeline.Then(valid, stage.Map("CalcTax", func(ctx context.Context, o Order) (Order, error) {
		// A slow computation, or a call to another service.
		t := time.NewTimer(cost)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return o, ctx.Err()
		}
		o.Tax = o.Amount * 2 / 10
		return o, nil
	}, stage.Concurrency(4)))
	branches := fanout.Broadcast(taxed, "Fanout", 2)
	pipeline.To(branches[0], stage.Sink("SaveOrder", func(context.Context, Order) error { return nil }))
	pipeline.To(branches[1], stage.Sink("NotifyUser", func(_ context.Context, o Order) error {
		if o.ID%53 == 0 {
			return fmt.Errorf("notify order %d: mailbox unavailable", o.ID)
		}
		return nil
	}, stage.OnError(stage.Skip)))
	return p, in
}

// feed submits rate orders per second to in until ctx ends or the input is
// stopped. One order in 20 is invalid.
func feed(ctx context.Context, in *pipeline.Input[Order], rate int, log *slog.Logger) error {
	const tick = 10 * time.Millisecond
	per := max(1, rate*int(tick)/int(time.Second))
	t := time.NewTicker(tick)
	defer t.Stop()
	id := 0
	batch := make([]Order, per)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for i := range batch {
			id++
			batch[i] = Order{ID: id, Amount: int64(id%997) * 100}
			if id%20 == 0 {
				batch[i].Amount = 0
			}
		}
		if _, err := in.SubmitBatch(ctx, batch); err != nil {
			if errors.Is(err, pipeline.ErrStopped) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		if id%(per*500) == 0 {
			log.Debug("fed", "orders", id)
		}
	}
}
