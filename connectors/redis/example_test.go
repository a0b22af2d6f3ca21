package redis_test

import (
	"context"
	"log"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/redis"
	"github.com/kisflow/kisflow/connectors/stream"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

type payment struct {
	Order int `json:"order"`
	Total int `json:"total"`
}

// A flow loads the payments another flow saved to the stream "paid",
// sharing them with the other replicas of the "billing" group; each
// message is acknowledged once its row has been billed.
func Example() {
	ctx := context.Background()
	reg := connectors.NewRegistry()
	if err := redis.Register(reg); err != nil {
		log.Fatal(err)
	}
	conn, err := reg.New(connectors.Config{
		Name:   "payments",
		Type:   redis.Type,
		Addrs:  "localhost:6379",
		Key:    "paid",
		Params: map[string]string{"maxlen": "100000", "claim_idle": "1m"},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := conn.Init(ctx); err != nil {
		log.Fatal(err)
	}
	defer conn.Close(ctx)

	r, err := conn.Reader(ctx, "", connectors.ReadOptions{Group: "billing"})
	if err != nil {
		log.Fatal(err)
	}
	p := pipeline.New("Billing")
	paid := stream.Load(p, "LoadPaid", r, stream.JSON[payment]())
	pipeline.To(paid, stage.Sink("Bill", func(ctx context.Context, pm payment) error {
		log.Printf("bill order %d: %d", pm.Order, pm.Total)
		return nil
	}))
	// Runs until the context is cancelled or p.Stop is called.
	if err := p.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
