// Package pipeline builds a graph of typed streams and runs it.
//
// # Building
//
// A pipeline starts with sources ([FromSlice], [FromSeq], [FromChan], or
// [NewInput] for rows submitted while it runs). Each source returns a
// [Stream]; [Then] adds a stage after a stream and returns the stage's
// output, [To] ends a stream with an Expand stage. Streams are typed, so a
// stage whose input type does not match the stream fails to compile.
//
//	p := pipeline.New("CalStuAvgScore")
//	students := pipeline.FromSlice(p, "students", rows)
//	avg := pipeline.Then(students, stage.Map("AvgStuScore", avgScore))
//	pipeline.To(avg, stage.Expand("PrintStuAvgScore", printAvg))
//	err := p.Run(ctx)
//
// A stream has exactly one consumer. To branch and merge use [Broadcast]
// (every branch gets every row), [Partition] (by key, keeping each key in
// order), [Balance] (each batch to the first free branch), [Route] (by a
// name the row picks: KisFlow's JumpFunc) and [Merge].
//
// # Running
//
// [Pipeline.Run] is Start followed by Wait, for finite sources. A
// long-running pipeline is started with [Pipeline.Start], fed through
// [Input.Submit], asked to finish with [Pipeline.Stop] (which returns at
// once) and waited for with [Pipeline.Wait], which returns after the rows in
// flight have drained and every goroutine has exited. Cancelling the context
// given to Start stops the run promptly. The first error (a stage failing
// under the FailFlow policy, an edge overflowing under the Fail policy)
// cancels the run and is what Wait returns; [Pipeline.Errors] has them all.
// A pipeline runs once: a second Start returns [ErrStarted].
//
// # Accounting
//
// Nothing is lost silently. [Pipeline.Stats] returns per-node and per-edge
// counters; for a graph of one-to-one stages, once drained,
// In = Delivered + Filtered + Dropped + Failed.
//
// # Costs
//
// Every goroutine a pipeline starts runs on one ants pool sized for the
// graph and released when the run ends: one per source, fan-out node and
// single-worker stage, n+1 or n+2 for a stage with n workers (see package
// stage). Importing ants starts the two housekeeping goroutines of its
// default pool; leak checks in tests must ignore them (see
// internal/leaktest).
package pipeline
