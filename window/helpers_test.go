package window_test

import (
	"context"
	"testing"

	"github.com/kisflow/kisflow/pipeline"
	"github.com/kisflow/kisflow/stage"
)

func mapStage[In, Out any](name string, fn func(In) Out) *stage.Stage[In, Out] {
	return stage.Map(name, func(_ context.Context, v In) (Out, error) { return fn(v), nil })
}

// conserved asserts the accounting rule for the totals and every node.
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
