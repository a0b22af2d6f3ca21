package stage_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/internal/leaktest"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/row"
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

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

// Map turns each row into one result.
func ExampleMap() {
	p := pipeline.New("squares")
	sq := pipeline.Then(pipeline.FromSlice(p, "nums", []int{1, 2, 3}), stage.Map("square", func(_ context.Context, v int) (int, error) {
		return v * v, nil
	}))
	got := pipeline.Collect(sq, "collect")
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(got())
	// Output: [1 4 9]
}

// FlatMap emits any number of results per row: here one per word.
func ExampleFlatMap() {
	p := pipeline.New("words")
	lines := pipeline.FromSlice(p, "lines", []string{"to be", "", "or not"})
	words := pipeline.Then(lines, stage.FlatMap("split", func(_ context.Context, l string, emit func(string)) error {
		for _, w := range strings.Fields(l) {
			emit(w)
		}
		return nil
	}))
	got := pipeline.Collect(words, "collect")
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("%q\n", got())
	// Output: ["to" "be" "or" "not"]
}

// Verify keeps the rows its function accepts; the others count as Filtered.
func ExampleVerify() {
	p := pipeline.New("evens")
	evens := pipeline.Then(pipeline.FromSlice(p, "nums", []int{1, 2, 3, 4, 5, 6}), stage.Verify("even", func(_ context.Context, v int) (bool, error) {
		return v%2 == 0, nil
	}))
	got := pipeline.Collect(evens, "collect")
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(got(), "filtered:", p.Stats().Filtered)
	// Output: [2 4 6] filtered: 3
}

// MapBatch gets a chunk of rows at once, here at most 4 (the pipeline's
// batch size), and may return a different number of rows: one sum a chunk.
func ExampleMapBatch() {
	p := pipeline.New("sums", pipeline.BatchSize(4))
	nums := pipeline.FromSlice(p, "nums", []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10})
	sums := pipeline.Then(nums, stage.MapBatch("sum", func(_ context.Context, rows []int) ([]int, error) {
		s := 0
		for _, v := range rows {
			s += v
		}
		return []int{s}, nil
	}))
	got := pipeline.Collect(sums, "collect")
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(got())
	// Output: [10 26 19]
}

// Sink ends a stream: it consumes each row and sends nothing on.
func ExampleSink() {
	p := pipeline.New("print")
	pipeline.To(pipeline.FromSlice(p, "names", []string{"ada", "grace"}), stage.Sink("print", func(_ context.Context, name string) error {
		fmt.Println("hello,", name)
		return nil
	}))
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println("delivered:", p.Stats().Delivered)
	// Output:
	// hello, ada
	// hello, grace
	// delivered: 2
}

// SinkBatch writes rows in bulk, a chunk at a time, as a database or broker
// client would.
func ExampleSinkBatch() {
	p := pipeline.New("bulk", pipeline.BatchSize(3))
	pipeline.To(pipeline.FromSlice(p, "nums", []int{1, 2, 3, 4, 5, 6, 7}), stage.SinkBatch("write", func(_ context.Context, rows []int) error {
		fmt.Println("write", rows)
		return nil
	}))
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output:
	// write [1 2 3]
	// write [4 5 6]
	// write [7]
}

// With several workers, results still leave in input order (unless the
// stage is Unordered).
func ExampleConcurrency() {
	p := pipeline.New("ordered", pipeline.BatchSize(4))
	nums := pipeline.FromSlice(p, "nums", []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	tens := pipeline.Then(nums, stage.Map("times10", func(_ context.Context, v int) (int, error) {
		return v * 10, nil
	}, stage.Concurrency(3)))
	got := pipeline.Collect(tens, "collect")
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(got())
	// Output: [10 20 30 40 50 60 70 80 90 100 110 120]
}

// Rows a stage gives up on under the DeadLetter policy arrive on the
// pipeline's dead-letter stream, with the stage's name and the error.
func ExampleOnError() {
	p := pipeline.New("parse")
	nums := pipeline.Then(pipeline.FromSlice(p, "text", []string{"1", "two", "3"}), stage.Map("atoi", func(_ context.Context, s string) (int, error) {
		return strconv.Atoi(s)
	}, stage.OnError(stage.DeadLetter)))
	got := pipeline.Collect(nums, "collect")
	pipeline.To(pipeline.DeadLetters(p), stage.Sink("report", func(_ context.Context, f row.Failure) error {
		fmt.Printf("dead letter from %s: %q: %v\n", f.Stage, f.Row, f.Err)
		return nil
	}))
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(got(), "dead-lettered:", p.Stats().DeadLettered)
	// Output:
	// dead letter from atoi: "two": strconv.Atoi: parsing "two": invalid syntax
	// [1 3] dead-lettered: 1
}

// Timeout gives each call a deadline through its ctx; here the slow row
// times out and is skipped.
func ExampleTimeout() {
	p := pipeline.New("lookup")
	out := pipeline.Then(pipeline.FromSlice(p, "ids", []int{1, 2, 3}), stage.Map("lookup", func(ctx context.Context, id int) (string, error) {
		if id == 2 { // a backend that never answers for id 2
			<-ctx.Done()
			return "", ctx.Err()
		}
		return fmt.Sprint("user", id), nil
	}, stage.Timeout(10*time.Millisecond), stage.OnError(stage.Skip)))
	got := pipeline.Collect(out, "collect")
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	st := p.Stats()
	fmt.Println(got(), "failed:", st.Failed)
	// Output: [user1 user3] failed: 1
}

// Buffer sizes the buffer in front of a stage and says what its senders do
// when it is full: Block (the default) slows the source down to the
// stage's pace, so nothing is dropped.
func ExampleBuffer() {
	p := pipeline.New("steady", pipeline.BatchSize(2))
	nums := make([]int, 100)
	sum := 0
	pipeline.To(pipeline.FromSlice(p, "nums", nums), stage.Sink("count", func(context.Context, int) error {
		sum++
		return nil
	}, stage.Buffer(backpressure.Buffer{Capacity: 4, Policy: backpressure.Block})))
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	e := p.Stats().Edges[0]
	fmt.Printf("%s: capacity %d, policy %v, dropped %d; consumed %d\n", e.Name, e.Capacity, e.Policy, e.Dropped, sum)
	// Output: nums->count: capacity 4, policy block, dropped 0; consumed 100
}

// Adjacent stages with one worker each run fused, on one goroutine; Unfused
// gives a heavy stage goroutines and a buffer of its own, so that it can
// run on another core than its neighbours.
func ExampleUnfused() {
	double := func(_ context.Context, v int) (int, error) { return 2 * v, nil }
	p := pipeline.New("fusing")
	s := pipeline.FromSlice(p, "rows", []int{1, 2, 3})
	s = pipeline.Then(s, stage.Map("parse", double))
	s = pipeline.Then(s, stage.Map("enrich", double))
	s = pipeline.Then(s, stage.Map("score", double, stage.Unfused()))
	got := pipeline.Collect(s, "collect")
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(got())
	for _, e := range p.Stats().Edges {
		fmt.Printf("%s fused: %v\n", e.Name, e.Fused)
	}
	// Output:
	// [8 16 24]
	// rows->parse fused: false
	// parse->enrich fused: true
	// enrich->score fused: false
	// score->collect fused: false
}
