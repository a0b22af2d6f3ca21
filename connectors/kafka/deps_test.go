package kafka

import (
	"testing"

	"github.com/kisflow/kisflow/internal/testcheck"
)

// The kafka connector imports only package connectors of the core module;
// its tests and examples may use the engine (connectors/stream joins it to
// pipelines).
func TestNoEngineDependency(t *testing.T) {
	testcheck.NoEngine(t, "github.com/kisflow/kisflow/connectors/kafka")
}
