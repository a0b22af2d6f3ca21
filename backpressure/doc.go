// Package backpressure configures what happens when a stage cannot keep up:
// the bounded buffer in front of it and the overflow policy its senders
// follow when the buffer is full.
//
// # Buffers
//
// Every stage reads from a [Buffer] of Capacity rows (DefaultCapacity when
// zero). Rows travel between stages in batches of up to the pipeline's
// batch size (DefaultBatchSize), one channel operation per batch, so a
// buffer holds its capacity rounded up to whole batches. Submitted rows
// wait at most DefaultLinger for a batch to fill.
//
// # Policies
//
// When the buffer is full, its senders follow the [Policy]:
//
//   - [Block] (the default) waits for room: a slow stage slows the ones
//     before it instead of letting memory grow;
//   - [DropNewest] discards the rows being sent;
//   - [DropOldest] discards the oldest queued rows to make room;
//   - [Fail] fails the run with [ErrOverflow].
//
// Dropped rows are counted (pipeline.Stats, Dropped) and count as handled:
// the input they derive from is acknowledged.
//
// Cost: one channel operation per batch; a clock read when a send has to
// wait, to account time spent blocked.
package backpressure
