// Package bridge lets package fanout add fan-out and fan-in nodes to a
// pipeline without package pipeline exporting its graph builder. Package
// pipeline sets the functions when it is initialised; their stream
// arguments and results are pipeline.Stream values of one row type.
package bridge

import (
	"context"

	"github.com/kisflow/kisflow/backpressure"
	"github.com/kisflow/kisflow/internal/engine"
)

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

// Keyed adds a keyed node named name reading stream s (see package
// pipeline's keyed.go): out is a zero pipeline.Stream of the node's output
// type, standing for it; late asks for a second output of s's type, which
// may stay unconsumed; deadLetter says the node's error policy is
// DeadLetter. start runs the node with its input edge, output
// edge and late edge (nil when no one reads late rows); stats reads its
// state gauges; state is its state as a checkpoint part. It returns the
// output stream and, if late, the late stream.
var Keyed func(s any, name string, goroutines int, deadLetter bool, out any, late bool,
	start func(ctx context.Context, env *engine.Env, in, out, late any) error,
	stats func() engine.StateStats, state engine.Snapshotter) (any, any)
