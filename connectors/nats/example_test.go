package nats_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/nats"
	"github.com/kisflow/kisflow/connectors/stream"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

type Order struct {
	ID     int `json:"id"`
	Amount int `json:"amount"`
}

// Register the "nats" type with a registry and build connectors from their
// configuration. Building checks the configuration but connects to
// nothing, so this runs without a server.
func ExampleRegister() {
	reg := connectors.NewRegistry()
	if err := nats.Register(reg); err != nil {
		log.Fatal(err)
	}
	fmt.Println(reg.Types())

	_, err := reg.New(connectors.Config{
		Name: "orders-bus", Type: "nats", Key: "orders",
		Params: map[string]string{"ack_wait": "soon"},
	})
	fmt.Println(errors.Is(err, connectors.ErrConfig))
	// Output:
	// [nats]
	// true
}

// One flow saves orders to a NATS JetStream key; another, in this process
// or any other, loads them in the group "billing". Run it against a server
// with JetStream enabled (nats-server -js).
func Example() {
	ctx := context.Background()
	conn, err := nats.New(connectors.Config{
		Name:   "orders-bus",
		Addrs:  "nats://127.0.0.1:4222",
		Key:    "orders",
		Params: map[string]string{"ack_wait": "30s"},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := conn.Init(ctx); err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)

	// The reader first, so that the group exists before the orders are
	// saved; FromStart would also read orders saved earlier.
	r, err := conn.Reader(ctx, "orders", connectors.ReadOptions{Group: "billing"})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	w, err := conn.Writer(ctx, "orders")
	if err != nil {
		log.Fatal(err)
	}
	defer w.Close()

	save := pipeline.New("SaveOrders")
	src := pipeline.FromSlice(save, "orders", []Order{{ID: 1, Amount: 10}, {ID: 2, Amount: 25}})
	pipeline.To(src, stream.Save("SaveOrder", w, stream.JSON[Order](), nil))
	if err := save.Run(ctx); err != nil {
		log.Fatal(err)
	}

	billing := pipeline.New("Billing")
	orders := stream.Load(billing, "LoadOrder", r, stream.JSON[Order]())
	done := make(chan struct{})
	seen := 0
	pipeline.To(orders, stage.Sink("Bill", func(_ context.Context, o Order) error {
		fmt.Printf("bill order %d: %d\n", o.ID, o.Amount)
		if seen++; seen == 2 {
			close(done)
		}
		return nil
	}))
	if err := billing.Start(ctx); err != nil {
		log.Fatal(err)
	}
	<-done
	billing.Stop() // a broker never ends: stop the flow when it has done its work
	if err := billing.Wait(); err != nil {
		log.Fatal(err)
	}
}
