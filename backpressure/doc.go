// Package backpressure provides the bounded edge between two stages and the
// batcher that fills it.
//
// # Edges
//
// An [Edge] is a channel of row batches with a fixed capacity (in batches).
// When it is full the sender follows the edge's [Policy]:
//
//   - [Block] (the default) waits until the receiver makes room, so a slow
//     stage slows the ones before it instead of letting memory grow;
//   - [DropNewest] discards the batch being sent;
//   - [DropOldest] discards the oldest queued batch to make room;
//   - [Fail] returns [ErrOverflow], which fails the pipeline.
//
// Every dropped row is counted in the edge's [Stats]. Dropped rows count as
// handled: their trackers are released, so a broker source acknowledges them.
// An edge may have several writers (a merge); it is closed when the last of
// them calls [Edge.CloseWriter]. It may have several readers (a balance); each
// batch goes to one of them.
//
// Cost: one channel operation per batch, plus one clock read on each send
// that has to wait, to account time spent blocked.
//
// # Batchers
//
// A [Batcher] turns rows that arrive one at a time, from many goroutines, into
// batches: it flushes when a batch reaches its size or when the oldest row in
// it has waited for the linger time (1 ms by default), so a trickle of rows is
// never held back for long. Each Add costs one uncontended mutex operation.
package backpressure
