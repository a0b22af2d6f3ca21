package keyed

import (
	"github.com/kisflow/kisflow/internal/engine"
)

// NewTestOp returns one worker's operator of a keyed function, and an
// emitter to drive it with, for the snapshot tests.
func NewTestOp[In any, K comparable, Out any](name string, key func(In) K, fn Func[K, In, Out], now func() int64, states ...State) (engine.Operator[In, Out], *engine.Emitter[In, Out]) {
	c := &core[In, K, Out]{name: name, key: key, fn: fn, states: states, maxKeys: DefaultMaxKeys, now: now}
	var layout string
	for _, st := range states {
		layout += st.newTable().(tabler[K]).layout() + " "
	}
	c.layout = "keyed/v1 test " + layout
	return newOp(c), engine.NewEmitter[In, Out]()
}

// Dump returns an operator's state: every table's entries, the timers,
// the watermark and the gauges.
func Dump[In any, K comparable, Out any](o any) []any {
	op := o.(*op[In, K, Out])
	var out []any
	for _, t := range op.sc.tables {
		out = append(out, t.contents())
	}
	return append(out, op.clk.timerSet, op.clk.wm, op.sc.entries, op.sc.bytes)
}
