package window

import (
	"github.com/kisflow/kisflow/internal/engine"
)

// NewTestFold returns one worker's operator of a Fold, and an emitter to
// drive it with, for the snapshot tests.
func NewTestFold[T any, K comparable, A any](name string, key func(T) K, w Windows, agg Agg[T, A], now func() int64, opts ...Option) (engine.Operator[T, Result[K, A]], *engine.Emitter[T, Result[K, A]]) {
	c := foldCore[T, K](agg)
	configure(name, key, w, c, opts)
	c.now = now
	return newOp(c), engine.NewEmitter[T, Result[K, A]]()
}
