package flow_test

import (
	"testing"

	"go.uber.org/goleak"

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
