package memory_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/memory"
)

// A writer saves messages to a key of the in-memory topic; a reader of the
// group "billing" reads them and acknowledges each once handled. The key
// ends when its only writer has closed and the group has read everything.
func ExampleNew() {
	ctx := context.Background()
	topic := memory.New(connectors.Config{Name: "orders", Key: "paid"})
	if err := topic.Init(ctx); err != nil {
		fmt.Println(err)
		return
	}
	defer topic.Close(ctx)

	// The group exists before the first write, so it sees every row.
	load, err := topic.Reader(ctx, "", connectors.ReadOptions{Group: "billing"})
	if err != nil {
		fmt.Println(err)
		return
	}

	save, err := topic.Writer(ctx, "")
	if err != nil {
		fmt.Println(err)
		return
	}
	rows := []connectors.Message{
		{Data: []byte(`{"order":1,"total":30}`)},
		{Data: []byte(`{"order":2,"total":12}`)},
	}
	if err := save.Write(ctx, rows); err != nil {
		fmt.Println(err)
		return
	}
	_ = save.Close() // the only writer: the key ends once the group drained it

	for {
		ds, err := load.Read(ctx, 10)
		if errors.Is(err, connectors.ErrEnded) {
			fmt.Println("ended")
			break
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, d := range ds {
			fmt.Println(string(d.Data))
			if err := d.Ack(); err != nil {
				fmt.Println(err)
			}
		}
	}
	// Output:
	// {"order":1,"total":30}
	// {"order":2,"total":12}
	// ended
}

// Register adds the "memory" type to a registry of connector types, which
// then builds in-memory topics from their configuration.
func ExampleRegister() {
	reg := connectors.NewRegistry()
	if err := memory.Register(reg); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(reg.Types())

	c, err := reg.New(connectors.Config{Name: "orders", Type: memory.Type, Params: map[string]string{"capacity": "1024"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(context.Background())
	fmt.Printf("%T\n", c)

	_, err = reg.New(connectors.Config{Name: "events", Type: memory.Type, Params: map[string]string{"capacity": "0"}})
	fmt.Println(errors.Is(err, connectors.ErrConfig))
	// Output:
	// [memory]
	// *memory.Topic
	// true
}
