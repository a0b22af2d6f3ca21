// Package bridge lets package fanout add fan-out and fan-in nodes to a
// pipeline without package pipeline exporting its graph builder. Package
// pipeline sets the functions when it is initialised; their stream
// arguments and results are pipeline.Stream values of one row type.
package bridge

import "github.com/kisflow/kisflow/backpressure"

var (
	// Fan adds a node named name, of the given kind, that reads stream s
	// and writes n branches: every row to every branch when pick is nil,
	// else each row to the branch pick (a func(T) (int, error)) returns.
	Fan func(s any, kind, name string, n int, pick any) []any
	// Merge joins streams into one.
	Merge func(streams []any) any
	// Balance shares the rows of s between n consumers reading one buffer.
	Balance func(s any, name string, n int, buf backpressure.Buffer) []any
)
