// Package stage turns one user function into a running pipeline stage: a
// pool of workers that take batches from an input edge, call the function on
// every row, and send the results on.
//
// # Kinds
//
// Stages are named after KisFlow's function modes:
//
//   - [Verify] keeps, drops (filters) or fails each row;
//   - Calculate comes in three forms: [Map] (one row in, one out), [FlatMap]
//     (one row in, any number out through an emit function) and [MapBatch]
//     (a whole slice of rows at once);
//   - [Expand] is a sink: it consumes rows and emits nothing.
//
// A Stage value is an immutable description. The pipeline starts it, which
// is why a stage can be used in several pipelines and per-run counters live
// in [Counters], not in the Stage.
//
// # Concurrency and order
//
// [Concurrency](n) runs n workers. With n > 1 a dispatcher splits each input
// batch into n chunks so that slow rows spread over every worker. Output is
// ordered by default: results leave in input order whatever n is, through a
// reorder window of 4n chunks. [Unordered] lets each chunk leave as soon as
// it is done. Goroutines per stage: 1 when n = 1; otherwise n workers plus a
// dispatcher, plus an emitter when ordered.
//
// # Errors
//
// A function returns an error for a row; a panic in it is recovered into a
// [*PanicError] that carries the stack and unwraps to the panic value.
// [Retry] retries the row with exponential backoff first. What happens to a
// row that still fails is the stage's [ErrorPolicy]:
//
//   - [FailFlow] (the default) stops the pipeline with an [*Error] naming the
//     flow and the stage;
//   - [Skip] counts the row as failed and goes on;
//   - [DeadLetter] counts it as failed and sends a [Failure] (the row and the
//     error) to the pipeline's dead-letter stream.
//
// [Timeout] gives each call its own deadline through ctx; the function must
// honour ctx for it to have an effect.
//
// # Costs
//
// Per row: one call of the user function and one append. Per batch: one
// receive, one send, two clock reads and a handful of atomic adds for the
// counters. No allocation per row in steady state; batches are pooled.
package stage
