// Package stage turns a function into a pipeline stage: a pool of workers
// that take rows from the buffer in front of the stage, call the function,
// and send the results on.
//
// # Kinds
//
//   - [Verify] keeps, drops (counts Filtered) or fails each row;
//   - [Map] (one row in, one out), [FlatMap] (any number out through emit)
//     and [MapBatch] (a chunk of rows at once) calculate;
//   - [Sink] and [SinkBatch] consume rows and send none on: they end a
//     stream.
//
// A [Stage] is an immutable description; a pipeline runs it, so one stage
// may serve several pipelines. Its counters are the pipeline's
// (pipeline.Stats).
//
// # Concurrency and order
//
// [Concurrency](n) runs n workers. With n above 1 each batch is split into
// n chunks so that slow rows spread over every worker. Results leave in
// input order whatever n is, through a reorder window of 4n chunks;
// [Unordered] lets each chunk leave as soon as it is done.
//
// # Errors
//
// A function returns an error for a row; a panic in it is recovered into a
// [*PanicError] that carries the stack and unwraps to the panic value.
// [Retry] retries the row first, with exponential backoff capped at 30
// seconds; the output of a failed attempt is discarded. A row that
// still fails gets the stage's [ErrorPolicy]: [FailFlow] (the default)
// fails the run with an [*Error] naming the flow and the stage, [Skip]
// counts it failed and goes on, [DeadLetter] sends it to the pipeline's
// dead-letter stream. [Timeout] gives each call its own deadline through
// ctx.
//
// # Costs
//
// Per row: one call of the function and one append. Per batch: one
// receive, one send, two clock reads and a few atomic adds. Goroutines: 1
// for a stage with one worker; otherwise n workers and a dispatcher, and
// an emitter when ordered. No allocation per row in steady state.
package stage
