package pipeline_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// A finite pipeline: a source, a Calculate stage with four workers (output
// stays in input order), a Verify stage, and an Expand sink.
func Example() {
	p := pipeline.New("words")
	words := pipeline.FromSlice(p, "words", strings.Fields("keep it simple flowing and keep it streaming"))
	upper := pipeline.Then(words, stage.Map("upper", func(_ context.Context, w string) (string, error) {
		return strings.ToUpper(w), nil
	}, stage.Concurrency(4)))
	long := pipeline.Then(upper, stage.Verify("long", func(_ context.Context, w string) (bool, error) {
		return len(w) > 4, nil
	}))
	pipeline.To(long, stage.Sink("print", func(_ context.Context, w string) error {
		fmt.Println(w)
		return nil
	}))
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	st := p.Stats()
	fmt.Printf("in %d, delivered %d, filtered %d\n", st.In, st.Delivered, st.Filtered)
	// Output:
	// SIMPLE
	// FLOWING
	// STREAMING
	// in 8, delivered 3, filtered 5
}

// A long-running pipeline fed with Submit, stopped gracefully.
func ExampleNewInput() {
	p := pipeline.New("orders")
	in, orders := pipeline.NewInput[int](p, "orders")
	total := 0
	pipeline.To(orders, stage.Sink("sum", func(_ context.Context, v int) error {
		total += v
		return nil
	}))
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	for i := 1; i <= 100; i++ {
		if err := in.Submit(ctx, i); err != nil {
			fmt.Println(err)
		}
	}
	p.Stop() // returns at once; the rows in flight drain
	if err := p.Wait(); err != nil {
		fmt.Println(err)
	}
	fmt.Println(total)
	fmt.Println(in.Submit(ctx, 1))
	// Output:
	// 5050
	// pipeline orders: input orders: pipeline: stopped
}
