package memory_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/kisflow/kisflow/connectors"
	"github.com/kisflow/kisflow/connectors/memory"
)

// A Save function writes rows to a key of the in-memory topic; a Load function
// of another flow reads them in a group and acknowledges each once handled.
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
