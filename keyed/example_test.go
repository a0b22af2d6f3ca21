package keyed_test

import (
	"context"
	"fmt"
	"time"

	"github.com/kisflow/kisflow/keyed"
	"github.com/kisflow/kisflow/pipeline"
)

// A running count of clicks per user, and, when a user's clicks stop for
// 30 seconds of event time, their total.
func ExampleProcess() {
	type click struct {
		User string
		At   int // seconds
	}
	type line = string
	count := keyed.NewValue[string, int]("count")
	last := keyed.NewValue[string, time.Time]("last")
	p := pipeline.New("clicks")
	src := pipeline.FromSlice(p, "clicks", []click{{"ann", 0}, {"bob", 5}, {"ann", 10}, {"ann", 100}})
	out := keyed.Process(src, "count", func(c click) string { return c.User }, keyed.Func[string, click, line]{
		Row: func(_ context.Context, c *keyed.Context[string, line], v click) error {
			n, _ := count.Get(c)
			count.Set(c, n+1)
			last.Set(c, c.Time())
			c.TimerAt(c.Time().Add(30 * time.Second))
			return nil
		},
		Timer: func(_ context.Context, c *keyed.Context[string, line], t keyed.Timer) error {
			if l, _ := last.Get(c); t.At.Equal(l.Add(30 * time.Second)) {
				n, _ := count.Get(c)
				c.Emit(fmt.Sprintf("%s: %d clicks", c.Key(), n))
				count.Clear(c)
			}
			return nil
		},
	}, keyed.States(count, last), keyed.WithEventTime(func(c click) time.Time { return time.Unix(int64(c.At), 0) }, 0))
	lines := pipeline.Collect(out, "print")
	if err := p.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	for _, l := range lines() {
		fmt.Println(l)
	}
	// Output:
	// bob: 1 clicks
	// ann: 3 clicks
}
