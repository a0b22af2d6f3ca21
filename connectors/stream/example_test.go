package stream_test

import (
	"context"
	"fmt"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/memory"
	"github.com/kisflow/kisflow/connectors/stream"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

type order struct {
	ID    int `json:"id"`
	Total int `json:"total"`
}

// One pipeline saves orders to a key of the in-memory topic; another loads
// them in the group "billing". Each read is acknowledged once its rows are
// billed, and the loading pipeline ends when the key ends: its only writer
// closed and every message was read.
func ExampleLoad() {
	ctx := context.Background()
	topic := memory.New(connectors.Config{Name: "orders", Key: "paid"})
	defer topic.Close(ctx)

	r, err := topic.Reader(ctx, "", connectors.ReadOptions{Group: "billing"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()
	w, err := topic.Writer(ctx, "")
	if err != nil {
		fmt.Println(err)
		return
	}

	sell := pipeline.New("Sell")
	rows := pipeline.FromSlice(sell, "orders", []order{{1, 30}, {2, 12}, {3, 7}})
	pipeline.To(rows, stream.Save("SaveOrder", w, stream.JSON[order](), nil))
	if err := sell.Run(ctx); err != nil {
		fmt.Println(err)
		return
	}
	_ = w.Close() // the key ends once the group has read it all

	bill := pipeline.New("Bill")
	paid := stream.Load(bill, "LoadOrder", r, stream.JSON[order]())
	pipeline.To(paid, stage.Sink("Print", func(_ context.Context, o order) error {
		fmt.Printf("order %d: %d\n", o.ID, o.Total)
		return nil
	}))
	if err := bill.Run(ctx); err != nil {
		fmt.Println(err)
	}
	// Output:
	// order 1: 30
	// order 2: 12
	// order 3: 7
}

// Save encodes each row with the codec into one message, keyed here by
// shop so that brokers which partition by key keep each shop's orders in
// order.
func ExampleSave() {
	ctx := context.Background()
	topic := memory.New(connectors.Config{Name: "orders"})
	defer topic.Close(ctx)
	r, err := topic.Reader(ctx, "sold", connectors.ReadOptions{Group: "audit"})
	if err != nil {
		fmt.Println(err)
		return
	}
	w, err := topic.Writer(ctx, "sold")
	if err != nil {
		fmt.Println(err)
		return
	}

	type sale struct {
		Shop string `json:"shop"`
		ID   int    `json:"id"`
	}
	p := pipeline.New("Sell")
	rows := pipeline.FromSlice(p, "sales", []sale{{"north", 1}, {"south", 2}})
	pipeline.To(rows, stream.Save("SaveSale", w, stream.JSON[sale](), func(s sale) string { return s.Shop }))
	if err := p.Run(ctx); err != nil {
		fmt.Println(err)
		return
	}

	ds, err := r.Read(ctx, 10)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, d := range ds {
		fmt.Printf("key %s: %s\n", d.Key, d.Data)
		_ = d.Ack()
	}
	// Output:
	// key north: {"shop":"north","id":1}
	// key south: {"shop":"south","id":2}
}
