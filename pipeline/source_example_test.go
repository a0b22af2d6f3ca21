package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/kisflow/kisflow/fanout"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

// FromSlice streams the rows of a slice; the run ends when they are through.
func ExampleFromSlice() {
	p := pipeline.New("greet")
	names := pipeline.FromSlice(p, "names", []string{"ada", "grace", "barbara"})
	greetings := pipeline.Then(names, stage.Map("greet", func(_ context.Context, n string) (string, error) {
		return "hello " + n, nil
	}))
	got := pipeline.Collect(greetings, "collect")
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("%q\n", got())
	// Output: ["hello ada" "hello grace" "hello barbara"]
}

// FromSeq streams the values of an iterator, pulled as the pipeline takes them.
func ExampleFromSeq() {
	fib := func(n int) iter.Seq[int] {
		return func(yield func(int) bool) {
			a, b := 0, 1
			for range n {
				if !yield(a) {
					return
				}
				a, b = b, a+b
			}
		}
	}
	p := pipeline.New("fib")
	got := pipeline.Collect(pipeline.FromSeq(p, "fib", fib(10)), "collect")
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(got())
	// Output: [0 1 1 2 3 5 8 13 21 34]
}

// FromChan streams the values received from a channel until it is closed.
func ExampleFromChan() {
	ch := make(chan int)
	go func() {
		defer close(ch)
		for i := 1; i <= 5; i++ {
			ch <- i * i
		}
	}()
	p := pipeline.New("squares")
	got := pipeline.Collect(pipeline.FromChan(p, "squares", ch), "collect")
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(got())
	// Output: [1 4 9 16 25]
}

// FromFunc is how a custom source (a broker consumer) joins a pipeline:
// it emits rows with an ack, called once every row of the emit is handled.
func ExampleFromFunc() {
	var acked atomic.Int32
	p := pipeline.New("consumer")
	msgs := pipeline.FromFunc(p, "broker", func(ctx context.Context, e *pipeline.Emitter[string]) error {
		for _, msg := range [][]string{{"a", "b"}, {"c"}} { // two messages from the broker
			if _, err := e.Emit(ctx, msg, func() { acked.Add(1) }); err != nil {
				return err
			}
		}
		return nil // the source ends; the run ends when its rows are through
	})
	got := pipeline.Collect(msgs, "collect")
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(got(), "messages acknowledged:", acked.Load())
	// Output: [a b c] messages acknowledged: 2
}

// SubmitAck submits rows and learns when they were all handled; Shutdown
// stops the pipeline and waits for the rows in flight.
func ExampleInput_SubmitAck() {
	p := pipeline.New("orders")
	in, orders := pipeline.NewInput[int](p, "orders")
	got := pipeline.Collect(orders, "collect")
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	done := make(chan struct{})
	n, err := in.SubmitAck(ctx, []int{1, 2, 3}, func() { close(done) })
	fmt.Println(n, err)
	<-done // every row of the batch was delivered
	fmt.Println("acknowledged")
	if err := p.Shutdown(ctx); err != nil {
		fmt.Println(err)
	}
	fmt.Println(got())
	// Output:
	// 3 <nil>
	// acknowledged
	// [1 2 3]
}

// TrySubmit never waits: it says whether the pipeline took the row now.
func ExampleInput_TrySubmit() {
	p := pipeline.New("events")
	in, events := pipeline.NewInput[string](p, "events")
	got := pipeline.Collect(events, "collect")
	_, err := in.TrySubmit("too early")
	fmt.Println(errors.Is(err, pipeline.ErrNotStarted))
	if err := p.Start(context.Background()); err != nil {
		fmt.Println(err)
		return
	}
	ok, err := in.TrySubmit("click")
	fmt.Println(ok, err)
	if err := p.Shutdown(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(got())
	// Output:
	// true
	// true <nil>
	// [click]
}

// Collect keeps every row that reaches it, for finite runs and tests.
func ExampleCollect() {
	p := pipeline.New("lengths")
	lengths := pipeline.Then(pipeline.FromSlice(p, "words", []string{"go", "stream", "flow"}), stage.Map("len", func(_ context.Context, w string) (int, error) {
		return len(w), nil
	}))
	got := pipeline.Collect(lengths, "collect")
	fmt.Println(got()) // nil until the run is over
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(got())
	// Output:
	// []
	// [2 6 4]
}

// Discard ends a stream whose rows are not needed: here a stage works by
// its side effect. The discarded rows count as filtered.
func ExampleDiscard() {
	var seen atomic.Int32
	p := pipeline.New("touch")
	touched := pipeline.Then(pipeline.FromSlice(p, "ids", []int{1, 2, 3}), stage.Map("touch", func(_ context.Context, id int) (int, error) {
		seen.Add(1)
		return id, nil
	}))
	pipeline.Discard(touched, "discard")
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	st := p.Stats()
	fmt.Println(seen.Load(), "delivered:", st.Delivered, "filtered:", st.Filtered)
	// Output: 3 delivered: 0 filtered: 3
}

// DeadLetters is the stream of rows that stages with the DeadLetter policy
// gave up on, each with its stage and error.
func ExampleDeadLetters() {
	p := pipeline.New("parse")
	text := pipeline.FromSlice(p, "text", []string{"7", "x", "8", "y"})
	nums := pipeline.Then(text, stage.Map("atoi", func(_ context.Context, s string) (int, error) {
		return strconv.Atoi(s)
	}, stage.OnError(stage.DeadLetter)))
	good := pipeline.Collect(nums, "good")
	bad := pipeline.Collect(pipeline.DeadLetters(p), "bad")
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(good())
	for _, f := range bad() {
		fmt.Printf("%s/%s: %q: %v\n", f.Flow, f.Stage, f.Row, errors.Unwrap(f.Err))
	}
	// Output:
	// [7 8]
	// parse/atoi: "x": invalid syntax
	// parse/atoi: "y": invalid syntax
}

// A loop: a stage sends rows back to itself through a Feedback until they
// have gone round three times, as Hops tells it.
func ExampleNewFeedback() {
	p := pipeline.New("loop")
	fb, again := pipeline.NewFeedback[int](p, "again")
	nums := fanout.Merge(pipeline.FromSlice(p, "nums", []int{1, 2, 3}), again)
	doubled := pipeline.Then(nums, stage.FlatMap("double", func(ctx context.Context, v int, emit func(int)) error {
		if pipeline.Hops(ctx) < 3 {
			return fb.Send(ctx, []int{2 * v})
		}
		emit(v)
		return nil
	}))
	got := pipeline.Collect(doubled, "collect")
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(slices.Sorted(slices.Values(got())))
	// Output: [8 16 24]
}

// Stats accounts for every row: each one that entered is delivered,
// filtered, failed, dropped, dead-lettered or abandoned.
func ExamplePipeline_Stats() {
	p := pipeline.New("audit")
	nums := pipeline.FromSlice(p, "nums", []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	even := pipeline.Then(nums, stage.Verify("even", func(_ context.Context, v int) (bool, error) {
		return v%2 == 0, nil
	}))
	inv := pipeline.Then(even, stage.Map("invert", func(_ context.Context, v int) (int, error) {
		if v == 4 {
			return 0, errors.New("no inverse for 4")
		}
		return 100 / v, nil
	}, stage.OnError(stage.Skip)))
	pipeline.To(inv, stage.Sink("sink", func(context.Context, int) error { return nil }))
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	st := p.Stats()
	fmt.Printf("%s %s: in %d, delivered %d, filtered %d, failed %d, abandoned %d\n",
		st.Flow, st.State, st.In, st.Delivered, st.Filtered, st.Failed, st.Abandoned)
	// Output: audit done: in 10, delivered 4, filtered 5, failed 1, abandoned 0
}

// Stop asks a running pipeline to finish: inputs refuse new rows, the rows
// in flight drain, and Wait returns nil.
func ExamplePipeline_Stop() {
	p := pipeline.New("events")
	in, events := pipeline.NewInput[string](p, "events")
	got := pipeline.Collect(events, "collect")
	ctx := context.Background()
	if err := p.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	_ = in.Submit(ctx, "open")
	_ = in.Submit(ctx, "save")
	p.Stop()
	fmt.Println(errors.Is(in.Submit(ctx, "late"), pipeline.ErrStopped))
	fmt.Println(p.Wait(), got(), p.Stats().State)
	// Output:
	// true
	// <nil> [open save] done
}
