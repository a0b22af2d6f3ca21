package connectors_test

import (
	"testing"

	"github.com/kisflow/kisflow/internal/testcheck"
)

// Package connectors stays interface-only: connector modules import it, so
// whatever it pulls in they pull in too.
func TestNoEngineDependency(t *testing.T) {
	testcheck.NoEngine(t, "github.com/kisflow/kisflow/connectors")
}
