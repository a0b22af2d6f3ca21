package pipeline_test

import (
	"context"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/kisflow/kisflow/internal/leaktest"
	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

// collector is a sink that keeps every row it gets.
type collector[T any] struct {
	mu   sync.Mutex
	rows []T
}

func (c *collector[T]) sink(name string, opts ...stage.Option) *stage.Stage[T, struct{}] {
	return stage.Sink(name, func(_ context.Context, v T) error {
		c.mu.Lock()
		c.rows = append(c.rows, v)
		c.mu.Unlock()
		return nil
	}, opts...)
}

func (c *collector[T]) got() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]T(nil), c.rows...)
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

func inc(_ context.Context, v int) (int, error) { return v + 1, nil }

// conserved asserts the accounting rule on a drained run.
func conserved(t *testing.T, st pipeline.Stats) {
	t.Helper()
	if st.In != st.Delivered+st.Filtered+st.Dropped+st.Failed+st.DeadLettered+st.Abandoned {
		t.Errorf("rows in %d != delivered %d + filtered %d + dropped %d + failed %d + dead-lettered %d + abandoned %d",
			st.In, st.Delivered, st.Filtered, st.Dropped, st.Failed, st.DeadLettered, st.Abandoned)
	}
	for _, n := range st.Nodes {
		if n.In != n.Delivered+n.Filtered+n.Failed+n.DeadLettered+n.Abandoned {
			t.Errorf("node %s: in %d != delivered %d + filtered %d + failed %d + dead-lettered %d + abandoned %d",
				n.Name, n.In, n.Delivered, n.Filtered, n.Failed, n.DeadLettered, n.Abandoned)
		}
	}
}
