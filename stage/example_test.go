package stage_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// A stage that retries a failing row twice, then skips it, counting it as
// failed instead of failing the flow.
func ExampleRetry() {
	attempts := map[int]int{}
	flaky := stage.Map("parse", func(_ context.Context, v int) (int, error) {
		attempts[v]++
		if v == 3 {
			return 0, errors.New("row 3 is broken")
		}
		return v * 10, nil
	}, stage.Retry(2, 0), stage.OnError(stage.Skip))

	p := pipeline.New("retry")
	out := pipeline.Then(pipeline.FromSlice(p, "rows", []int{1, 2, 3, 4}), flaky)
	pipeline.To(out, stage.Sink("print", func(_ context.Context, v int) error {
		fmt.Println(v)
		return nil
	}))
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	st := p.Stats()
	fmt.Printf("row 3 tried %d times; failed %d, delivered %d\n", attempts[3], st.Failed, st.Delivered)
	// Output:
	// 10
	// 20
	// 40
	// row 3 tried 3 times; failed 1, delivered 3
}

// A panic in a user function becomes an error that names the stage and
// unwraps to the panic value.
func ExamplePanicError() {
	boom := errors.New("boom")
	p := pipeline.New("flow")
	out := pipeline.Then(pipeline.FromSlice(p, "rows", []int{1}), stage.Map("risky", func(context.Context, int) (int, error) {
		panic(boom)
	}))
	pipeline.Discard(out, "sink")
	err := p.Run(context.Background())
	var pe *stage.PanicError
	fmt.Println(errors.As(err, &pe), errors.Is(err, boom))
	// Output: true true
}
