package flow_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"go.uber.org/goleak"

	"github.com/kisflow/kisflow/flow"
	"github.com/kisflow/kisflow/internal/leaktest"
	"github.com/kisflow/kisflow/pipeline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.Options()...) }

// nodeStats returns the stats of the node named name.
func nodeStats(t *testing.T, st pipeline.Stats, name string) pipeline.NodeStats {
	t.Helper()
	for _, n := range st.Nodes {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("no node %s in flow %s", name, st.Flow)
	return pipeline.NodeStats{}
}

// commitRows commits rows to f and requires every one to be accepted.
func commitRows(t *testing.T, f *flow.Flow, rows ...any) {
	t.Helper()
	n, err := f.CommitRowBatch(context.Background(), rows...)
	require.NoError(t, err)
	require.Equal(t, len(rows), n)
}
