package fanout_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/fanout"
	"github.com/kisflow/kisflow/internal/leaktest"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

// Broadcast feeds every row to two branches, which Merge joins again.
func ExampleBroadcast() {
	p := pipeline.New("fan")
	branches := fanout.Broadcast(pipeline.FromSlice(p, "nums", []int{1, 2, 3}), "copy", 2)
	doubled := pipeline.Then(branches[0], stage.Map("double", func(_ context.Context, v int) (int, error) { return 2 * v, nil }))
	negated := pipeline.Then(branches[1], stage.Map("negate", func(_ context.Context, v int) (int, error) { return -v, nil }))
	sum := 0
	pipeline.To(fanout.Merge(doubled, negated), stage.Sink("sum", func(_ context.Context, v int) error {
		sum += v
		return nil
	}))
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(sum)
	// Output: 6
}

// Partition sends all the rows of one key to one branch, in order: here
// each account's events are applied by one worker, in the order they came.
func ExamplePartition() {
	type event struct {
		account string
		amount  int
	}
	p := pipeline.New("ledger")
	events := pipeline.FromSlice(p, "events", []event{{"alice", 10}, {"bob", 5}, {"alice", -3}, {"carol", 7}, {"bob", 1}, {"alice", 2}})
	var mu sync.Mutex
	history := map[string][]int{}
	for i, branch := range fanout.Partition(events, "by-account", 2, func(e event) string { return e.account }) {
		pipeline.To(branch, stage.Sink(fmt.Sprint("apply", i), func(_ context.Context, e event) error {
			mu.Lock()
			defer mu.Unlock()
			history[e.account] = append(history[e.account], e.amount)
			return nil
		}))
	}
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	for _, account := range slices.Sorted(maps.Keys(history)) {
		fmt.Println(account, history[account])
	}
	// Output:
	// alice [10 -3 2]
	// bob [5 1]
	// carol [7]
}

// Route sends each row to the branch its function names.
func ExampleRoute() {
	p := pipeline.New("logs")
	lines := pipeline.FromSlice(p, "lines", []string{"INFO start", "ERROR disk full", "INFO retry", "ERROR disk still full"})
	levels := fanout.Route(lines, "by-level", func(l string) string {
		level, _, _ := strings.Cut(l, " ")
		return strings.ToLower(level)
	}, "info", "error")
	infos := pipeline.Collect(levels["info"], "info-log")
	errs := pipeline.Collect(levels["error"], "alerts")
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("info: %q\nerror: %q\n", infos(), errs())
	// Output:
	// info: ["INFO start" "INFO retry"]
	// error: ["ERROR disk full" "ERROR disk still full"]
}

// Merge joins streams into one; rows from different inputs interleave, so
// the example sorts them.
func ExampleMerge() {
	p := pipeline.New("join")
	east := pipeline.FromSlice(p, "east", []string{"b", "d"})
	west := pipeline.FromSlice(p, "west", []string{"a", "c", "e"})
	all := pipeline.Collect(fanout.Merge(east, west), "collect")
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(slices.Sorted(slices.Values(all())))
	// Output: [a b c d e]
}

// Balance shares the rows among three consumers, each batch to whichever
// is free first: which one gets a row varies, the total does not.
func ExampleBalance() {
	p := pipeline.New("work", pipeline.BatchSize(10))
	nums := make([]int64, 100)
	for i := range nums {
		nums[i] = int64(i + 1)
	}
	var total atomic.Int64
	workers := fanout.Balance(pipeline.FromSlice(p, "jobs", nums), "workers", 3, backpressure.Buffer{})
	for i, w := range workers {
		pipeline.To(w, stage.Sink(fmt.Sprint("worker", i), func(_ context.Context, v int64) error {
			total.Add(v)
			return nil
		}))
	}
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	fmt.Println(total.Load(), p.Stats().Delivered)
	// Output: 5050 100
}
