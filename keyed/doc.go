// Package keyed runs a function per key with state: every row of a stream
// goes, by its key, to one worker of the operator, in order, and the
// function gets the row with its key's Context: the key's state, timers,
// the clocks, and emit.
//
//	count := keyed.NewValue[string, int]("count", keyed.TTL(time.Hour))
//	out := keyed.Process(clicks, "count", func(c Click) string { return c.User },
//		keyed.Func[string, Click, Total]{Row: func(ctx context.Context, c *keyed.Context[string, Total], v Click) error {
//			n, _ := count.Get(c)
//			count.Set(c, n+1)
//			c.Emit(Total{c.Key(), n + 1})
//			return nil
//		}}, keyed.States(count), keyed.Workers(4))
//
// # State
//
// [Value], [List] and [Map] are state descriptors, declared with
// [States]; each worker keeps their entries in memory, per key. [TTL]
// makes an entry expire after it was last written: it reads as absent and
// is evicted by the worker's heap of expiries (no goroutine per key),
// counted in NodeStats.Expired. The state is bounded by [MaxKeys] and
// [MaxBytes]: a write that needs a new entry beyond them does nothing, and
// the row fails with [ErrStateFull] and gets the stage's error policy. A
// function that fails after writing state leaves the writes.
//
// # Timers
//
// [Context.TimerAt] sets an event-time timer ([WithEventTime] gives rows
// their time and the stream its watermark, as in package window);
// [Context.ProcessingTimerAt] a processing-time timer. Timers fire without
// input arriving: the worker wakes on its next timer as well as on rows.
// When the input ends every timer left fires.
//
// # Accounting and acknowledgement
//
// A row counts Delivered once the function returned for it; what the
// function emits, from rows or timers, is rows made inside the graph. An
// input is acknowledged once its rows were processed and what they
// emitted was handled. Without checkpoints the state is not durable: a
// run that ends without draining loses it.
//
// With checkpoints (pipeline.Checkpoints) the state takes part in them:
// every worker's state (entries, timers, watermark) is captured as the
// barrier passes, the node's part holding one snapshot per worker and
// the input's clock (each source's highest event time, see [Sources]),
// and restored at Start; another number of workers or another state
// layout is refused with checkpoint.ErrLayout naming the stage. An input
// is then acknowledged once the checkpoint covering its rows is complete.
// Keys and values are encoded with encoding/gob, so their exported fields
// are what is kept; restoring several workers needs keys routed alike in
// every process (string, integer, boolean or float keys).
//
// # Costs
//
// Goroutines: one per operator with one worker; n workers and a
// dispatcher with [Workers](n). Per row: a key hash, the function call,
// and a map lookup per state access.
package keyed
