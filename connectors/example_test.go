package connectors_test

import (
	"context"
	"fmt"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/memory"
)

// Connectors are built from their configuration by type.
func ExampleRegistry_New() {
	reg := connectors.NewRegistry() // empty: register the types you use
	if err := memory.Register(reg); err != nil {
		fmt.Println(err)
		return
	}
	c, err := reg.New(connectors.Config{
		Name:   "orders",
		Type:   memory.Type,
		Params: map[string]string{"capacity": "1024"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(context.Background())
	fmt.Printf("%T\n", c)

	_, err = reg.New(connectors.Config{Name: "events", Type: "kafka"})
	fmt.Println(err)
	// Output:
	// *memory.Topic
	// connectors: connector "events": type "kafka": connectors: unknown connector type
}
