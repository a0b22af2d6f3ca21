package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/kafka"
	"github.com/kisflow/kisflow/connectors/stream"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

type Order struct {
	ID     int `json:"id"`
	Amount int `json:"amount"`
}

// Register the "kafka" type with a registry and build connectors from their
// configuration. Building checks the configuration but connects to
// nothing, so this runs without a cluster.
func ExampleRegister() {
	reg := connectors.NewRegistry()
	if err := kafka.Register(reg); err != nil {
		log.Fatal(err)
	}
	fmt.Println(reg.Types())

	_, err := reg.New(connectors.Config{
		Name: "orders-bus", Type: "kafka", Key: "orders",
		Params: map[string]string{"revoke_wait": "soon"},
	})
	fmt.Println(errors.Is(err, connectors.ErrConfig))
	// Output:
	// [kafka]
	// true
}

// One flow saves orders to a Kafka topic; another, in this process or any
// other, loads them in the group "billing". Here the cluster is kfake, an
// in-process fake broker speaking the Kafka protocol; for a real cluster,
// put its brokers in Addrs.
func Example() {
	ctx := context.Background()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(1, "orders"))
	if err != nil {
		log.Fatal(err)
	}
	defer cluster.Close()

	conn, err := kafka.New(connectors.Config{
		Name:   "orders-bus",
		Addrs:  strings.Join(cluster.ListenAddrs(), ","),
		Key:    "orders",
		Params: map[string]string{"commit_interval": "1s"},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := conn.Init(ctx); err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)

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

	// FromStart: a new group reads the orders saved before it joined.
	r, err := conn.Reader(ctx, "orders", connectors.ReadOptions{Group: "billing", FromStart: true})
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
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
	// Output:
	// bill order 1: 10
	// bill order 2: 25
}
